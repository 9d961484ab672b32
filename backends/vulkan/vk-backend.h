// The Vulkan backend: device buffers for weights, KV caches and the scheduler's arenas,
// and compute() recording one command buffer of dispatches per graph split. Op recorders
// (vk-op-*.cpp) use the Recorder to bind tensors and dispatch their shader.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "backends/vulkan/vk-device.h"

namespace xent::vk {

class VulkanBackend;

struct VulkanBuffer final : Buffer {
  VulkanBuffer(VulkanBackend* owner, Allocation a);
  ~VulkanBuffer() override;
  VulkanBackend* owner;
  Allocation alloc;
};

// One storage-buffer descriptor: bytes [base, base + range) of a buffer, and the index of
// the tensor's first element (in the shader's element size) within that range.
struct Binding {
  VkBuffer buffer = VK_NULL_HANDLE;
  VkDeviceSize base = 0, range = 0;
  uint32_t first = 0;
};

// Fills the command buffer of one compute() call.
class Recorder {
 public:
  Recorder(VulkanBackend& backend, VkCommandBuffer cb);
  Device& device();
  // Binds tensor t (storage on this backend) for a shader that reads it as elements of
  // elem_bytes; the range covers the whole tensor. Throws when it exceeds one binding.
  Binding bind(const Tensor& t, uint32_t elem_bytes);
  // Binds bytes [begin, begin + n) of t's storage (weights bound in pieces).
  Binding bind_range(const Tensor& t, size_t begin, size_t n, uint32_t elem_bytes);
  // Records one dispatch of `shader` (see vk-shaders.h) followed by a barrier, so every
  // dispatch sees the results of the ones before it.
  void dispatch(const std::string& shader, std::initializer_list<Binding> bindings, const void* push,
                size_t push_bytes, uint32_t gx, uint32_t gy = 1, uint32_t gz = 1);
  // The rotation frequencies base^(-2i/n_dims), i < n_dims/2, computed like the CPU.
  Binding rope_freqs(int32_t n_dims, float base);

 private:
  VulkanBackend& backend_;
  VkCommandBuffer cb_;
};

// n workgroups as an (x, y) grid within the 65535-per-dimension limit; x is the row
// length the shader multiplies y by.
void grid_2d(uint64_t n, uint32_t* gx, uint32_t* gy);

class VulkanBackend final : public Backend {
 public:
  explicit VulkanBackend(int device_index);
  ~VulkanBackend() override;
  std::string name() const override { return "vulkan" + std::to_string(dev_->index()); }
  std::string device_description() const override { return dev_->description(); }
  bool is_host() const override { return false; }
  bool supports(const Tensor& node) const override;
  bool supports_attention_mask() const override { return true; }
  std::unique_ptr<Buffer> alloc_buffer(size_t bytes) override;
  void upload(Buffer& dst, size_t offset, const void* src, size_t n) override;
  void download(const Buffer& src, size_t offset, void* dst, size_t n) override;
  size_t alignment() const override;
  void compute(const std::vector<Tensor*>& nodes) override;
  void synchronize() override;

  Device& device() { return *dev_; }

 private:
  friend class Recorder;
  std::unique_ptr<Device> dev_;
  VkCommandBuffer cb_ = VK_NULL_HANDLE;
  VkFence fence_ = VK_NULL_HANDLE;
  bool pending_ = false;
  std::vector<VkDescriptorPool> pools_;
  size_t pool_in_use_ = 0;
  Allocation staging_;
  std::map<std::pair<int32_t, uint32_t>, std::unique_ptr<VulkanBuffer>> rope_tables_;

  VkDescriptorSet allocate_set(VkDescriptorSetLayout layout);
  void write(VulkanBuffer& dst, size_t offset, const void* src, size_t n);
  void read(const VulkanBuffer& src, size_t offset, void* dst, size_t n);
  void ensure_staging(size_t n);
};

// Op recorders, one file each.
void record_get_rows(Recorder& r, const Tensor& node);
void record_mul_mat(Recorder& r, const Tensor& node);
void record_attention(Recorder& r, const Tensor& node);
void record_row_op(Recorder& r, const Tensor& node);  // elementwise, norms, rope

// Whether the get_rows / mul_mat shaders exist for weights of this type.
bool weight_type_supported(DType t);
// Shader name suffix for a weight type ("q4_k").
std::string weight_shader_name(const char* op, DType t);
// Bytes of one element of the shader's view of a weight buffer: 4 for F32, else 2.
inline uint32_t weight_elem_bytes(DType t) { return t == DType::F32 ? 4u : 2u; }

}  // namespace xent::vk
