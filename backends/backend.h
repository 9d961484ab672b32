// The interface every compute backend implements (CPU, Vulkan, CUDA). A backend says
// which nodes it supports, owns its memory, moves bytes in and out, and runs a split.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace xent {

class Backend;

// A block of memory owned by one backend. `host` is non-null when the CPU can address
// the bytes directly (CPU arenas); device buffers keep it null.
struct Buffer {
  virtual ~Buffer() = default;
  Backend* backend = nullptr;
  size_t size = 0;
  void* host = nullptr;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;                 // "cpu", "vulkan0", "cuda0"
  virtual std::string device_description() const = 0;  // human-readable device name
  // True when the backend computes on host memory (tensors' `data` pointers).
  virtual bool is_host() const = 0;
  // Whether this backend can compute `node` (op, operand types and shapes).
  virtual bool supports(const Tensor& node) const = 0;
  // Whether Op::Attention with a token-tree mask (src[5]) is implemented; the scheduler
  // only places masked attention on backends that say so.
  virtual bool supports_attention_mask() const { return false; }

  // Throws xent::Error when out of memory.
  virtual std::unique_ptr<Buffer> alloc_buffer(size_t bytes) = 0;
  virtual void upload(Buffer& dst, size_t offset, const void* src, size_t n) = 0;
  virtual void download(const Buffer& src, size_t offset, void* dst, size_t n) = 0;
  virtual size_t alignment() const { return 64; }

  // Computes the nodes in order. Every operand has storage on this backend (for a host
  // backend: `data`; else `buffer` owned by this backend + `offset`). May return before
  // the work finishes; synchronize() waits.
  virtual void compute(const std::vector<Tensor*>& nodes) = 0;
  virtual void synchronize() {}

  virtual void set_n_threads(int /*n*/) {}
};

// Creates a backend by name ("cpu", "vulkan", "vulkan1", "cuda", ...). Returns null and
// sets *why when it is not compiled in or no such device exists (never throws for that).
std::unique_ptr<Backend> create_backend(const std::string& name, int n_threads, std::string* why);
// Names of the backends compiled into this build, and their devices, for `xent info --devices`.
std::vector<std::string> available_backends();
std::vector<std::string> list_devices();

}  // namespace xent
