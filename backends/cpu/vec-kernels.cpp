// The reference element-wise kernels and the choice of a SIMD table.
#include "backends/cpu/vec-kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backends/cpu/quant-kernels.h"
#include "formats/quants.h"

namespace xent::cpu {
namespace {

double exp_sum_ref(float* x, int64_t n, float shift) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    sum += x[i];
  }
  return sum;
}

float silu(float x) { return x / (1.0f + std::exp(-x)); }

void swiglu_ref(int64_t n, float* y, const float* g, const float* u) {
  for (int64_t i = 0; i < n; ++i) y[i] = u ? silu(g[i]) * u[i] : silu(g[i]);
}

void gelu_ref(int64_t n, float* y, const float* x) {
  constexpr float kSqrt2OverPi = 0.79788456080286535588f;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    y[i] = 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * v * (1.0f + 0.044715f * v * v)));
  }
}

void softmax_ref(float* x, int64_t n, float scale) {
  float max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    x[i] *= scale;
    max = std::max(max, x[i]);
  }
  const float inv = static_cast<float>(1.0 / exp_sum_ref(x, n, max));
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

double sum_sq_ref(const float* x, int64_t n) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  return sum;
}

void to_f16_ref(int64_t n, uint16_t* y, const float* x) {
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_fp16(x[i]);
}

constexpr VecKernels kRef = {exp_sum_ref, swiglu_ref, gelu_ref, softmax_ref, sum_sq_ref, to_f16_ref};

}  // namespace

const VecKernels* vec_kernels_ref() { return &kRef; }

const VecKernels* vec_kernels_best() {
  static const VecKernels* best = [] {
    const char* level = simd_level();
    const VecKernels* k = nullptr;
    if (std::strncmp(level, "avx", 3) == 0) k = vec_kernels_avx2();  // avx2, avxvnni, avx512
    if (std::strncmp(level, "neon", 4) == 0) k = vec_kernels_neon();
    return k ? k : &kRef;
  }();
  return best;
}

// The SIMD files are compiled for their architecture only (backends/cpu/CMakeLists.txt).
#if !(defined(__x86_64__) || defined(_M_X64))
const VecKernels* vec_kernels_avx2() { return nullptr; }
#endif
#if !defined(__aarch64__)
const VecKernels* vec_kernels_neon() { return nullptr; }
#endif

}  // namespace xent::cpu
