// Op::Scale, Op::Silu and Op::Gelu on the GPU: dst = f(a) per element, one block per row,
// with the same formulas as the CPU reference (GELU is the tanh approximation of GPT-2).
#include "backends/cuda/cuda-common.cuh"

namespace xent::cuda {
namespace {

struct ScaleOp {
  float s;
  __device__ float operator()(float x) const { return x * s; }
};
struct SiluOp {
  __device__ float operator()(float x) const { return x / (1.0f + expf(-x)); }
};
struct GeluOp {
  __device__ float operator()(float x) const {
    constexpr float kSqrt2OverPi = 0.79788456080286535588f;
    return 0.5f * x * (1.0f + tanhf(kSqrt2OverPi * x * (1.0f + 0.044715f * x * x)));
  }
};

template <typename F>
__global__ void unary_kernel(DevTensor a, DevTensor dst, F f) {
  int64_t i1, i2, i3;
  split_row(dst, blockIdx.x, i1, i2, i3);
  const float* pa = reinterpret_cast<const float*>(row_ptr(a, i1, i2, i3));
  float* pd = reinterpret_cast<float*>(row_ptr(dst, i1, i2, i3));
  for (int64_t i0 = threadIdx.x; i0 < dst.ne[0]; i0 += blockDim.x) pd[i0] = f(pa[i0]);
}

template <typename F>
void launch_unary(const OpArgs& a, cudaStream_t s, F f, const char* name) {
  const int64_t rows = n_rows(a.dst);
  if (rows == 0 || a.dst.ne[0] == 0) return;
  unary_kernel<<<static_cast<unsigned int>(rows), row_threads(a.dst.ne[0], 256), 0, s>>>(a.src[0], a.dst, f);
  check_launch(name);
}

}  // namespace

void launch_scale(const OpArgs& a, cudaStream_t s) { launch_unary(a, s, ScaleOp{a.f_params[0]}, "scale"); }
void launch_silu(const OpArgs& a, cudaStream_t s) { launch_unary(a, s, SiluOp{}, "silu"); }
void launch_gelu(const OpArgs& a, cudaStream_t s) { launch_unary(a, s, GeluOp{}, "gelu"); }

}  // namespace xent::cuda

namespace xent::cuda {

cudaError_t probe_kernel_image() {
  cudaFuncAttributes attr;
  return cudaFuncGetAttributes(&attr, unary_kernel<SiluOp>);
}

}  // namespace xent::cuda
