// Device helpers shared by the kernels: warp reductions, launch-error checks and the
// row/element addressing of DevTensor operands.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "backends/cuda/cuda-ops.h"
#include "formats/error.h"

namespace xent::cuda {

// Kernel launches report configuration errors only through cudaGetLastError.
inline void check_launch(const char* kernel) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    throw Error(std::string("cuda: launching ") + kernel + ": " + cudaGetErrorString(e));
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over a whole block (blockDim.x a multiple of 32, at most 1024); every thread gets it.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // `partial` may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int n_warps = blockDim.x >> 5;
  float t = lane < n_warps ? partial[lane] : 0.0f;
  return warp_sum(t);
}

// Address of row (i1, i2, i3) of an operand.
__device__ __forceinline__ uint8_t* row_ptr(const DevTensor& t, int64_t i1, int64_t i2 = 0,
                                            int64_t i3 = 0) {
  return t.data + i1 * t.nb[1] + i2 * t.nb[2] + i3 * t.nb[3];
}

// Splits a flat row index of a [ne0, ne1, ne2, ne3] tensor into (i1, i2, i3).
__device__ __forceinline__ void split_row(const DevTensor& t, int64_t r, int64_t& i1, int64_t& i2,
                                          int64_t& i3) {
  i1 = r % t.ne[1];
  i2 = (r / t.ne[1]) % t.ne[2];
  i3 = r / (t.ne[1] * t.ne[2]);
}

inline int64_t n_rows(const DevTensor& t) { return t.ne[1] * t.ne[2] * t.ne[3]; }

// Blocks needed for n items at `per_block` each (grid x may go up to 2^31 - 1).
inline unsigned int n_blocks(int64_t n, int64_t per_block) {
  return static_cast<unsigned int>((n + per_block - 1) / per_block);
}

// Threads per block for a per-row kernel: enough warps for the row, at most `cap`.
inline int row_threads(int64_t ne0, int cap) {
  int64_t t = (ne0 + 31) / 32 * 32;
  if (t > cap) t = cap;
  return static_cast<int>(t < 32 ? 32 : t);
}

}  // namespace xent::cuda
