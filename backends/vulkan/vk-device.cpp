// Vulkan device set-up: instance, device choice and creation, memory, pipelines and the
// pipeline cache file. See vk-device.h.
#include "backends/vulkan/vk-device.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "backends/vulkan/vk-shaders.h"
#include "formats/error.h"

namespace xent::vk {
namespace {

const char* result_name(VkResult r) {
  switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER (no Vulkan driver installed)";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    default: return "VkResult error";
  }
}

VkInstance create_instance() {
  uint32_t api = VK_API_VERSION_1_0;
  if (vkEnumerateInstanceVersion(&api) != VK_SUCCESS) api = VK_API_VERSION_1_0;
  if (api < VK_API_VERSION_1_1)
    throw Error("vulkan: the Vulkan loader supports only Vulkan 1.0 (1.1 is needed)");
  auto app = make_info<VkApplicationInfo>(VK_STRUCTURE_TYPE_APPLICATION_INFO);
  app.pApplicationName = "xent";
  app.pEngineName = "xent";
  app.apiVersion = VK_API_VERSION_1_1;
  auto ci = make_info<VkInstanceCreateInfo>(VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO);
  ci.pApplicationInfo = &app;
  VkInstance inst = VK_NULL_HANDLE;
  const VkResult r = vkCreateInstance(&ci, nullptr, &inst);
  if (r != VK_SUCCESS) throw Error(std::string("vulkan: no Vulkan instance: ") + result_name(r));
  return inst;
}

int type_rank(VkPhysicalDeviceType t) {
  switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 0;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 1;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 3;
    default: return 4;
  }
}

const char* type_name(VkPhysicalDeviceType t) {
  switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU";
    default: return "other";
  }
}

// Devices in the order users see them: best kind first, the loader's order within a kind.
std::vector<PhysicalInfo> physical_devices(VkInstance inst) {
  uint32_t n = 0;
  check(vkEnumeratePhysicalDevices(inst, &n, nullptr), "vkEnumeratePhysicalDevices");
  std::vector<VkPhysicalDevice> handles(n);
  check(vkEnumeratePhysicalDevices(inst, &n, handles.data()), "vkEnumeratePhysicalDevices");
  std::vector<PhysicalInfo> out;
  for (VkPhysicalDevice h : handles) {
    PhysicalInfo info;
    info.handle = h;
    vkGetPhysicalDeviceProperties(h, &info.props);
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(h, &mp);
    for (uint32_t i = 0; i < mp.memoryHeapCount; ++i)
      if (mp.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) info.device_local_bytes += mp.memoryHeaps[i].size;
    out.push_back(info);
  }
  std::stable_sort(out.begin(), out.end(), [](const PhysicalInfo& a, const PhysicalInfo& b) {
    return type_rank(a.props.deviceType) < type_rank(b.props.deviceType);
  });
  return out;
}

std::string describe(const PhysicalInfo& p) {
  char buf[320];
  const uint32_t v = p.props.apiVersion;
  std::snprintf(buf, sizeof buf, "%s (%s, Vulkan %u.%u.%u, %.1f GiB)", p.props.deviceName,
                type_name(p.props.deviceType), VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v),
                VK_API_VERSION_PATCH(v), static_cast<double>(p.device_local_bytes) / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

std::string cache_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/xent";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/xent";
  return "";
}

}  // namespace

void check(VkResult r, const char* what) {
  if (r != VK_SUCCESS) throw Error(std::string("vulkan: ") + what + " failed: " + result_name(r));
}

std::vector<std::string> Device::describe_all() {
  VkInstance inst = create_instance();
  std::vector<std::string> out;
  try {
    for (const PhysicalInfo& p : physical_devices(inst)) out.push_back(describe(p));
  } catch (...) {
    vkDestroyInstance(inst, nullptr);
    throw;
  }
  vkDestroyInstance(inst, nullptr);
  return out;
}

Device::Device(int index) : index_(index) {
  instance_ = create_instance();
  try {
    const std::vector<PhysicalInfo> devs = physical_devices(instance_);
    if (devs.empty()) throw Error("vulkan: the Vulkan driver reports no device");
    if (index < 0 || index >= static_cast<int>(devs.size()))
      throw Error("vulkan: no device " + std::to_string(index) + " (there are " + std::to_string(devs.size()) +
                  "; see xent info --devices)");
    physical_ = devs[index].handle;
    props_ = devs[index].props;
    if (props_.apiVersion < VK_API_VERSION_1_1)
      throw Error(std::string("vulkan: ") + props_.deviceName + " supports only Vulkan 1.0 (1.1 is needed)");
    vkGetPhysicalDeviceMemoryProperties(physical_, &mem_props_);

    // Features: 16-bit storage (quantized weights, f16 KV cache) and subgroup arithmetic.
    auto f16 = make_info<VkPhysicalDevice16BitStorageFeatures>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES);
    auto f2 = make_info<VkPhysicalDeviceFeatures2>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2);
    f2.pNext = &f16;
    vkGetPhysicalDeviceFeatures2(physical_, &f2);
    storage16_ = f16.storageBuffer16BitAccess == VK_TRUE;
    auto sg = make_info<VkPhysicalDeviceSubgroupProperties>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES);
    auto p2 = make_info<VkPhysicalDeviceProperties2>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2);
    p2.pNext = &sg;
    vkGetPhysicalDeviceProperties2(physical_, &p2);
    const VkSubgroupFeatureFlags need = VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT;
    subgroups_ = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) && (sg.supportedOperations & need) == need &&
                 sg.subgroupSize >= 1 && std::getenv("XENT_VK_NO_SUBGROUPS") == nullptr;
    max_binding_ = std::min<VkDeviceSize>(props_.limits.maxStorageBufferRange, VkDeviceSize{1} << 30);
    // Tests shrink the binding limit to exercise weights bound in pieces on small tensors.
    if (const char* e = std::getenv("XENT_VK_MAX_BINDING"); e && *e)
      max_binding_ = std::clamp<VkDeviceSize>(std::strtoull(e, nullptr, 10), 4096, max_binding_);
    unified_ = props_.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU ||
               props_.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;

    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(physical_, &nq, nullptr);
    std::vector<VkQueueFamilyProperties> qf(nq);
    vkGetPhysicalDeviceQueueFamilyProperties(physical_, &nq, qf.data());
    queue_family_ = UINT32_MAX;
    for (uint32_t i = 0; i < nq && queue_family_ == UINT32_MAX; ++i)
      if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) queue_family_ = i;
    if (queue_family_ == UINT32_MAX) throw Error(std::string("vulkan: ") + props_.deviceName + " has no compute queue");

    const float prio = 1.0f;
    auto qci = make_info<VkDeviceQueueCreateInfo>(VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO);
    qci.queueFamilyIndex = queue_family_;
    qci.queueCount = 1;
    qci.pQueuePriorities = &prio;
    auto want16 = make_info<VkPhysicalDevice16BitStorageFeatures>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES);
    want16.storageBuffer16BitAccess = storage16_ ? VK_TRUE : VK_FALSE;
    auto dci = make_info<VkDeviceCreateInfo>(VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO);
    dci.pNext = &want16;
    dci.queueCreateInfoCount = 1;
    dci.pQueueCreateInfos = &qci;
    check(vkCreateDevice(physical_, &dci, nullptr, &device_), "vkCreateDevice");
    vkGetDeviceQueue(device_, queue_family_, 0, &queue_);

    auto pci = make_info<VkCommandPoolCreateInfo>(VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO);
    pci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    pci.queueFamilyIndex = queue_family_;
    check(vkCreateCommandPool(device_, &pci, nullptr, &pool_), "vkCreateCommandPool");
    auto fci = make_info<VkFenceCreateInfo>(VK_STRUCTURE_TYPE_FENCE_CREATE_INFO);
    check(vkCreateFence(device_, &fci, nullptr, &one_shot_fence_), "vkCreateFence");
    load_pipeline_cache();
  } catch (...) {
    destroy_handles();
    throw;
  }
}

Device::~Device() { destroy_handles(); }

void Device::destroy_handles() {
  if (device_) {
    vkDeviceWaitIdle(device_);
    for (auto& [name, p] : pipelines_) {
      vkDestroyPipeline(device_, p.pipeline, nullptr);
      vkDestroyPipelineLayout(device_, p.layout, nullptr);
      vkDestroyDescriptorSetLayout(device_, p.set_layout, nullptr);
    }
    pipelines_.clear();
    if (cache_) vkDestroyPipelineCache(device_, cache_, nullptr);
    if (one_shot_fence_) vkDestroyFence(device_, one_shot_fence_, nullptr);
    if (pool_) vkDestroyCommandPool(device_, pool_, nullptr);
    vkDestroyDevice(device_, nullptr);
    device_ = VK_NULL_HANDLE;
  }
  if (instance_) vkDestroyInstance(instance_, nullptr);
  instance_ = VK_NULL_HANDLE;
  cache_ = VK_NULL_HANDLE;
  one_shot_fence_ = VK_NULL_HANDLE;
  pool_ = VK_NULL_HANDLE;
}

std::string Device::description() const {
  PhysicalInfo p;
  p.props = props_;
  for (uint32_t i = 0; i < mem_props_.memoryHeapCount; ++i)
    if (mem_props_.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) p.device_local_bytes += mem_props_.memoryHeaps[i].size;
  return describe(p);
}

Allocation Device::allocate(VkDeviceSize bytes, bool device_local) {
  Allocation a;
  a.size = std::max<VkDeviceSize>((bytes + 3) / 4 * 4, 16);
  auto bci = make_info<VkBufferCreateInfo>(VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO);
  bci.size = a.size;
  bci.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  bci.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  check(vkCreateBuffer(device_, &bci, nullptr, &a.buffer), "vkCreateBuffer");
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements(device_, a.buffer, &req);

  // Preferred property sets, first match wins.
  const VkMemoryPropertyFlags kLocal = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
  const VkMemoryPropertyFlags kHost = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  std::vector<VkMemoryPropertyFlags> prefs;
  if (device_local) {
    if (unified_) prefs.push_back(kLocal | kHost);
    prefs.push_back(kLocal);
    prefs.push_back(0);
  } else {
    prefs.push_back(kHost | VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
    prefs.push_back(kHost);
  }
  VkResult r = VK_ERROR_OUT_OF_DEVICE_MEMORY;
  for (VkMemoryPropertyFlags want : prefs) {
    for (uint32_t i = 0; i < mem_props_.memoryTypeCount; ++i) {
      const VkMemoryPropertyFlags have = mem_props_.memoryTypes[i].propertyFlags;
      if (!(req.memoryTypeBits & (1u << i)) || (have & want) != want) continue;
      auto mai = make_info<VkMemoryAllocateInfo>(VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO);
      mai.allocationSize = req.size;
      mai.memoryTypeIndex = i;
      r = vkAllocateMemory(device_, &mai, nullptr, &a.memory);
      if (r != VK_SUCCESS) continue;
      if ((have & kHost) == kHost) {
        r = vkMapMemory(device_, a.memory, 0, VK_WHOLE_SIZE, 0, &a.mapped);
        if (r != VK_SUCCESS) {
          vkFreeMemory(device_, a.memory, nullptr);
          a.memory = VK_NULL_HANDLE;
          a.mapped = nullptr;
          continue;
        }
      }
      break;
    }
    if (a.memory) break;
  }
  if (!a.memory) {
    vkDestroyBuffer(device_, a.buffer, nullptr);
    throw Error("vulkan: out of " + std::string(device_local ? "device" : "host-visible") + " memory allocating " +
                std::to_string(bytes) + " bytes on " + props_.deviceName + " (" + result_name(r) + ")");
  }
  check(vkBindBufferMemory(device_, a.buffer, a.memory, 0), "vkBindBufferMemory");
  return a;
}

void Device::free(Allocation& a) {
  if (a.buffer) vkDestroyBuffer(device_, a.buffer, nullptr);
  if (a.memory) vkFreeMemory(device_, a.memory, nullptr);  // unmaps implicitly
  a = Allocation{};
}

const Pipeline& Device::pipeline(const std::string& name, uint32_t n_bindings) {
  const std::string full = subgroups_ ? name + "_sg" : name;
  if (auto it = pipelines_.find(full); it != pipelines_.end()) return it->second;
  const ShaderBlob* blob = find_shader(full);
  if (!blob) throw Error("vulkan: no shader named " + full + " in this build");

  Pipeline p;
  p.n_bindings = n_bindings;
  std::vector<VkDescriptorSetLayoutBinding> b(n_bindings);
  for (uint32_t i = 0; i < n_bindings; ++i) {
    b[i].binding = i;
    b[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    b[i].descriptorCount = 1;
    b[i].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
  }
  auto dl = make_info<VkDescriptorSetLayoutCreateInfo>(VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO);
  dl.bindingCount = n_bindings;
  dl.pBindings = b.data();
  check(vkCreateDescriptorSetLayout(device_, &dl, nullptr, &p.set_layout), "vkCreateDescriptorSetLayout");
  VkPushConstantRange pcr{VK_SHADER_STAGE_COMPUTE_BIT, 0, kPushConstantBytes};
  auto pl = make_info<VkPipelineLayoutCreateInfo>(VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO);
  pl.setLayoutCount = 1;
  pl.pSetLayouts = &p.set_layout;
  pl.pushConstantRangeCount = 1;
  pl.pPushConstantRanges = &pcr;
  check(vkCreatePipelineLayout(device_, &pl, nullptr, &p.layout), "vkCreatePipelineLayout");

  auto sm = make_info<VkShaderModuleCreateInfo>(VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO);
  sm.codeSize = blob->n_bytes;
  sm.pCode = reinterpret_cast<const uint32_t*>(blob->code);
  VkShaderModule module = VK_NULL_HANDLE;
  check(vkCreateShaderModule(device_, &sm, nullptr, &module), "vkCreateShaderModule");
  auto cp = make_info<VkComputePipelineCreateInfo>(VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO);
  cp.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
  cp.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
  cp.stage.module = module;
  cp.stage.pName = "main";
  cp.layout = p.layout;
  const VkResult r = vkCreateComputePipelines(device_, cache_, 1, &cp, nullptr, &p.pipeline);
  vkDestroyShaderModule(device_, module, nullptr);
  if (r != VK_SUCCESS) {
    vkDestroyPipelineLayout(device_, p.layout, nullptr);
    vkDestroyDescriptorSetLayout(device_, p.set_layout, nullptr);
    check(r, ("vkCreateComputePipelines (" + full + ")").c_str());
  }
  cache_dirty_ = true;
  return pipelines_.emplace(full, p).first->second;
}

// The cache file is only handed to the driver when its header names this exact device and
// driver build; anything else (missing, stale, truncated) starts an empty cache.
void Device::load_pipeline_cache() {
  const std::string dir = cache_dir();
  std::vector<char> data;
  if (!dir.empty()) {
    char name[96];
    std::snprintf(name, sizeof name, "/vulkan-%04x-%04x-%08x.cache", props_.vendorID, props_.deviceID,
                  props_.driverVersion);
    cache_path_ = dir + name;
    std::ifstream in(cache_path_, std::ios::binary);
    if (in) data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    // Header: length, version, vendorID, deviceID (u32 each), then the 16-byte cache UUID.
    bool ok = data.size() >= 32;
    if (ok) {
      uint32_t h[4];
      std::memcpy(h, data.data(), sizeof h);
      ok = h[0] >= 32 && h[1] == VK_PIPELINE_CACHE_HEADER_VERSION_ONE && h[2] == props_.vendorID &&
           h[3] == props_.deviceID && std::memcmp(data.data() + 16, props_.pipelineCacheUUID, VK_UUID_SIZE) == 0;
    }
    if (!ok) data.clear();
  }
  auto ci = make_info<VkPipelineCacheCreateInfo>(VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO);
  ci.initialDataSize = data.size();
  ci.pInitialData = data.empty() ? nullptr : data.data();
  if (vkCreatePipelineCache(device_, &ci, nullptr, &cache_) != VK_SUCCESS) {
    ci.initialDataSize = 0;
    ci.pInitialData = nullptr;
    check(vkCreatePipelineCache(device_, &ci, nullptr, &cache_), "vkCreatePipelineCache");
  }
}

void Device::save_pipeline_cache() {
  if (!cache_dirty_ || cache_path_.empty() || !cache_) return;
  cache_dirty_ = false;
  size_t n = 0;
  if (vkGetPipelineCacheData(device_, cache_, &n, nullptr) != VK_SUCCESS || n == 0) return;
  std::vector<char> data(n);
  if (vkGetPipelineCacheData(device_, cache_, &n, data.data()) != VK_SUCCESS) return;
  // Written beside the final name and renamed, so a concurrent reader never sees half a file.
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(cache_path_).parent_path(), ec);
  const std::string tmp = cache_path_ + ".tmp" + std::to_string(reinterpret_cast<uintptr_t>(this) & 0xffff);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return;
    out.write(data.data(), static_cast<std::streamsize>(n));
    if (!out) {
      out.close();
      std::filesystem::remove(tmp, ec);
      return;
    }
  }
  std::filesystem::rename(tmp, cache_path_, ec);
  if (ec) std::filesystem::remove(tmp, ec);
}

VkCommandBuffer Device::begin_one_shot() {
  auto ai = make_info<VkCommandBufferAllocateInfo>(VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO);
  ai.commandPool = pool_;
  ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  ai.commandBufferCount = 1;
  VkCommandBuffer cb = VK_NULL_HANDLE;
  check(vkAllocateCommandBuffers(device_, &ai, &cb), "vkAllocateCommandBuffers");
  auto bi = make_info<VkCommandBufferBeginInfo>(VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO);
  bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  check(vkBeginCommandBuffer(cb, &bi), "vkBeginCommandBuffer");
  return cb;
}

void Device::end_one_shot_and_wait(VkCommandBuffer cb) {
  VkResult r = vkEndCommandBuffer(cb);
  if (r == VK_SUCCESS) {
    auto si = make_info<VkSubmitInfo>(VK_STRUCTURE_TYPE_SUBMIT_INFO);
    si.commandBufferCount = 1;
    si.pCommandBuffers = &cb;
    r = vkQueueSubmit(queue_, 1, &si, one_shot_fence_);
    if (r == VK_SUCCESS) {
      r = vkWaitForFences(device_, 1, &one_shot_fence_, VK_TRUE, UINT64_MAX);
      vkResetFences(device_, 1, &one_shot_fence_);
    }
  }
  vkFreeCommandBuffers(device_, pool_, 1, &cb);
  check(r, "one-shot submission");
}

}  // namespace xent::vk
