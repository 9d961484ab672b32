// Op::Add, Op::Mul and Op::SwiGlu on the GPU: dst = f(a, b), with b's rows broadcast
// over a's like the CPU reference (b.ne[d] is 1 or a.ne[d]). One block per row of dst.
#include "backends/cuda/cuda-common.cuh"

namespace xent::cuda {
namespace {

struct AddOp {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct MulOp {
  __device__ float operator()(float a, float b) const { return a * b; }
};
struct SwiGluOp {  // silu(gate) * up
  __device__ float operator()(float g, float u) const { return g / (1.0f + expf(-g)) * u; }
};

// grid.x: rows of dst (flattened over dims 1..3); the block's threads stride the row.
template <typename F>
__global__ void binary_kernel(DevTensor a, DevTensor b, DevTensor dst, F f) {
  int64_t i1, i2, i3;
  split_row(dst, blockIdx.x, i1, i2, i3);
  const float* pa = reinterpret_cast<const float*>(row_ptr(a, i1, i2, i3));
  const float* pb = reinterpret_cast<const float*>(row_ptr(b, i1 % b.ne[1], i2 % b.ne[2], i3 % b.ne[3]));
  float* pd = reinterpret_cast<float*>(row_ptr(dst, i1, i2, i3));
  for (int64_t i0 = threadIdx.x; i0 < dst.ne[0]; i0 += blockDim.x) pd[i0] = f(pa[i0], pb[i0]);
}

template <typename F>
void launch_binary(const OpArgs& a, cudaStream_t s, const char* name) {
  const int64_t rows = n_rows(a.dst);
  if (rows == 0 || a.dst.ne[0] == 0) return;
  binary_kernel<<<static_cast<unsigned int>(rows), row_threads(a.dst.ne[0], 256), 0, s>>>(
      a.src[0], a.src[1], a.dst, F{});
  check_launch(name);
}

}  // namespace

void launch_add(const OpArgs& a, cudaStream_t s) { launch_binary<AddOp>(a, s, "add"); }
void launch_mul(const OpArgs& a, cudaStream_t s) { launch_binary<MulOp>(a, s, "mul"); }
void launch_swiglu(const OpArgs& a, cudaStream_t s) { launch_binary<SwiGluOp>(a, s, "swiglu"); }

}  // namespace xent::cuda
