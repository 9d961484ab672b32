// The host-side view of the CUDA kernels: plain structs that describe operands in device
// memory, and one launcher per op (each defined in its own .cu file), all on one stream.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "backends/cuda/dequant.cuh"

namespace xent::cuda {

// An operand in device memory: the Tensor's shape and byte strides with its address.
struct DevTensor {
  uint8_t* data = nullptr;
  uint32_t type = kF32;
  int64_t ne[4] = {1, 1, 1, 1};
  size_t nb[4] = {0, 0, 0, 0};
};

// One node: the destination, its operands (absent ones have data == nullptr) and params.
struct OpArgs {
  DevTensor dst;
  DevTensor src[6];
  int32_t i_params[4] = {};
  float f_params[4] = {};
};

// Each launcher enqueues its kernels on `s` and throws xent::Error on a launch error.
void launch_get_rows(const OpArgs& a, cudaStream_t s);
void launch_mul_mat(const OpArgs& a, cudaStream_t s);  // picks mat-vec or tiled mat-mat
void launch_add(const OpArgs& a, cudaStream_t s);
void launch_mul(const OpArgs& a, cudaStream_t s);
void launch_swiglu(const OpArgs& a, cudaStream_t s);
void launch_scale(const OpArgs& a, cudaStream_t s);
void launch_silu(const OpArgs& a, cudaStream_t s);
void launch_gelu(const OpArgs& a, cudaStream_t s);
void launch_rms_norm(const OpArgs& a, cudaStream_t s);
void launch_layer_norm(const OpArgs& a, cudaStream_t s);
void launch_rope(const OpArgs& a, cudaStream_t s);
void launch_attention(const OpArgs& a, cudaStream_t s);

// cudaSuccess when this binary holds kernel code the current device can run (a device
// older than the compiled architectures reports cudaErrorInvalidDeviceFunction).
cudaError_t probe_kernel_image();

// Largest head size the attention kernel handles (registers per lane scale with it).
constexpr int64_t kMaxAttentionHeadDim = 256;
// Batches of up to this many tokens use the mat-vec kernel; larger ones the tiled one.
constexpr int64_t kMatVecMaxCols = 8;

}  // namespace xent::cuda
