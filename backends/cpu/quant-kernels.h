// Row dot products between weights of any GGUF type and activations, on the CPU.
// A matmul quantizes its activations once into the weight type's `act_type` and then
// calls `vec_dot` per (weight row, activation row). Each entry has a scalar reference
// (kernels_ref) and, where the CPU has the features, a SIMD version (kernels_best).
#pragma once
#include <cstddef>
#include <cstdint>

#include "formats/dtype.h"

namespace xent::cpu {

struct QuantKernels {
  DType weight_type;
  DType act_type;  // activation format: F32, Q8_0 or Q8_K (internal layouts may differ from ggml)
  size_t (*act_row_bytes)(int64_t n);                         // bytes of one activation row
  void (*quantize_act)(const float* x, void* y, int64_t n);   // f32 row -> act_type row
  // s = sum_i w[i] * a[i] over n elements (n a multiple of the block size).
  void (*vec_dot)(int64_t n, float* s, const void* w_row, const void* act_row);
};

// Null when the weight type has no CPU matmul.
const QuantKernels* kernels_ref(DType weight_type);
// The fastest variant this CPU supports (chosen once, from cpuid / hwcap).
const QuantKernels* kernels_best(DType weight_type);
// Name of the SIMD level in use: "avx512", "avx2", "neon-dotprod", "neon", "scalar".
const char* simd_level();

}  // namespace xent::cpu
