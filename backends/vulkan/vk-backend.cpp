// The Vulkan backend: buffers, transfers, what it supports, and command recording. See
// vk-backend.h; the per-op dispatch code is in vk-op-*.cpp.
#include "backends/vulkan/vk-backend.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "formats/error.h"

namespace xent {

// Declared in backends/registry.cpp.
std::unique_ptr<Backend> create_vulkan_backend(int device, std::string* why);
std::vector<std::string> list_vulkan_devices();

namespace vk {
namespace {

constexpr size_t kStagingChunk = size_t{64} << 20;
constexpr uint32_t kSetsPerPool = 512;
constexpr uint32_t kMaxBindings = 6;

bool is_f32(const Tensor* t) { return t == nullptr || t->type == DType::F32; }
bool rows_contiguous(const Tensor* t) { return t == nullptr || t->nb[0] == dtype_block_bytes(t->type); }

void barrier(VkCommandBuffer cb, VkPipelineStageFlags src_stage, VkAccessFlags src, VkPipelineStageFlags dst_stage,
             VkAccessFlags dst) {
  auto mb = make_info<VkMemoryBarrier>(VK_STRUCTURE_TYPE_MEMORY_BARRIER);
  mb.srcAccessMask = src;
  mb.dstAccessMask = dst;
  vkCmdPipelineBarrier(cb, src_stage, dst_stage, 0, 1, &mb, 0, nullptr, 0, nullptr);
}

const VulkanBuffer& vulkan_buffer(const Tensor& t, const VulkanBackend* self) {
  const Tensor* root = t.storage_root();
  const auto* b = dynamic_cast<const VulkanBuffer*>(t.buffer ? t.buffer : root->buffer);
  if (!b || b->backend != self)
    throw Error(std::string("vulkan: operand ") + t.name + " " + describe(t) + " has no storage on this device");
  return *b;
}

}  // namespace

VulkanBuffer::VulkanBuffer(VulkanBackend* o, Allocation a) : owner(o), alloc(a) {
  backend = o;
  size = static_cast<size_t>(a.size);
}

VulkanBuffer::~VulkanBuffer() {
  // The GPU may still be using it: wait for the last submission first.
  try {
    owner->synchronize();
  } catch (...) {
    // Device lost: the memory can be freed all the same.
  }
  owner->device().free(alloc);
}

void grid_2d(uint64_t n, uint32_t* gx, uint32_t* gy) {
  const uint64_t x = std::clamp<uint64_t>(n, 1, 65535);
  *gx = static_cast<uint32_t>(x);
  *gy = static_cast<uint32_t>((n + x - 1) / x);
  if (*gy == 0) *gy = 1;
  if (*gy > 65535) throw Error("vulkan: dispatch of " + std::to_string(n) + " workgroups is too large");
}

bool weight_type_supported(DType t) {
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16:
    case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: case DType::Q8_0:
    case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K:
      return true;
    default:
      return false;
  }
}

std::string weight_shader_name(const char* op, DType t) { return std::string(op) + "_" + dtype_name(t); }

// ---- Recorder ----

Recorder::Recorder(VulkanBackend& backend, VkCommandBuffer cb) : backend_(backend), cb_(cb) {}

Device& Recorder::device() { return *backend_.dev_; }

Binding Recorder::bind_range(const Tensor& t, size_t begin, size_t n, uint32_t elem_bytes) {
  const VulkanBuffer& b = vulkan_buffer(t, &backend_);
  const size_t start = t.offset + begin;
  const VkDeviceSize align = std::max<VkDeviceSize>(device().binding_alignment(), 4);
  Binding out;
  out.buffer = b.alloc.buffer;
  out.base = start / align * align;
  const size_t lead = start - static_cast<size_t>(out.base);
  if (lead % elem_bytes != 0)
    throw Error(std::string("vulkan: operand ") + t.name + " starts at byte " + std::to_string(start) +
                ", not a multiple of its element size");
  out.first = static_cast<uint32_t>(lead / elem_bytes);
  const VkDeviceSize left = b.alloc.size - out.base;
  out.range = std::min<VkDeviceSize>(left, device().max_binding_bytes());
  if (lead + n > out.range)
    throw Error(std::string("vulkan: operand ") + t.name + " " + describe(t) + " needs " + std::to_string(lead + n) +
                " bytes in one binding; the device allows " + std::to_string(out.range));
  return out;
}

Binding Recorder::bind(const Tensor& t, uint32_t elem_bytes) { return bind_range(t, 0, t.n_bytes(), elem_bytes); }

void Recorder::dispatch(const std::string& shader, std::initializer_list<Binding> bindings, const void* push,
                        size_t push_bytes, uint32_t gx, uint32_t gy, uint32_t gz) {
  const uint32_t n = static_cast<uint32_t>(bindings.size());
  const Pipeline& p = device().pipeline(shader, n);
  VkDescriptorSet set = backend_.allocate_set(p.set_layout);
  VkDescriptorBufferInfo infos[kMaxBindings];
  VkWriteDescriptorSet writes[kMaxBindings];
  uint32_t i = 0;
  for (const Binding& b : bindings) {
    infos[i] = VkDescriptorBufferInfo{b.buffer, b.base, b.range};
    writes[i] = make_info<VkWriteDescriptorSet>(VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET);
    writes[i].dstSet = set;
    writes[i].dstBinding = i;
    writes[i].descriptorCount = 1;
    writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    writes[i].pBufferInfo = &infos[i];
    ++i;
  }
  vkUpdateDescriptorSets(device().handle(), n, writes, 0, nullptr);
  vkCmdBindPipeline(cb_, VK_PIPELINE_BIND_POINT_COMPUTE, p.pipeline);
  vkCmdBindDescriptorSets(cb_, VK_PIPELINE_BIND_POINT_COMPUTE, p.layout, 0, 1, &set, 0, nullptr);
  vkCmdPushConstants(cb_, p.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, static_cast<uint32_t>(push_bytes), push);
  vkCmdDispatch(cb_, gx, gy, gz);
  barrier(cb_, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
          VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
}

Binding Recorder::rope_freqs(int32_t n_dims, float base) {
  uint32_t base_bits;
  std::memcpy(&base_bits, &base, sizeof base_bits);
  auto key = std::make_pair(n_dims, base_bits);
  auto it = backend_.rope_tables_.find(key);
  if (it == backend_.rope_tables_.end()) {
    const int32_t half = n_dims / 2;
    std::vector<float> f(static_cast<size_t>(std::max(half, 1)));
    // The same expression as the CPU reference, so the angles agree bit for bit.
    for (int32_t i = 0; i < half; ++i) f[i] = std::pow(base, -2.0f * static_cast<float>(i) / n_dims);
    auto buf = std::make_unique<VulkanBuffer>(&backend_, device().allocate(f.size() * sizeof(float), true));
    // A one-shot transfer, not part of this command buffer, so the table is valid even if
    // this recording is abandoned.
    backend_.write(*buf, 0, f.data(), f.size() * sizeof(float));
    it = backend_.rope_tables_.emplace(key, std::move(buf)).first;
  }
  const VulkanBuffer& b = *it->second;
  return Binding{b.alloc.buffer, 0, b.alloc.size, 0};
}

// ---- VulkanBackend ----

VulkanBackend::VulkanBackend(int device_index) : dev_(std::make_unique<Device>(device_index)) {
  auto ai = make_info<VkCommandBufferAllocateInfo>(VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO);
  ai.commandPool = dev_->command_pool();
  ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  ai.commandBufferCount = 1;
  check(vkAllocateCommandBuffers(dev_->handle(), &ai, &cb_), "vkAllocateCommandBuffers");
  auto fci = make_info<VkFenceCreateInfo>(VK_STRUCTURE_TYPE_FENCE_CREATE_INFO);
  check(vkCreateFence(dev_->handle(), &fci, nullptr, &fence_), "vkCreateFence");
}

VulkanBackend::~VulkanBackend() {
  try {
    synchronize();
  } catch (...) {
    // Device lost while closing: nothing left to wait for.
  }
  rope_tables_.clear();
  dev_->free(staging_);
  for (VkDescriptorPool p : pools_) vkDestroyDescriptorPool(dev_->handle(), p, nullptr);
  vkDestroyFence(dev_->handle(), fence_, nullptr);
  vkFreeCommandBuffers(dev_->handle(), dev_->command_pool(), 1, &cb_);
  dev_->save_pipeline_cache();
}

size_t VulkanBackend::alignment() const {
  return std::max<size_t>(64, static_cast<size_t>(dev_->binding_alignment()));
}

// XENT_VK_DISABLE="rope,add": ops left to the CPU, to bisect a wrong result to one op.
static bool disabled_by_env(Op op) {
  static const std::string list = [] {
    const char* e = std::getenv("XENT_VK_DISABLE");
    std::string l = ",";
    if (e) l.append(e).push_back(',');
    return l;
  }();
  std::string key = ",";
  key.append(op_name(op)).push_back(',');
  return list.size() > 1 && list.find(key) != std::string::npos;
}

bool VulkanBackend::supports(const Tensor& node) const {
  if (disabled_by_env(node.op)) return false;
  const VkDeviceSize max_bind = dev_->max_binding_bytes();
  // Operands other than weights must fit one binding (weights are bound in row pieces).
  auto fits = [&](const Tensor* t) { return t == nullptr || t->n_bytes() + 256 <= max_bind; };
  for (const Tensor* s : node.src)
    if (!rows_contiguous(s)) return false;
  if (!fits(&node)) return false;
  const bool f16_ok = dev_->has_16bit_storage();
  switch (node.op) {
    case Op::None:
    case Op::View:
      return true;
    case Op::GetRows: {
      const DType t = node.src[0]->type;
      return weight_type_supported(t) && (t == DType::F32 || f16_ok) && node.src[1]->type == DType::I32 &&
             node.src[0]->nb[1] % weight_elem_bytes(t) == 0 && node.src[0]->ne[0] < (int64_t{1} << 30);
    }
    case Op::MulMat: {
      const Tensor& w = *node.src[0];
      const Tensor& x = *node.src[1];
      return weight_type_supported(w.type) && (w.type == DType::F32 || f16_ok) && is_f32(&x) && x.ne[2] == 1 &&
             x.ne[3] == 1 && w.nb[1] == w.row_bytes() && w.row_bytes() + 256 <= max_bind && fits(&x);
    }
    case Op::Add:
    case Op::Mul:
    case Op::SwiGlu:
      return is_f32(node.src[0]) && is_f32(node.src[1]) && fits(node.src[0]) && fits(node.src[1]);
    case Op::Scale:
    case Op::Silu:
    case Op::Gelu:
      return is_f32(node.src[0]) && fits(node.src[0]);
    case Op::Rope:  // frequency factors and YaRN run on the CPU
      return rope_is_plain(node) && is_f32(node.src[0]) && fits(node.src[0]) && node.src[1]->type == DType::I32;
    case Op::RmsNorm:
    case Op::LayerNorm:
      return is_f32(node.src[0]) && is_f32(node.src[1]) && is_f32(node.src[2]) && fits(node.src[0]) &&
             fits(node.src[1]) && fits(node.src[2]);
    case Op::SoftCap:  // Gemma 2's soft-capping and windows run on the CPU
      return false;
    case Op::Attention: {
      const Tensor& q = *node.src[0];
      for (int i = 0; i < 6; ++i)
        if (!fits(node.src[i])) return false;
      return attention_is_plain(node) && f16_ok && q.ne[0] <= 256 && is_f32(node.src[0]) && is_f32(node.src[1]) && is_f32(node.src[2]) &&
             node.src[3]->type == DType::F16 && node.src[4]->type == DType::F16 && is_f32(node.src[5]);
    }
  }
  return false;
}

std::unique_ptr<Buffer> VulkanBackend::alloc_buffer(size_t bytes) {
  auto b = std::make_unique<VulkanBuffer>(this, dev_->allocate(bytes, true));
  b->size = bytes;
  // Zeroed, as host arenas and caches are when first used; cheap next to the allocation.
  if (b->alloc.mapped) {
    std::memset(b->alloc.mapped, 0, static_cast<size_t>(b->alloc.size));
  } else {
    dev_->submit_and_wait([&](VkCommandBuffer cb) { vkCmdFillBuffer(cb, b->alloc.buffer, 0, VK_WHOLE_SIZE, 0); });
  }
  return b;
}

void VulkanBackend::ensure_staging(size_t n) {
  if (staging_.size >= n) return;
  dev_->free(staging_);
  staging_ = dev_->allocate(std::max(n, size_t{1} << 20), false);
}

void VulkanBackend::write(VulkanBuffer& dst, size_t offset, const void* src, size_t n) {
  if (offset + n > dst.alloc.size) throw Error("vulkan: upload past the end of a buffer");
  if (dst.alloc.mapped) {
    std::memcpy(static_cast<uint8_t*>(dst.alloc.mapped) + offset, src, n);
    return;
  }
  for (size_t done = 0; done < n;) {
    const size_t k = std::min(n - done, kStagingChunk);
    ensure_staging(k);
    std::memcpy(staging_.mapped, static_cast<const uint8_t*>(src) + done, k);
    dev_->submit_and_wait([&](VkCommandBuffer cb) {
      VkBufferCopy c{0, offset + done, k};
      vkCmdCopyBuffer(cb, staging_.buffer, dst.alloc.buffer, 1, &c);
    });
    done += k;
  }
}

void VulkanBackend::read(const VulkanBuffer& src, size_t offset, void* dst, size_t n) {
  if (offset + n > src.alloc.size) throw Error("vulkan: download past the end of a buffer");
  if (src.alloc.mapped) {
    std::memcpy(dst, static_cast<const uint8_t*>(src.alloc.mapped) + offset, n);
    return;
  }
  for (size_t done = 0; done < n;) {
    const size_t k = std::min(n - done, kStagingChunk);
    ensure_staging(k);
    dev_->submit_and_wait([&](VkCommandBuffer cb) {
      VkBufferCopy c{offset + done, 0, k};
      vkCmdCopyBuffer(cb, src.alloc.buffer, staging_.buffer, 1, &c);
      barrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT, VK_PIPELINE_STAGE_HOST_BIT,
              VK_ACCESS_HOST_READ_BIT);
    });
    std::memcpy(static_cast<uint8_t*>(dst) + done, staging_.mapped, k);
    done += k;
  }
}

void VulkanBackend::upload(Buffer& dst, size_t offset, const void* src, size_t n) {
  auto* b = dynamic_cast<VulkanBuffer*>(&dst);
  if (!b || b->owner != this) throw Error("vulkan: upload to a buffer of another backend");
  synchronize();  // the bytes may still be read by work in flight
  write(*b, offset, src, n);
}

void VulkanBackend::download(const Buffer& src, size_t offset, void* dst, size_t n) {
  const auto* b = dynamic_cast<const VulkanBuffer*>(&src);
  if (!b || b->owner != this) throw Error("vulkan: download from a buffer of another backend");
  synchronize();
  read(*b, offset, dst, n);
}

VkDescriptorSet VulkanBackend::allocate_set(VkDescriptorSetLayout layout) {
  for (;;) {
    if (pool_in_use_ == pools_.size()) {
      VkDescriptorPoolSize ps{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, kSetsPerPool * kMaxBindings};
      auto pci = make_info<VkDescriptorPoolCreateInfo>(VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO);
      pci.maxSets = kSetsPerPool;
      pci.poolSizeCount = 1;
      pci.pPoolSizes = &ps;
      VkDescriptorPool pool = VK_NULL_HANDLE;
      check(vkCreateDescriptorPool(dev_->handle(), &pci, nullptr, &pool), "vkCreateDescriptorPool");
      pools_.push_back(pool);
    }
    auto ai = make_info<VkDescriptorSetAllocateInfo>(VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO);
    ai.descriptorPool = pools_[pool_in_use_];
    ai.descriptorSetCount = 1;
    ai.pSetLayouts = &layout;
    VkDescriptorSet set = VK_NULL_HANDLE;
    const VkResult r = vkAllocateDescriptorSets(dev_->handle(), &ai, &set);
    if (r == VK_SUCCESS) return set;
    if (r != VK_ERROR_OUT_OF_POOL_MEMORY && r != VK_ERROR_FRAGMENTED_POOL) check(r, "vkAllocateDescriptorSets");
    ++pool_in_use_;  // this pool is full: the next one (made above if needed)
  }
}

void VulkanBackend::synchronize() {
  if (!pending_) return;
  pending_ = false;
  check(vkWaitForFences(dev_->handle(), 1, &fence_, VK_TRUE, UINT64_MAX), "vkWaitForFences");
  check(vkResetFences(dev_->handle(), 1, &fence_), "vkResetFences");
}

void VulkanBackend::compute(const std::vector<Tensor*>& nodes) {
  synchronize();  // descriptor sets and the command buffer are reused
  for (VkDescriptorPool p : pools_) vkResetDescriptorPool(dev_->handle(), p, 0);
  pool_in_use_ = 0;
  check(vkResetCommandBuffer(cb_, 0), "vkResetCommandBuffer");
  auto bi = make_info<VkCommandBufferBeginInfo>(VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO);
  bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  check(vkBeginCommandBuffer(cb_, &bi), "vkBeginCommandBuffer");
  Recorder rec(*this, cb_);
  bool any = false;
  for (const Tensor* n : nodes) {
    switch (n->op) {
      case Op::None:
      case Op::View:
        continue;
      case Op::GetRows: record_get_rows(rec, *n); break;
      case Op::MulMat: record_mul_mat(rec, *n); break;
      case Op::Attention: record_attention(rec, *n); break;
      default: record_row_op(rec, *n); break;
    }
    any = true;
  }
  // Results become visible to the host (downloads map or copy them after the fence).
  barrier(cb_, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT,
          VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_HOST_READ_BIT | VK_ACCESS_TRANSFER_READ_BIT);
  check(vkEndCommandBuffer(cb_), "vkEndCommandBuffer");
  if (!any) return;
  auto si = make_info<VkSubmitInfo>(VK_STRUCTURE_TYPE_SUBMIT_INFO);
  si.commandBufferCount = 1;
  si.pCommandBuffers = &cb_;
  check(vkQueueSubmit(dev_->queue(), 1, &si, fence_), "vkQueueSubmit");
  pending_ = true;
}

}  // namespace vk

namespace {
// Errors from the device code start with "vulkan: "; the callers name the backend already.
std::string without_prefix(const std::string& s) { return s.rfind("vulkan: ", 0) == 0 ? s.substr(8) : s; }
}  // namespace

// XENT_VK_DEVICE picks the device for a plain "vulkan" (an explicit "vulkanN" wins).
std::unique_ptr<Backend> create_vulkan_backend(int device, std::string* why) {
  if (device == 0) {
    if (const char* env = std::getenv("XENT_VK_DEVICE"); env && *env) {
      char* end = nullptr;
      const long v = std::strtol(env, &end, 10);
      if (*end != '\0' || v < 0 || v > 64) {
        if (why) *why = std::string("XENT_VK_DEVICE='") + env + "' is not a device index";
        return nullptr;
      }
      device = static_cast<int>(v);
    }
  }
  try {
    return std::make_unique<vk::VulkanBackend>(device);
  } catch (const std::exception& e) {
    if (why) *why = without_prefix(e.what());
    return nullptr;
  }
}

std::vector<std::string> list_vulkan_devices() {
  std::vector<std::string> out;
  try {
    const std::vector<std::string> all = vk::Device::describe_all();
    for (size_t i = 0; i < all.size(); ++i) out.push_back("vulkan" + std::to_string(i) + ": " + all[i]);
    if (all.empty()) out.push_back("vulkan: no device");
  } catch (const std::exception& e) {
    out.push_back("vulkan: unavailable (" + without_prefix(e.what()) + ")");
  }
  return out;
}

}  // namespace xent
