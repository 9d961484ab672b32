// Element-wise float kernels of the CPU ops whose cost is a transcendental per element:
// softmax's exponentials, SiLU (SwiGLU) and GELU. Each has a reference (std::exp, std::tanh)
// and, where the CPU has the features, a SIMD version with a polynomial exp that is within
// a few ulp of std::exp; tests compare the two.
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
};

const VecKernels* vec_kernels_ref();
// The SIMD table where quant-kernels.cpp's simd_level() has one, else the reference.
const VecKernels* vec_kernels_best();

// The SIMD tables (null where not compiled in).
const VecKernels* vec_kernels_avx2();
const VecKernels* vec_kernels_neon();

}  // namespace xent::cpu
