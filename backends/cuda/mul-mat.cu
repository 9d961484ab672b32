// Op::MulMat on the GPU, straight from the weights' blocks. Decode (few columns) uses a
// mat-vec kernel with one warp per weight row; prompts use a shared-memory tiled kernel
// that dequantizes 64x32 weight tiles once and reuses them across 64 tokens. Both
// accumulate in f32 from the same dequant8 routine.
#include "backends/cuda/cuda-common.cuh"

namespace xent::cuda {
namespace {

constexpr int kWarpsPerBlock = 4;  // mat-vec: weight rows per block

// dst[c][r] = sum_k w[r][k] * x[c][k] for every column c < n_cols (at most kMatVecMaxCols).
// Lane l handles groups of 8 elements l, l + 32, ...: consecutive lanes read consecutive
// bytes of the row and of the activations, then a warp reduction gives the row's sums.
template <uint32_t T>
__global__ void __launch_bounds__(32 * kWarpsPerBlock)
mat_vec_kernel(DevTensor w, DevTensor x, DevTensor dst, int n_cols) {
  const int lane = threadIdx.x & 31;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (r >= w.ne[1]) return;  // whole warps leave together, so the shuffles stay full
  const uint8_t* wrow = row_ptr(w, r);
  const int64_t n_groups = w.ne[0] / 8;
  float acc[kMatVecMaxCols];
#pragma unroll
  for (int c = 0; c < kMatVecMaxCols; ++c) acc[c] = 0.0f;
  for (int64_t g = lane; g < n_groups; g += 32) {
    float wv[8];
    dequant8<T>(wrow, g, wv);
#pragma unroll
    for (int c = 0; c < kMatVecMaxCols; ++c) {
      if (c < n_cols) {
        const float* xv = reinterpret_cast<const float*>(row_ptr(x, c)) + 8 * g;
        float s = 0.0f;
#pragma unroll
        for (int i = 0; i < 8; ++i) s = fmaf(wv[i], xv[i], s);
        acc[c] += s;
      }
    }
  }
#pragma unroll
  for (int c = 0; c < kMatVecMaxCols; ++c) {
    if (c < n_cols) {
      const float sum = warp_sum(acc[c]);
      if (lane == 0) reinterpret_cast<float*>(row_ptr(dst, c))[r] = sum;
    }
  }
}

// Tiled mat-mat: a block computes a 64 (weight rows) x 64 (tokens) tile of dst with 256
// threads, each owning a 4x4 sub-tile (rows ty + 16i, tokens tx + 16j). Per 32-wide step
// of k, every thread dequantizes one group of 8 weights and loads 8 activations.
constexpr int kTileM = 64, kTileN = 64, kTileK = 32;

template <uint32_t T>
__global__ void __launch_bounds__(256) mat_mat_kernel(DevTensor w, DevTensor x, DevTensor dst) {
  __shared__ float ws[kTileM][kTileK + 1];  // +1: rows fall in different banks
  __shared__ float xs[kTileN][kTileK + 1];
  const int tid = threadIdx.x;
  const int tx = tid % 16, ty = tid / 16;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kTileM;
  const int64_t col0 = static_cast<int64_t>(blockIdx.y) * kTileN;
  const int64_t m = w.ne[1], n = x.ne[1], k = w.ne[0];
  const int64_t n_groups = k / 8;

  // The group of 8 this thread loads in each tile: row (or token) tid / 4, k-group tid % 4.
  const int load_r = tid / 4, load_g = tid % 4;

  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < k; k0 += kTileK) {
    const int64_t g = k0 / 8 + load_g;
    float v[8];
    if (row0 + load_r < m && g < n_groups) {
      dequant8<T>(row_ptr(w, row0 + load_r), g, v);
    } else {
      for (int i = 0; i < 8; ++i) v[i] = 0.0f;
    }
    for (int i = 0; i < 8; ++i) ws[load_r][load_g * 8 + i] = v[i];
    if (col0 + load_r < n && g < n_groups) {
      const float* xv = reinterpret_cast<const float*>(row_ptr(x, col0 + load_r)) + 8 * g;
      for (int i = 0; i < 8; ++i) v[i] = xv[i];
    } else {
      for (int i = 0; i < 8; ++i) v[i] = 0.0f;
    }
    for (int i = 0; i < 8; ++i) xs[load_r][load_g * 8 + i] = v[i];
    __syncthreads();
#pragma unroll 8
    for (int kk = 0; kk < kTileK; ++kk) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = ws[ty + 16 * i][kk];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = xs[tx + 16 * j][kk];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();  // the tiles are overwritten in the next step
  }
  for (int j = 0; j < 4; ++j) {
    const int64_t c = col0 + tx + 16 * j;
    if (c >= n) continue;
    float* out = reinterpret_cast<float*>(row_ptr(dst, c));
    for (int i = 0; i < 4; ++i) {
      const int64_t r = row0 + ty + 16 * i;
      if (r < m) out[r] = acc[i][j];
    }
  }
}

}  // namespace

void launch_mul_mat(const OpArgs& a, cudaStream_t s) {
  const DevTensor& w = a.src[0];
  const DevTensor& x = a.src[1];
  const int64_t m = w.ne[1], n = x.ne[1];
  if (m == 0 || n == 0) return;
  bool known;
  if (n <= kMatVecMaxCols) {
    known = dispatch_type(w.type, [&](auto tag) {
      constexpr uint32_t T = decltype(tag)::value;
      mat_vec_kernel<T><<<n_blocks(m, kWarpsPerBlock), 32 * kWarpsPerBlock, 0, s>>>(
          w, x, a.dst, static_cast<int>(n));
    });
  } else {
    const dim3 grid(n_blocks(m, kTileM), n_blocks(n, kTileN));
    known = dispatch_type(w.type, [&](auto tag) {
      constexpr uint32_t T = decltype(tag)::value;
      mat_mat_kernel<T><<<grid, 256, 0, s>>>(w, x, a.dst);
    });
  }
  if (!known) throw Error("cuda: mul_mat has no kernel for type id " + std::to_string(w.type));
  check_launch("mul_mat");
}

}  // namespace xent::cuda
