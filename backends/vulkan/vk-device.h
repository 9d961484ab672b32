// One Vulkan device for the backend: instance, physical-device choice, logical device and
// compute queue, memory allocation, pipelines (created on first use, with an on-disk cache)
// and one-shot transfer submissions. Every Vulkan failure becomes an xent::Error.
#pragma once
#include <vulkan/vulkan.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace xent::vk {

// A zeroed Vulkan info struct with its sType set (brace-initialising only sType trips
// -Wmissing-field-initializers).
template <typename T>
T make_info(VkStructureType s) {
  T t{};
  t.sType = s;
  return t;
}

// Throws xent::Error naming the call when r is not VK_SUCCESS.
void check(VkResult r, const char* what);

struct PhysicalInfo {
  VkPhysicalDevice handle = VK_NULL_HANDLE;
  VkPhysicalDeviceProperties props{};
  uint64_t device_local_bytes = 0;
};

// A device memory block bound to one VkBuffer; `mapped` is set when the memory is host
// visible (unified memory, staging), so copies are plain memcpy.
struct Allocation {
  VkBuffer buffer = VK_NULL_HANDLE;
  VkDeviceMemory memory = VK_NULL_HANDLE;
  VkDeviceSize size = 0;
  void* mapped = nullptr;
};

struct Pipeline {
  VkPipeline pipeline = VK_NULL_HANDLE;
  VkPipelineLayout layout = VK_NULL_HANDLE;
  VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
  uint32_t n_bindings = 0;
};

// Every push-constant block fits in the 128 bytes Vulkan guarantees.
constexpr uint32_t kPushConstantBytes = 128;

class Device {
 public:
  // index counts the devices as list_devices() orders them (discrete GPUs first). Throws
  // xent::Error when there is no Vulkan driver, no such device, or it lacks what we need.
  explicit Device(int index);
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  // Every device the loader reports, best first (discrete, integrated, virtual, CPU).
  // Throws xent::Error when Vulkan itself is unavailable.
  static std::vector<std::string> describe_all();

  VkDevice handle() const { return device_; }
  VkQueue queue() const { return queue_; }
  const VkPhysicalDeviceProperties& props() const { return props_; }
  std::string description() const;
  int index() const { return index_; }

  bool has_16bit_storage() const { return storage16_; }
  bool has_subgroup_arithmetic() const { return subgroups_; }
  // Largest range one storage-buffer descriptor may cover (lavapipe: 128 MiB), capped so
  // shader byte offsets stay within 32 bits.
  VkDeviceSize max_binding_bytes() const { return max_binding_; }
  VkDeviceSize binding_alignment() const { return props_.limits.minStorageBufferOffsetAlignment; }
  // Device-local memory is host visible and coherent (integrated GPUs, lavapipe): buffers
  // are mapped and filled with memcpy instead of through a staging buffer.
  bool unified_memory() const { return unified_; }

  // device_local: for weights, caches and arenas; otherwise host-visible staging memory.
  Allocation allocate(VkDeviceSize bytes, bool device_local);
  void free(Allocation& a);

  // The pipeline of shader `name` (see vk-shaders.h; "_sg" is added when the device has
  // subgroup arithmetic) with n_bindings storage buffers at bindings 0..n-1.
  const Pipeline& pipeline(const std::string& name, uint32_t n_bindings);
  // Writes the pipeline cache file when new pipelines were made; failure is not an error.
  void save_pipeline_cache();

  VkCommandPool command_pool() const { return pool_; }
  // Records with `fn` into a fresh command buffer, submits it and waits.
  template <typename Fn>
  void submit_and_wait(Fn fn);
  VkCommandBuffer begin_one_shot();
  void end_one_shot_and_wait(VkCommandBuffer cb);

 private:
  int index_;
  VkInstance instance_ = VK_NULL_HANDLE;
  VkPhysicalDevice physical_ = VK_NULL_HANDLE;
  VkPhysicalDeviceProperties props_{};
  VkPhysicalDeviceMemoryProperties mem_props_{};
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  uint32_t queue_family_ = 0;
  VkCommandPool pool_ = VK_NULL_HANDLE;
  VkFence one_shot_fence_ = VK_NULL_HANDLE;
  VkPipelineCache cache_ = VK_NULL_HANDLE;
  bool cache_dirty_ = false;
  std::string cache_path_;
  bool storage16_ = false, subgroups_ = false, unified_ = false;
  VkDeviceSize max_binding_ = 0;
  uint32_t device_local_type_ = UINT32_MAX, staging_type_ = UINT32_MAX;
  std::map<std::string, Pipeline> pipelines_;

  void load_pipeline_cache();
  void destroy_handles();  // what the destructor does; also used when the constructor fails
};

template <typename Fn>
void Device::submit_and_wait(Fn fn) {
  VkCommandBuffer cb = begin_one_shot();
  fn(cb);
  end_one_shot_and_wait(cb);
}

}  // namespace xent::vk
