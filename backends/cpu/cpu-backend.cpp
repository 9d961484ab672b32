#include "backends/cpu/cpu-backend.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "backends/cpu/mul-mat.h"
#include "backends/cpu/ops.h"
#include "backends/cpu/packed-weights.h"
#include "backends/cpu/thread-pool.h"
#include "formats/error.h"

#ifdef XENT_HAVE_OPENMP
#include <omp.h>
#endif

namespace xent::cpu {
namespace {

struct HostBuffer final : Buffer {
  ~HostBuffer() override { std::free(host); }
};

void omp_barrier() {
#ifdef XENT_HAVE_OPENMP
#pragma omp barrier
#endif
}

}  // namespace

CpuBackend::CpuBackend(int n_threads, bool use_reference)
    : n_threads_(std::max(1, n_threads)), use_reference_(use_reference) {}

CpuBackend::~CpuBackend() = default;

std::string CpuBackend::device_description() const {
  return std::string("CPU (") + simd_level() + ", " + std::to_string(n_threads_) + " threads)";
}

bool CpuBackend::supports(const Tensor& node) const { return cpu_supports(node); }

std::unique_ptr<Buffer> CpuBackend::alloc_buffer(size_t bytes) {
  auto b = std::make_unique<HostBuffer>();
  const size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
  b->host = std::aligned_alloc(64, rounded);
  if (!b->host) throw Error("cpu: out of memory allocating " + std::to_string(bytes) + " bytes");
  b->backend = this;
  b->size = bytes;
  return b;
}

void CpuBackend::upload(Buffer& dst, size_t offset, const void* src, size_t n) {
  std::memcpy(static_cast<uint8_t*>(dst.host) + offset, src, n);
}

void CpuBackend::download(const Buffer& src, size_t offset, void* dst, size_t n) {
  std::memcpy(dst, static_cast<const uint8_t*>(src.host) + offset, n);
}

void CpuBackend::set_n_threads(int n) { n_threads_ = std::max(1, n); }

void CpuBackend::compute(const std::vector<Tensor*>& nodes) {
  size_t need = 0;
  for (const Tensor* t : nodes) need = std::max(need, work_bytes(*t, n_threads_));
  if (work_.size() < need) work_.resize(need);

  OpContext base;
  base.work = work_.data();
  base.kernels = use_reference_ ? kernels_ref : kernels_best;
  base.vec = use_reference_ ? vec_kernels_ref() : vec_kernels_best();
  base.packed = use_reference_ ? nullptr : packed_.get();

  // Steps: matmuls of one activation tensor (views between them compute nothing) share a
  // step; the reference path keeps one node per step.
  steps_.clear();
  for (size_t i = 0; i < nodes.size();) {
    if (nodes[i]->op == Op::View) {
      ++i;
      continue;
    }
    Step st{&nodes[i], 1};
    size_t j = i + 1;
    if (!use_reference_ && nodes[i]->op == Op::MulMat) {
      // Members must be adjacent in `nodes` (the group is a span of it): stop at a view.
      while (j < nodes.size() && st.n < kMaxMulMatGroup && mul_mat_groupable(*nodes[i], *nodes[j], base)) {
        ++st.n;
        ++j;
      }
    }
    steps_.push_back(st);
    i = j;
  }

  auto run = [&](int ith, int nth, void (*barrier)()) {
    OpContext ctx = base;
    ctx.ith = ith;
    ctx.nth = nth;
    ctx.barrier = barrier;
    for (const Step& st : steps_) {
      if (st.n > 1) mul_mat_tiled_group(st.nodes, st.n, ctx);
      else compute_node(*st.nodes[0], ctx);
      ctx.barrier();
    }
  };
#ifdef XENT_HAVE_OPENMP
  if (n_threads_ > 1) {
#pragma omp parallel num_threads(n_threads_)
    run(omp_get_thread_num(), omp_get_num_threads(), omp_barrier);
    return;
  }
#else
  if (n_threads_ > 1) {
    if (!pool_ || pool_->size() < n_threads_) {
      pool_.reset();  // join the old threads before starting more
      pool_ = std::make_unique<ThreadPool>(n_threads_);
    }
    using Run = decltype(run);
    pool_->run(
        n_threads_, [](void* fn, int ith, int nth) { (*static_cast<Run*>(fn))(ith, nth, ThreadPool::barrier); },
        &run);
    return;
  }
#endif
  run(0, 1, omp_barrier);
}

}  // namespace xent::cpu
