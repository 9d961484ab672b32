// Op::RmsNorm and Op::LayerNorm on the GPU: one block per row, block-wide sums in f32
// (the CPU reference sums in f64; rows are at most a few thousand wide, well within f32).
#include "backends/cuda/cuda-common.cuh"

namespace xent::cuda {
namespace {

// x / rms(x) * w (w optional: data == nullptr).
__global__ void rms_norm_kernel(DevTensor x, DevTensor w, DevTensor dst, float eps) {
  int64_t i1, i2, i3;
  split_row(dst, blockIdx.x, i1, i2, i3);
  const float* px = reinterpret_cast<const float*>(row_ptr(x, i1, i2, i3));
  float* pd = reinterpret_cast<float*>(row_ptr(dst, i1, i2, i3));
  const float* pw = reinterpret_cast<const float*>(w.data);
  const int64_t n = dst.ne[0];
  float sum_sq = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) sum_sq = fmaf(px[i], px[i], sum_sq);
  sum_sq = block_sum(sum_sq);
  const float scale = 1.0f / sqrtf(sum_sq / static_cast<float>(n) + eps);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) pd[i] = px[i] * scale * (pw ? pw[i] : 1.0f);
}

// (x - mean) / std * w + b (w, b optional).
__global__ void layer_norm_kernel(DevTensor x, DevTensor w, DevTensor b, DevTensor dst, float eps) {
  int64_t i1, i2, i3;
  split_row(dst, blockIdx.x, i1, i2, i3);
  const float* px = reinterpret_cast<const float*>(row_ptr(x, i1, i2, i3));
  float* pd = reinterpret_cast<float*>(row_ptr(dst, i1, i2, i3));
  const float* pw = reinterpret_cast<const float*>(w.data);
  const float* pb = reinterpret_cast<const float*>(b.data);
  const int64_t n = dst.ne[0];
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) sum += px[i];
  const float mean = block_sum(sum) / static_cast<float>(n);
  float sum_sq = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float d = px[i] - mean;
    sum_sq = fmaf(d, d, sum_sq);
  }
  sum_sq = block_sum(sum_sq);
  const float scale = 1.0f / sqrtf(sum_sq / static_cast<float>(n) + eps);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
    pd[i] = (px[i] - mean) * scale * (pw ? pw[i] : 1.0f) + (pb ? pb[i] : 0.0f);
}

}  // namespace

void launch_rms_norm(const OpArgs& a, cudaStream_t s) {
  const int64_t rows = n_rows(a.dst);
  if (rows == 0) return;
  rms_norm_kernel<<<static_cast<unsigned int>(rows), row_threads(a.dst.ne[0], 256), 0, s>>>(
      a.src[0], a.src[1], a.dst, a.f_params[0]);
  check_launch("rms_norm");
}

void launch_layer_norm(const OpArgs& a, cudaStream_t s) {
  const int64_t rows = n_rows(a.dst);
  if (rows == 0) return;
  layer_norm_kernel<<<static_cast<unsigned int>(rows), row_threads(a.dst.ne[0], 256), 0, s>>>(
      a.src[0], a.src[1], a.src[2], a.dst, a.f_params[0]);
  check_launch("layer_norm");
}

}  // namespace xent::cuda
