// AArch64 NEON matmul kernels, written once over a 16-byte int8 dot `dot16` that the
// including file supplies: quant-kernels-neon.cpp (ARMv8.0 widening multiplies) and, through
// quant-kernels-neon-sdot-impl.h (SDOT), quant-kernels-neon-dotprod.cpp and -i8mm.cpp. Same
// math as quant-kernels-ref.cpp.
//
// Everything here has internal linkage (anonymous namespace, no std templates), so the
// compilations of this file, some with -march=...+dotprod, never share a symbol and the
// linker cannot hand SDOT code to a CPU without it. Activation quantizers write the
// reference's bytes exactly; integer block sums are exact, only float summation order
// differs from the reference.
#pragma once
#include <arm_neon.h>

#include <cstring>

#include "backends/cpu/quant-kernels-internal.h"
#include "formats/quants.h"

#ifndef XENT_NEON_DOT16_DEFINED
#error "define dot16(int32x4_t acc, int8x16_t a, int8x16_t b) and XENT_NEON_DOT16_DEFINED first"
#endif

namespace xent::cpu {
namespace {

// Exact for every fp16 value, like the reference's table-free conversion.
inline float h2f(uint16_t h) {
  return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

// Sum of two 16-byte dots, as one int32x4 (lanes are partial sums; only the total counts).
inline int32x4_t dot32(int8x16_t w0, int8x16_t w1, const int8_t* a) {
  return dot16(dot16(vdupq_n_s32(0), w0, vld1q_s8(a)), w1, vld1q_s8(a + 16));
}

inline int8x16_t s8(uint8x16_t v) { return vreinterpretq_s8_u8(v); }

// Byte j = 0xFF where bit j of `bits` is set (j < 16).
inline uint8x16_t expand_bits16(uint32_t bits) {
  const uint8x16_t bytes = vcombine_u8(vdup_n_u8(static_cast<uint8_t>(bits)),
                                       vdup_n_u8(static_cast<uint8_t>(bits >> 8)));
  const uint8_t m[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  return vtstq_u8(bytes, vld1q_u8(m));
}

// ---- activation quantizers (byte-identical to the _ref ones) ----

// max |x| over 32 floats; maxnm ignores NaN like the reference's fmax.
inline float amax_n(const float* x, int n) {
  float32x4_t m = vabsq_f32(vld1q_f32(x));
  for (int i = 4; i < n; i += 4) m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(x + i)));
  return vmaxnmvq_f32(m);
}

// q[j] = min(127, round_half_even(x[j] * id)) for 16 values (-127 is the floor by
// construction, so the saturating narrows only ever clip at the top, as the reference).
inline int8x16_t round_16(const float* x, float id) {
  const int32x4_t i0 = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x), id));
  const int32x4_t i1 = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + 4), id));
  const int32x4_t i2 = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + 8), id));
  const int32x4_t i3 = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + 12), id));
  const int16x8_t h0 = vcombine_s16(vqmovn_s32(i0), vqmovn_s32(i1));
  const int16x8_t h1 = vcombine_s16(vqmovn_s32(i2), vqmovn_s32(i3));
  return vcombine_s8(vqmovn_s16(h0), vqmovn_s16(h1));
}

// Quantizes 32 values with d = amax/127 into q; returns d.
inline float quantize_32(const float* x, int8_t* q) {
  const float d = amax_n(x, kQK) / 127.f;
  const float id = d != 0 ? 1.f / d : 0.f;
  vst1q_s8(q, round_16(x, id));
  vst1q_s8(q + 16, round_16(x + 16, id));
  return d;
}

void quantize_act_q8_0_neon(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<ActQ8_0*>(vy);
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) y[b].d = f32_to_fp16(quantize_32(x, y[b].qs));
}

void quantize_act_q8_1_neon(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<ActQ8_1*>(vy);
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    y[b].d = f32_to_fp16(quantize_32(x, y[b].qs));
    y[b].sum = static_cast<int16_t>(vaddlvq_s8(vld1q_s8(y[b].qs)) + vaddlvq_s8(vld1q_s8(y[b].qs + 16)));
  }
}

void quantize_act_q8_k_neon(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<ActQ8_K*>(vy);
  for (int64_t b = 0; b < n / kQKK; ++b, x += kQKK) {
    const float amax = amax_n(x, kQKK);
    std::memset(&y[b], 0, sizeof(ActQ8_K));
    if (!(amax > 0)) continue;
    // The scale's sign comes from the first value of that magnitude, as in the reference.
    float max = amax;
    for (int j = 0; j < kQKK; ++j)
      if (x[j] == amax || x[j] == -amax) {
        max = x[j];
        break;
      }
    const float iscale = -127.f / max;
    for (int i = 0; i < kQKK; i += 16) {
      const int8x16_t q = round_16(x + i, iscale);
      vst1q_s8(y[b].qs + i, q);
      y[b].bsums[i / 16] = vaddlvq_s8(q);
    }
    y[b].d = 1.f / iscale;
  }
}

// ---- plain types: f32 FMA over 32 lanes (8 accumulators, like the AVX2 path) ----

inline float32x4_t load_f16x4(const uint16_t* p) {
  return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}
inline float32x4_t load_bf16x4(const uint16_t* p) {
  return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
}
inline float32x4_t load_f32x4(const float* p) { return vld1q_f32(p); }
inline float one_f32(float v) { return v; }
inline float one_f16(uint16_t h) { return h2f(h); }
inline float one_bf16(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// F32, F16 and BF16 differ only in how 4 weights become floats. (F16 weights are widened
// rather than multiplied in fp16: the activations are f32 and fp16 products would cost
// three decimal digits the reference keeps.)
template <typename W, float32x4_t (*load4)(const W*), float (*load1)(W)>
void vec_dot_plain_neon(int64_t n, float* s, const void* vw, const void* va) {
  const W* w = static_cast<const W*>(vw);
  const float* a = static_cast<const float*>(va);
  float32x4_t acc[8];
  for (float32x4_t& v : acc) v = vdupq_n_f32(0.f);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 8; ++k) acc[k] = vfmaq_f32(acc[k], load4(w + i + 4 * k), vld1q_f32(a + i + 4 * k));
  for (; i + 4 <= n; i += 4) acc[0] = vfmaq_f32(acc[0], load4(w + i), vld1q_f32(a + i));
  const float32x4_t s01 = vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3]));
  const float32x4_t s23 = vaddq_f32(vaddq_f32(acc[4], acc[5]), vaddq_f32(acc[6], acc[7]));
  float sum = vaddvq_f32(vaddq_f32(s01, s23));
  for (; i < n; ++i) sum += load1(w[i]) * a[i];
  *s = sum;
}

void dot_rows_f16_neon(int64_t n, float* s, const float* x, const void* vrows, size_t stride, int64_t n_rows) {
  const auto* rows = static_cast<const uint8_t*>(vrows);
  for (int64_t j = 0; j < n_rows; ++j)
    vec_dot_plain_neon<uint16_t, load_f16x4, one_f16>(n, &s[j], rows + j * stride, x);
}

// K x 4 outputs stay in registers while every row passes by once.
template <int K>
void weighted_sum_cols_neon(float* y, const float* p, const uint8_t* rows, size_t stride, int64_t n_rows) {
  float32x4_t acc[K];
  for (int k = 0; k < K; ++k) acc[k] = vdupq_n_f32(0.f);
  for (int64_t j = 0; j < n_rows; ++j) {
    if (p[j] == 0.0f) continue;
    const auto* r = reinterpret_cast<const uint16_t*>(rows + j * stride);
    for (int k = 0; k < K; ++k) acc[k] = vfmaq_n_f32(acc[k], load_f16x4(r + 4 * k), p[j]);
  }
  for (int k = 0; k < K; ++k) vst1q_f32(y + 4 * k, acc[k]);
}

void weighted_sum_f16_neon(int64_t n, float* y, const float* p, const void* vrows, size_t stride, int64_t n_rows) {
  const auto* rows = static_cast<const uint8_t*>(vrows);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) weighted_sum_cols_neon<8>(y + i, p, rows + i * 2, stride, n_rows);
  for (; i + 4 <= n; i += 4) weighted_sum_cols_neon<1>(y + i, p, rows + i * 2, stride, n_rows);
  for (; i < n; ++i) {
    float sum = 0;
    for (int64_t j = 0; j < n_rows; ++j)
      if (p[j] != 0.0f) sum += p[j] * one_f16(reinterpret_cast<const uint16_t*>(rows + j * stride)[i]);
    y[i] = sum;
  }
}

// ---- 32-blocks ----

// The 32 nibbles of a block as bytes 0..15: elements 0..15 (low) and 16..31 (high).
struct Nibbles {
  uint8x16_t lo, hi;
};
inline Nibbles nibbles(const uint8_t* qs) {
  const uint8x16_t q = vld1q_u8(qs);
  return {vandq_u8(q, vdupq_n_u8(15)), vshrq_n_u8(q, 4)};
}

void vec_dot_q4_0_neon(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const BlockQ4_0*>(vw);
  const auto* a = static_cast<const ActQ8_0*>(va);
  const int8x16_t eight = vdupq_n_s8(8);
  float32x4_t acc = vdupq_n_f32(0.f);
  for (int64_t b = 0; b < n / kQK; ++b) {
    const Nibbles q = nibbles(w[b].qs);
    const int32x4_t p = dot32(vsubq_s8(s8(q.lo), eight), vsubq_s8(s8(q.hi), eight), a[b].qs);
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(p), h2f(w[b].d) * h2f(a[b].d));
  }
  *s = vaddvq_f32(acc);
}

void vec_dot_q4_1_neon(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const BlockQ4_1*>(vw);
  const auto* a = static_cast<const ActQ8_1*>(va);
  float32x4_t acc = vdupq_n_f32(0.f);
  float mins = 0;
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float da = h2f(a[b].d);
    const Nibbles q = nibbles(w[b].qs);
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(dot32(s8(q.lo), s8(q.hi), a[b].qs)), h2f(w[b].d) * da);
    mins += h2f(w[b].m) * da * a[b].sum;
  }
  *s = vaddvq_f32(acc) + mins;
}

// Q5 values: nibble | bit4 << 4, minus `offset` (16 for Q5_0, 0 for Q5_1).
template <int offset>
inline int32x4_t dot_q5(const uint8_t* qs, const uint8_t* qh, const int8_t* act) {
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  const uint8x16_t b16 = vdupq_n_u8(16);
  const Nibbles q = nibbles(qs);
  const uint8x16_t lo = vorrq_u8(q.lo, vandq_u8(expand_bits16(bits), b16));
  const uint8x16_t hi = vorrq_u8(q.hi, vandq_u8(expand_bits16(bits >> 16), b16));
  const int8x16_t off = vdupq_n_s8(offset);
  return dot32(vsubq_s8(s8(lo), off), vsubq_s8(s8(hi), off), act);
}

void vec_dot_q5_0_neon(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const BlockQ5_0*>(vw);
  const auto* a = static_cast<const ActQ8_0*>(va);
  float32x4_t acc = vdupq_n_f32(0.f);
  for (int64_t b = 0; b < n / kQK; ++b) {
    const int32x4_t p = dot_q5<16>(w[b].qs, w[b].qh, a[b].qs);
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(p), h2f(w[b].d) * h2f(a[b].d));
  }
  *s = vaddvq_f32(acc);
}

void vec_dot_q5_1_neon(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const BlockQ5_1*>(vw);
  const auto* a = static_cast<const ActQ8_1*>(va);
  float32x4_t acc = vdupq_n_f32(0.f);
  float mins = 0;
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float da = h2f(a[b].d);
    const int32x4_t p = dot_q5<0>(w[b].qs, w[b].qh, a[b].qs);
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(p), h2f(w[b].d) * da);
    mins += h2f(w[b].m) * da * a[b].sum;
  }
  *s = vaddvq_f32(acc) + mins;
}

void vec_dot_q8_0_neon(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const BlockQ8_0*>(vw);
  const auto* a = static_cast<const ActQ8_0*>(va);
  float32x4_t acc = vdupq_n_f32(0.f);
  for (int64_t b = 0; b < n / kQK; ++b) {
    const int32x4_t p = dot32(vld1q_s8(w[b].qs), vld1q_s8(w[b].qs + 16), a[b].qs);
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(p), h2f(w[b].d) * h2f(a[b].d));
  }
  *s = vaddvq_f32(acc);
}

// ---- K-quants × Q8_K ----
// Per sub-block the int8 dot is exact; scale * dot is accumulated per lane (exact in
// int32 for every type), so each super-block's integer sum equals the reference's.

inline int32x4_t dot_16(int8x16_t w, const int8_t* act) { return dot16(vdupq_n_s32(0), w, vld1q_s8(act)); }

// The 2-bit planes of Q2_K/Q3_K: byte l of half `half`, bits 2g, as elements
// 128*half + 32*g + l; `v0` covers l < 16 (sub-block 8*half + 2g), `v1` the rest.
template <typename Scale>
inline int32x4_t scaled_pair(int32x4_t sum, int8x16_t v0, int8x16_t v1, const int8_t* act, Scale s0, Scale s1) {
  sum = vmlaq_n_s32(sum, dot_16(v0, act), s0);
  return vmlaq_n_s32(sum, dot_16(v1, act + 16), s1);
}

void vec_dot_q2_k_neon(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const BlockQ2_K*>(vw);
  const auto* a = static_cast<const ActQ8_K*>(va);
  const uint8x16_t m3 = vdupq_n_u8(3);
  float sum = 0;
  for (int64_t b = 0; b < n / kQKK; ++b) {
    const BlockQ2_K& x = w[b];
    const int8_t* q8 = a[b].qs;
    // mins: sum over sub-blocks of (scales >> 4) * bsums
    const uint8x16_t packed = vld1q_u8(x.scales);
    const int16x8_t mn0 = vreinterpretq_s16_u16(vmovl_u8(vshr_n_u8(vget_low_u8(packed), 4)));
    const int16x8_t mn1 = vreinterpretq_s16_u16(vmovl_u8(vshr_n_u8(vget_high_u8(packed), 4)));
    const int16x8_t bs0 = vld1q_s16(a[b].bsums), bs1 = vld1q_s16(a[b].bsums + 8);
    int32x4_t mins = vmull_s16(vget_low_s16(mn0), vget_low_s16(bs0));
    mins = vmlal_s16(mins, vget_high_s16(mn0), vget_high_s16(bs0));
    mins = vmlal_s16(mins, vget_low_s16(mn1), vget_low_s16(bs1));
    mins = vmlal_s16(mins, vget_high_s16(mn1), vget_high_s16(bs1));
    int32x4_t sumi = vdupq_n_s32(0);
    for (int half = 0; half < 2; ++half) {
      uint8x16_t q0 = vld1q_u8(x.qs + 32 * half), q1 = vld1q_u8(x.qs + 32 * half + 16);
      for (int g = 0; g < 4; ++g) {
        const int sb = 8 * half + 2 * g;
        sumi = scaled_pair(sumi, s8(vandq_u8(q0, m3)), s8(vandq_u8(q1, m3)), q8 + 128 * half + 32 * g,
                           x.scales[sb] & 15, x.scales[sb + 1] & 15);
        q0 = vshrq_n_u8(q0, 2);
        q1 = vshrq_n_u8(q1, 2);
      }
    }
    sum += h2f(x.d) * a[b].d * static_cast<float>(vaddvq_s32(sumi)) -
           h2f(x.dmin) * a[b].d * static_cast<float>(vaddvq_s32(mins));
  }
  *s = sum;
}

void vec_dot_q3_k_neon(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const BlockQ3_K*>(vw);
  const auto* a = static_cast<const ActQ8_K*>(va);
  const uint8x16_t m3 = vdupq_n_u8(3), m1 = vdupq_n_u8(1);
  const int8x16_t four = vdupq_n_s8(4);
  float sum = 0;
  for (int64_t b = 0; b < n / kQKK; ++b) {
    const BlockQ3_K& x = w[b];
    const int8_t* q8 = a[b].qs;
    int8_t sc[16];
    unpack_scales_q3_k(x.scales, sc);
    uint8x16_t h0 = vld1q_u8(x.hmask), h1 = vld1q_u8(x.hmask + 16);
    int32x4_t sumi = vdupq_n_s32(0);
    for (int half = 0; half < 2; ++half) {
      uint8x16_t q0 = vld1q_u8(x.qs + 32 * half), q1 = vld1q_u8(x.qs + 32 * half + 16);
      for (int g = 0; g < 4; ++g) {
        // (q | hbit << 2) - 4 = q - (hbit ? 0 : 4); hmask bit 4*half + g
        const uint8x16_t v0 = vorrq_u8(vandq_u8(q0, m3), vshlq_n_u8(vandq_u8(h0, m1), 2));
        const uint8x16_t v1 = vorrq_u8(vandq_u8(q1, m3), vshlq_n_u8(vandq_u8(h1, m1), 2));
        const int sb = 8 * half + 2 * g;
        sumi = scaled_pair(sumi, vsubq_s8(s8(v0), four), vsubq_s8(s8(v1), four), q8 + 128 * half + 32 * g,
                           sc[sb], sc[sb + 1]);
        q0 = vshrq_n_u8(q0, 2);
        q1 = vshrq_n_u8(q1, 2);
        h0 = vshrq_n_u8(h0, 1);
        h1 = vshrq_n_u8(h1, 1);
      }
    }
    sum += h2f(x.d) * a[b].d * static_cast<float>(vaddvq_s32(sumi));
  }
  *s = sum;
}

// Shared by Q4_K and Q5_K: with_high adds the fifth bits from qh (bit sb of qh[l]).
template <bool with_high, typename Block>
void vec_dot_k4_neon(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const Block*>(vw);
  const auto* a = static_cast<const ActQ8_K*>(va);
  const uint8x16_t m4 = vdupq_n_u8(15), m1 = vdupq_n_u8(1), m2 = vdupq_n_u8(2);
  float sum = 0;
  for (int64_t b = 0; b < n / kQKK; ++b) {
    const Block& x = w[b];
    const int8_t* q8 = a[b].qs;
    int scale[8], min[8];
    int summ = 0;
    for (int sb = 0; sb < 8; ++sb) {
      unpack_scale_min_k4(x.scales, sb, &scale[sb], &min[sb]);
      summ += min[sb] * (a[b].bsums[2 * sb] + a[b].bsums[2 * sb + 1]);
    }
    uint8x16_t hb0 = vdupq_n_u8(0), hb1 = hb0;
    if constexpr (with_high) {
      hb0 = vld1q_u8(x.qh);
      hb1 = vld1q_u8(x.qh + 16);
    }
    int32x4_t sumi = vdupq_n_s32(0);
    for (int c = 0; c < 4; ++c) {  // 64 elements: low nibbles of 32 bytes, then high
      const uint8x16_t q0 = vld1q_u8(x.qs + 32 * c), q1 = vld1q_u8(x.qs + 32 * c + 16);
      uint8x16_t lo0 = vandq_u8(q0, m4), lo1 = vandq_u8(q1, m4);
      uint8x16_t hi0 = vshrq_n_u8(q0, 4), hi1 = vshrq_n_u8(q1, 4);
      if constexpr (with_high) {
        lo0 = vorrq_u8(lo0, vshlq_n_u8(vandq_u8(hb0, m1), 4));
        lo1 = vorrq_u8(lo1, vshlq_n_u8(vandq_u8(hb1, m1), 4));
        hi0 = vorrq_u8(hi0, vshlq_n_u8(vandq_u8(hb0, m2), 3));
        hi1 = vorrq_u8(hi1, vshlq_n_u8(vandq_u8(hb1, m2), 3));
        hb0 = vshrq_n_u8(hb0, 2);
        hb1 = vshrq_n_u8(hb1, 2);
      }
      sumi = vmlaq_n_s32(sumi, dot32(s8(lo0), s8(lo1), q8 + 64 * c), scale[2 * c]);
      sumi = vmlaq_n_s32(sumi, dot32(s8(hi0), s8(hi1), q8 + 64 * c + 32), scale[2 * c + 1]);
    }
    sum += h2f(x.d) * a[b].d * static_cast<float>(vaddvq_s32(sumi)) -
           h2f(x.dmin) * a[b].d * static_cast<float>(summ);
  }
  *s = sum;
}

void vec_dot_q6_k_neon(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const BlockQ6_K*>(vw);
  const auto* a = static_cast<const ActQ8_K*>(va);
  const uint8x16_t m4 = vdupq_n_u8(15), m3 = vdupq_n_u8(3);
  const int8x16_t m32 = vdupq_n_s8(32);
  float sum = 0;
  for (int64_t b = 0; b < n / kQKK; ++b) {
    const BlockQ6_K& x = w[b];
    const int8_t* q8 = a[b].qs;
    int32x4_t sumi = vdupq_n_s32(0);
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = x.ql + 64 * half;
      const uint8x16_t l0 = vld1q_u8(ql), l1 = vld1q_u8(ql + 16), l2 = vld1q_u8(ql + 32), l3 = vld1q_u8(ql + 48);
      uint8x16_t h0 = vld1q_u8(x.qh + 32 * half), h1 = vld1q_u8(x.qh + 32 * half + 16);
      // Group g (elements 32g..32g+31 of the half): low nibbles of ql[32*(g&1) + l] for
      // g < 2, their high nibbles for g >= 2; top bits are bits 2g of qh[l].
      const uint8x16_t lows[4][2] = {{vandq_u8(l0, m4), vandq_u8(l1, m4)},
                                     {vandq_u8(l2, m4), vandq_u8(l3, m4)},
                                     {vshrq_n_u8(l0, 4), vshrq_n_u8(l1, 4)},
                                     {vshrq_n_u8(l2, 4), vshrq_n_u8(l3, 4)}};
      for (int g = 0; g < 4; ++g) {
        const uint8x16_t v0 = vorrq_u8(lows[g][0], vshlq_n_u8(vandq_u8(h0, m3), 4));
        const uint8x16_t v1 = vorrq_u8(lows[g][1], vshlq_n_u8(vandq_u8(h1, m3), 4));
        const int sb = 8 * half + 2 * g;
        sumi = scaled_pair(sumi, vsubq_s8(s8(v0), m32), vsubq_s8(s8(v1), m32), q8 + 128 * half + 32 * g,
                           x.scales[sb], x.scales[sb + 1]);
        h0 = vshrq_n_u8(h0, 2);
        h1 = vshrq_n_u8(h1, 2);
      }
    }
    sum += h2f(x.d) * a[b].d * static_cast<float>(vaddvq_s32(sumi));
  }
  *s = sum;
}

constexpr QuantKernels kNeonTable[] = {
    {DType::F32, DType::F32, act_row_bytes_f32, quantize_act_f32, vec_dot_plain_neon<float, load_f32x4, one_f32>},
    {DType::F16, DType::F32, act_row_bytes_f32, quantize_act_f32,
     vec_dot_plain_neon<uint16_t, load_f16x4, one_f16>, nullptr,
     dot_rows_f16_neon, weighted_sum_f16_neon},
    {DType::BF16, DType::F32, act_row_bytes_f32, quantize_act_f32,
     vec_dot_plain_neon<uint16_t, load_bf16x4, one_bf16>},
    {DType::Q4_0, DType::Q8_0, act_row_bytes_q8_0, quantize_act_q8_0_neon, vec_dot_q4_0_neon},
    {DType::Q4_1, DType::Q8_1, act_row_bytes_q8_1, quantize_act_q8_1_neon, vec_dot_q4_1_neon},
    {DType::Q5_0, DType::Q8_0, act_row_bytes_q8_0, quantize_act_q8_0_neon, vec_dot_q5_0_neon},
    {DType::Q5_1, DType::Q8_1, act_row_bytes_q8_1, quantize_act_q8_1_neon, vec_dot_q5_1_neon},
    {DType::Q8_0, DType::Q8_0, act_row_bytes_q8_0, quantize_act_q8_0_neon, vec_dot_q8_0_neon, nullptr,
     dot_rows_q8_0_ref, weighted_sum_q8_0_ref},
    {DType::Q2_K, DType::Q8_K, act_row_bytes_q8_k, quantize_act_q8_k_neon, vec_dot_q2_k_neon},
    {DType::Q3_K, DType::Q8_K, act_row_bytes_q8_k, quantize_act_q8_k_neon, vec_dot_q3_k_neon},
    {DType::Q4_K, DType::Q8_K, act_row_bytes_q8_k, quantize_act_q8_k_neon, vec_dot_k4_neon<false, BlockQ4_K>},
    {DType::Q5_K, DType::Q8_K, act_row_bytes_q8_k, quantize_act_q8_k_neon, vec_dot_k4_neon<true, BlockQ5_K>},
    {DType::Q6_K, DType::Q8_K, act_row_bytes_q8_k, quantize_act_q8_k_neon, vec_dot_q6_k_neon},
};

inline const QuantKernels* find_neon_kernels(DType weight_type) {
  for (const QuantKernels& k : kNeonTable)
    if (k.weight_type == weight_type) return &k;
  return nullptr;
}

}  // namespace
}  // namespace xent::cpu
