// AArch64 NEON element-wise kernels: the same exp as vec-kernels-avx2.cpp (n ln2 + r,
// degree-6 polynomial, 2^n in the exponent bits), four lanes at a time. Baseline ARMv8.0.
#include <arm_neon.h>

#include <algorithm>
#include <cmath>

#include "backends/cpu/vec-kernels.h"
#include "formats/quants.h"

namespace xent::cpu {
namespace {

inline float32x4_t exp4(float32x4_t x) {
  const float32x4_t lo = vdupq_n_f32(-87.0f);
  const uint32x4_t keep = vcgeq_f32(x, lo);
  x = vminq_f32(vmaxq_f32(x, lo), vdupq_n_f32(88.0f));
  const float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
  float32x4_t r = vfmsq_n_f32(x, n, 0.693359375f);
  r = vfmsq_n_f32(r, n, -2.12194440e-4f);
  float32x4_t p = vdupq_n_f32(1.0f / 720);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 120), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 24), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 6), p, r);
  p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
  const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
  const float32x4_t v = vmulq_f32(p, vreinterpretq_f32_s32(e));
  return vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(v), keep));
}

double exp_sum_neon(float* x, int64_t n, float shift) {
  float32x4_t acc = vdupq_n_f32(0.f);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t e = exp4(vsubq_f32(vld1q_f32(x + i), vdupq_n_f32(shift)));
    vst1q_f32(x + i, e);
    acc = vaddq_f32(acc, e);
  }
  double sum = 0;
  float lanes[4];
  vst1q_f32(lanes, acc);
  for (float v : lanes) sum += v;
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    sum += x[i];
  }
  return sum;
}

inline float32x4_t silu4(float32x4_t g) { return vdivq_f32(g, vaddq_f32(vdupq_n_f32(1.0f), exp4(vnegq_f32(g)))); }

void swiglu_neon(int64_t n, float* y, const float* g, const float* u) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    float32x4_t v = silu4(vld1q_f32(g + i));
    if (u) v = vmulq_f32(v, vld1q_f32(u + i));
    vst1q_f32(y + i, v);
  }
  for (; i < n; ++i) {
    const float s = g[i] / (1.0f + std::exp(-g[i]));
    y[i] = u ? s * u[i] : s;
  }
}

void gelu_neon(int64_t n, float* y, const float* x) {
  constexpr float kSqrt2OverPi = 0.79788456080286535588f;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t v = vld1q_f32(x + i);
    const float32x4_t z = vmulq_f32(vmulq_n_f32(v, kSqrt2OverPi), vfmaq_n_f32(vdupq_n_f32(1.0f), vmulq_f32(v, v), 0.044715f));
    const float32x4_t e = exp4(vmulq_n_f32(z, -2.0f));
    vst1q_f32(y + i, vdivq_f32(v, vaddq_f32(vdupq_n_f32(1.0f), e)));
  }
  for (; i < n; ++i) {
    const float v = x[i];
    y[i] = 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * v * (1.0f + 0.044715f * v * v)));
  }
}

void softmax_neon(float* x, int64_t n, float scale) {
  float32x4_t vmax = vdupq_n_f32(-INFINITY);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t v = vmulq_n_f32(vld1q_f32(x + i), scale);
    vst1q_f32(x + i, v);
    vmax = vmaxq_f32(vmax, v);
  }
  float max = vmaxvq_f32(vmax);
  for (; i < n; ++i) {
    x[i] *= scale;
    max = std::max(max, x[i]);
  }
  const float inv = static_cast<float>(1.0 / exp_sum_neon(x, n, max));
  for (i = 0; i + 4 <= n; i += 4) vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), inv));
  for (; i < n; ++i) x[i] *= inv;
}

double sum_sq_neon(const float* x, int64_t n) {
  float64x2_t a0 = vdupq_n_f64(0.0), a1 = vdupq_n_f64(0.0);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t v = vld1q_f32(x + i);
    const float64x2_t lo = vcvt_f64_f32(vget_low_f32(v));
    const float64x2_t hi = vcvt_high_f64_f32(v);
    a0 = vfmaq_f64(a0, lo, lo);
    a1 = vfmaq_f64(a1, hi, hi);
  }
  double sum = vaddvq_f64(vaddq_f64(a0, a1));
  for (; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  return sum;
}

// The FPCR's default rounding is to nearest even, as f32_to_fp16.
void to_f16_neon(int64_t n, uint16_t* y, const float* x) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
  for (; i < n; ++i) y[i] = f32_to_fp16(x[i]);
}

constexpr VecKernels kNeon = {exp_sum_neon, swiglu_neon, gelu_neon, softmax_neon, sum_sq_neon, to_f16_neon};

}  // namespace

const VecKernels* vec_kernels_neon() { return &kNeon; }

}  // namespace xent::cpu
