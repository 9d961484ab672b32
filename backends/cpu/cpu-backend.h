// The CPU backend: host memory, the op kernels of ops.h, and a thread team per
// backend instance (OpenMP when built with it, else our own ThreadPool).
#pragma once
#include <memory>
#include <vector>

#include "backends/backend.h"

namespace xent::cpu {

class ThreadPool;
struct PackedWeights;

class CpuBackend final : public Backend {
 public:
  // use_reference: run the scalar reference dot products instead of SIMD (tests).
  explicit CpuBackend(int n_threads, bool use_reference = false);
  ~CpuBackend() override;
  std::string name() const override { return "cpu"; }
  std::string device_description() const override;
  bool is_host() const override { return true; }
  bool supports(const Tensor& node) const override;
  bool supports_attention_mask() const override { return true; }
  std::unique_ptr<Buffer> alloc_buffer(size_t bytes) override;
  void upload(Buffer& dst, size_t offset, const void* src, size_t n) override;
  void download(const Buffer& src, size_t offset, void* dst, size_t n) override;
  void compute(const std::vector<Tensor*>& nodes) override;
  void set_n_threads(int n) override;
  int n_threads() const { return n_threads_; }
  // Repacked copies of the model's weights (see packed-weights.h) that matmuls use in
  // place of the originals; ignored by the reference kernels.
  void set_packed_weights(std::shared_ptr<const PackedWeights> p) { packed_ = std::move(p); }
  bool uses_reference_kernels() const { return use_reference_; }
  // Steps (each one barrier) of the last compute(): nodes less views, less grouped matmuls.
  size_t n_steps() const { return steps_.size(); }

 private:
  int n_threads_;
  bool use_reference_;
  std::vector<uint8_t> work_;
  std::shared_ptr<const PackedWeights> packed_;
  // What compute() runs, each followed by a barrier: one node, or a group of matmuls of
  // the same activations (mul-mat.h). Kept between calls so a step allocates nothing.
  struct Step {
    const Tensor* const* nodes;  // into the compute() argument
    int n;
  };
  std::vector<Step> steps_;
  // Without OpenMP: started on the first multi-threaded compute(), grown when
  // set_n_threads asks for more threads than it has.
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace xent::cpu
