// Op::Rope on the GPU: rotates pairs of each head row by position * freq_scale *
// base^(-2i/n_dims); mode 0 pairs adjacent elements (2i, 2i+1), NeoX mode pairs (i, i+n/2).
// Elements past n_dims are copied. Same float formulas as the CPU reference.
#include "backends/cuda/cuda-common.cuh"

namespace xent::cuda {
namespace {

// grid.x: rows (head i1 of token i2); threads stride the row's elements.
__global__ void rope_kernel(DevTensor x, DevTensor pos, DevTensor dst, int n_dims, bool neox,
                            float base, float freq_scale) {
  int64_t i1, i2, i3;
  split_row(dst, blockIdx.x, i1, i2, i3);
  const float* px = reinterpret_cast<const float*>(row_ptr(x, i1, i2, i3));
  float* pd = reinterpret_cast<float*>(row_ptr(dst, i1, i2, i3));
  const int32_t position = *reinterpret_cast<const int32_t*>(pos.data + i2 * pos.nb[0]);
  const float p = static_cast<float>(position) * freq_scale;
  const int half = n_dims / 2;
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    const float theta = p * powf(base, -2.0f * static_cast<float>(i) / static_cast<float>(n_dims));
    float s, c;
    sincosf(theta, &s, &c);
    const int64_t ia = neox ? i : 2 * i;
    const int64_t ib = neox ? i + half : 2 * i + 1;
    const float x0 = px[ia], x1 = px[ib];
    pd[ia] = x0 * c - x1 * s;
    pd[ib] = x0 * s + x1 * c;
  }
  for (int64_t i = n_dims + threadIdx.x; i < dst.ne[0]; i += blockDim.x) pd[i] = px[i];
}

}  // namespace

void launch_rope(const OpArgs& a, cudaStream_t s) {
  const int64_t rows = n_rows(a.dst);
  if (rows == 0) return;
  const int n_dims = a.i_params[0];
  const bool neox = a.i_params[1] == 2;
  rope_kernel<<<static_cast<unsigned int>(rows), row_threads(a.dst.ne[0] / 2, 128), 0, s>>>(
      a.src[0], a.src[1], a.dst, n_dims, neox, a.f_params[0], a.f_params[1]);
  check_launch("rope");
}

}  // namespace xent::cuda
