// Element-wise float kernels of the CPU ops: softmax and its exponentials, SiLU (SwiGLU),
// GELU, the sum of squares of a norm and the f16 rounding of KV-cache rows. Each has a
// reference (std::exp, std::tanh, plain loops) and, where the CPU has the features, a SIMD
// version (exp by a polynomial within a few ulp of std::exp); tests compare the two.
#pragma once
#include <cstdint>

namespace xent::cpu {

struct VecKernels {
  // x[i] = exp(x[i] - shift) for i < n, with exp(-inf) = 0; returns the sum of the results.
  double (*exp_sum)(float* x, int64_t n, float shift);
  // y[i] = silu(g[i]) * u[i]; with u == nullptr, y[i] = silu(g[i]).
  void (*swiglu)(int64_t n, float* y, const float* g, const float* u);
  // y[i] = GELU(x[i]), the tanh form GPT-2 uses.
  void (*gelu)(int64_t n, float* y, const float* x);
  // x = softmax(scale * x) in place, for scale > 0; -inf entries (masked keys) become 0.
  void (*softmax)(float* x, int64_t n, float scale);
  // The sum of x[i]^2 for i < n, accumulated in double.
  double (*sum_sq)(const float* x, int64_t n);
  // y[i] = x[i] as f16 bits, rounded to nearest even (formats/quants.h's f32_to_fp16).
  void (*to_f16)(int64_t n, uint16_t* y, const float* x);
};

const VecKernels* vec_kernels_ref();
// The SIMD table where quant-kernels.cpp's simd_level() has one, else the reference.
const VecKernels* vec_kernels_best();

// The SIMD tables (null where not compiled in).
const VecKernels* vec_kernels_avx2();
const VecKernels* vec_kernels_neon();

}  // namespace xent::cpu
