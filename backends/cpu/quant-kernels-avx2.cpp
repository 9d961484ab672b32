// AVX2/FMA/F16C matmul kernels: the same math as quant-kernels-ref.cpp, 32 int8 products
// per maddubs. Compiled with -mavx2 -mfma -mf16c and only called when the CPU has them.
// Everything here has internal linkage and no std templates are used, so no AVX2 code can
// be merged by the linker into a portable caller.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "backends/cpu/quant-kernels-internal.h"
#include "backends/cpu/quant-kernels-packed256-impl.h"
#include "formats/quants.h"

namespace xent::cpu {
namespace {

float h2f(uint16_t h) { return _cvtsh_ss(h); }

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

int hsum(__m128i s) {
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
  return _mm_cvtsi128_si32(s);
}

float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

__m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

__m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
__m128i load16(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

// 8 sums of 4 products of unsigned x (< 128 or the pair sum stays in int16) and signed y.
__m256i dot_u8_i8(__m256i x, __m256i y) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1));
}
// Same for signed x: move x's sign onto y so maddubs sees |x|.
__m256i dot_i8(__m256i x, __m256i y) {
  return dot_u8_i8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

// 16 bytes of nibbles -> 32 bytes: elements 0..15 from the low nibbles, 16..31 the high.
__m256i unpack_nibbles(const uint8_t* qs) {
  const __m128i t = load16(qs);
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
}

// Byte j = 0xFF where bit j of the little-endian u32 at qh is set, else 0.
__m256i expand_bits(const uint8_t* qh) {
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  return packed256_expand_u32(bits);
}

// Scales of 16 sub-blocks of 16 (signed bytes) as int16, ready for madd: register half h
// holds scales 8h..8h+7 in both 128-bit lanes.
struct Scales16 {
  __m256i half[2];
};
Scales16 widen_scales(__m128i sc) {
  return {{_mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(sc)),
           _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_unpackhi_epi64(sc, sc)))}};
}
// Byte-shuffle patterns that broadcast int16 scale 2g into the low lane and 2g+1 into the
// high lane: a 32-byte register of int8 values covers two sub-blocks of 16.
alignas(32) constexpr uint8_t kScalePick[4][32] = {
    {0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,  //
     2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3},
    {4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5,  //
     6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7},
    {8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9,  //
     10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11},
    {12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13,  //
     14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15},
};
// int16 scales of sub-blocks 8*half + 2g (low lane) and 8*half + 2g + 1 (high lane).
__m256i scale_pair(const Scales16& s, int half, int g) {
  return _mm256_shuffle_epi8(s.half[half], load32(kScalePick[g]));
}

// ---- activation quantizers (byte-identical to the _ref ones) ----

// Rounds 32 floats times id to int8 (half to even, like nearbyint) into q, and returns
// the sums of the stored bytes 0..15 and 16..31 (for Q8_1's sum and Q8_K's bsums).
void round_32(const float* x, float id, int8_t* q, int sums[2]) {
  const __m256 m = _mm256_set1_ps(id);
  const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), m));
  const __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), m));
  const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16), m));
  const __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 24), m));
  // packs works per 128-bit lane; the permute puts the 4-byte groups back in order.
  // Saturation to 127 equals the reference's min(127, v) (values never go below -127).
  const __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
  const __m256i ordered = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), ordered);
  const __m256i w = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), ordered),
                                      _mm256_set1_epi16(1));
  sums[0] = hsum(_mm256_castsi256_si128(w));
  sums[1] = hsum(_mm256_extracti128_si256(w, 1));
}

float amax_32(const float* x) {
  __m256 m = abs_ps(_mm256_loadu_ps(x));
  for (int i = 8; i < kQK; i += 8) m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(x + i)));
  return hmax(m);
}

void quantize_act_q8_0_avx2(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<ActQ8_0*>(vy);
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    const float d = amax_32(x) / 127.f;
    const float id = d != 0 ? 1.f / d : 0.f;
    int sums[2];
    round_32(x, id, y[b].qs, sums);
    y[b].d = f32_to_fp16(d);  // the shared scalar conversion keeps the bytes identical
  }
}

void quantize_act_q8_1_avx2(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<ActQ8_1*>(vy);
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    const float d = amax_32(x) / 127.f;
    const float id = d != 0 ? 1.f / d : 0.f;
    int sums[2];
    round_32(x, id, y[b].qs, sums);
    y[b].d = f32_to_fp16(d);
    y[b].sum = static_cast<int16_t>(sums[0] + sums[1]);
  }
}

void quantize_act_q8_k_avx2(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<ActQ8_K*>(vy);
  for (int64_t b = 0; b < n / kQKK; ++b, x += kQKK) {
    __m256 m = abs_ps(_mm256_loadu_ps(x));
    for (int i = 8; i < kQKK; i += 8) m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(x + i)));
    const float amax = hmax(m);
    std::memset(&y[b], 0, sizeof(ActQ8_K));
    if (amax == 0) continue;
    // The first value of that magnitude gives the sign, as in the reference.
    float max = amax;
    const __m256 va = _mm256_set1_ps(amax);
    for (int i = 0; i < kQKK; i += 8) {
      const __m256 ax = abs_ps(_mm256_loadu_ps(x + i));
      const int hit = _mm256_movemask_ps(_mm256_cmp_ps(ax, va, _CMP_EQ_OQ));
      if (hit) {
        max = x[i + __builtin_ctz(static_cast<unsigned>(hit))];
        break;
      }
    }
    const float iscale = -127.f / max;
    for (int i = 0; i < kQKK; i += kQK) {
      int sums[2];
      round_32(x + i, iscale, y[b].qs + i, sums);
      y[b].bsums[i / 16] = static_cast<int16_t>(sums[0]);
      y[b].bsums[i / 16 + 1] = static_cast<int16_t>(sums[1]);
    }
    y[b].d = 1.f / iscale;
  }
}

// ---- plain types ----

void vec_dot_f32_avx2(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const float*>(vw);
  const auto* a = static_cast<const float*>(va);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(a + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(a + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(a + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(a + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8)
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(a + i), acc0);
  float sum = hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  for (; i < n; ++i) sum += w[i] * a[i];
  *s = sum;
}

__m256 load_f16x8(const uint16_t* p) { return _mm256_cvtph_ps(load16(p)); }
__m256 load_bf16x8(const uint16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load16(p)), 16));
}
float bf16_bits_to_f32(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// F16 and BF16 differ only in how 8 weights become floats.
template <__m256 (*load8)(const uint16_t*), float (*load1)(uint16_t)>
void vec_dot_half_avx2(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const uint16_t*>(vw);
  const auto* a = static_cast<const float*>(va);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(load8(w + i), _mm256_loadu_ps(a + i), acc0);
    acc1 = _mm256_fmadd_ps(load8(w + i + 8), _mm256_loadu_ps(a + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(load8(w + i + 16), _mm256_loadu_ps(a + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(load8(w + i + 24), _mm256_loadu_ps(a + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(load8(w + i), _mm256_loadu_ps(a + i), acc0);
  float sum = hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  for (; i < n; ++i) sum += load1(w[i]) * a[i];
  *s = sum;
}

// Four rows per pass: each 8 values of x are loaded once for all four.
void dot_rows_f16_avx2(int64_t n, float* s, const float* x, const void* vrows, size_t stride, int64_t n_rows) {
  const auto* rows = static_cast<const uint8_t*>(vrows);
  auto row = [&](int64_t j) { return reinterpret_cast<const uint16_t*>(rows + j * stride); };
  int64_t j = 0;
  for (; j + 4 <= n_rows; j += 4) {
    const uint16_t *r0 = row(j), *r1 = row(j + 1), *r2 = row(j + 2), *r3 = row(j + 3);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const __m256 xv = _mm256_loadu_ps(x + i);
      a0 = _mm256_fmadd_ps(load_f16x8(r0 + i), xv, a0);
      a1 = _mm256_fmadd_ps(load_f16x8(r1 + i), xv, a1);
      a2 = _mm256_fmadd_ps(load_f16x8(r2 + i), xv, a2);
      a3 = _mm256_fmadd_ps(load_f16x8(r3 + i), xv, a3);
    }
    // The four horizontal sums at once: hadd pairs lanes, then the 128-bit halves add.
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    alignas(16) float t[4];
    _mm_store_ps(t, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
    float t0 = t[0], t1 = t[1], t2 = t[2], t3 = t[3];
    for (; i < n; ++i) {
      t0 += h2f(r0[i]) * x[i];
      t1 += h2f(r1[i]) * x[i];
      t2 += h2f(r2[i]) * x[i];
      t3 += h2f(r3[i]) * x[i];
    }
    s[j] = t0, s[j + 1] = t1, s[j + 2] = t2, s[j + 3] = t3;
  }
  for (; j < n_rows; ++j) vec_dot_half_avx2<load_f16x8, h2f>(n, &s[j], row(j), x);
}

// dot_rows_multi: M query rows against each cached row, which is widened once for all of
// them. The lanes accumulate over i as in dot_rows_f16_avx2 and four sums at a time are
// reduced by the same hadd tree, so each score is the one-row kernel's (for the rows that one
// takes in fours).
template <int M>
void dot_rows_m_f16(int64_t n, float* s, size_t ss, const float* const* x, const uint8_t* rows, size_t stride,
                    int64_t n_rows) {
  constexpr int M4 = (M + 3) / 4 * 4;
  for (int64_t j = 0; j < n_rows; ++j) {
    const auto* r = reinterpret_cast<const uint16_t*>(rows + j * stride);
    __m256 acc[M4];
#pragma GCC unroll 8
    for (int m = 0; m < M4; ++m) acc[m] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const __m256 kv = load_f16x8(r + i);
#pragma GCC unroll 8
      for (int m = 0; m < M; ++m) acc[m] = _mm256_fmadd_ps(kv, _mm256_loadu_ps(x[m] + i), acc[m]);
    }
    alignas(16) float t[M4];
#pragma GCC unroll 2
    for (int m = 0; m < M4; m += 4) {
      const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(acc[m], acc[m + 1]), _mm256_hadd_ps(acc[m + 2], acc[m + 3]));
      _mm_store_ps(t + m, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
    }
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) {
      float v = t[m];
      for (int64_t k = i; k < n; ++k) v += h2f(r[k]) * x[m][k];
      s[m * ss + j] = v;
    }
  }
}

void dot_rows_multi_f16_avx2(int64_t n, float* s, size_t ss, const float* const* x, int m, const void* vrows,
                             size_t stride, int64_t n_rows) {
  const auto* rows = static_cast<const uint8_t*>(vrows);
  switch (m) {
    case 1: return dot_rows_f16_avx2(n, s, x[0], vrows, stride, n_rows);
    case 2: return dot_rows_m_f16<2>(n, s, ss, x, rows, stride, n_rows);
    case 3: return dot_rows_m_f16<3>(n, s, ss, x, rows, stride, n_rows);
    case 4: return dot_rows_m_f16<4>(n, s, ss, x, rows, stride, n_rows);
    case 5: return dot_rows_m_f16<5>(n, s, ss, x, rows, stride, n_rows);
    case 6: return dot_rows_m_f16<6>(n, s, ss, x, rows, stride, n_rows);
    case 7: return dot_rows_m_f16<7>(n, s, ss, x, rows, stride, n_rows);
    case 8: return dot_rows_m_f16<8>(n, s, ss, x, rows, stride, n_rows);
    default: break;
  }
}

// Q8_0 rows (a q8_0 KV cache): 8 int8 values widened to floats.
__m256 load_q8x8(const int8_t* q) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q))));
}

// Per block: the 32 products in four accumulators, then scaled once by the block's d.
void dot_rows_q8_0_avx2(int64_t n, float* s, const float* x, const void* vrows, size_t stride, int64_t n_rows) {
  const auto* rows = static_cast<const uint8_t*>(vrows);
  for (int64_t j = 0; j < n_rows; ++j) {
    const auto* b = reinterpret_cast<const BlockQ8_0*>(rows + j * stride);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t k = 0; k < n / kQK; ++k) {
      const float* xb = x + k * kQK;
      __m256 p = _mm256_mul_ps(load_q8x8(b[k].qs), _mm256_loadu_ps(xb));
      p = _mm256_fmadd_ps(load_q8x8(b[k].qs + 8), _mm256_loadu_ps(xb + 8), p);
      p = _mm256_fmadd_ps(load_q8x8(b[k].qs + 16), _mm256_loadu_ps(xb + 16), p);
      p = _mm256_fmadd_ps(load_q8x8(b[k].qs + 24), _mm256_loadu_ps(xb + 24), p);
      acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(b[k].d)), p, acc);
    }
    s[j] = hsum(acc);
  }
}

// y accumulates in place (a head is at most a few KiB, in L1): row j adds p[j] * d * q.
void weighted_sum_q8_0_avx2(int64_t n, float* y, const float* p, const void* vrows, size_t stride, int64_t n_rows) {
  const auto* rows = static_cast<const uint8_t*>(vrows);
  std::fill(y, y + n, 0.0f);
  for (int64_t j = 0; j < n_rows; ++j) {
    if (p[j] == 0.0f) continue;
    const auto* b = reinterpret_cast<const BlockQ8_0*>(rows + j * stride);
    for (int64_t k = 0; k < n / kQK; ++k) {
      const __m256 c = _mm256_set1_ps(p[j] * h2f(b[k].d));
      float* yb = y + k * kQK;
      for (int i = 0; i < kQK; i += 8)
        _mm256_storeu_ps(yb + i, _mm256_fmadd_ps(c, load_q8x8(b[k].qs + i), _mm256_loadu_ps(yb + i)));
    }
  }
}

// K x 8 outputs stay in registers while every row passes by once. Narrow heads (K <= 4) keep
// two sets of accumulators, for even and odd rows, so consecutive rows' FMAs do not wait
// for each other.
template <int K>
void weighted_sum_cols_avx2(float* y, const float* p, const uint8_t* rows, size_t stride, int64_t n_rows) {
  __m256 even[K], odd[K];
  for (int k = 0; k < K; ++k) even[k] = odd[k] = _mm256_setzero_ps();
  auto add_row = [&](__m256* acc, int64_t j) {
    if (p[j] == 0.0f) return;
    const __m256 pj = _mm256_set1_ps(p[j]);
    const auto* r = reinterpret_cast<const uint16_t*>(rows + j * stride);
#pragma GCC unroll 8
    for (int k = 0; k < K; ++k) acc[k] = _mm256_fmadd_ps(pj, load_f16x8(r + 8 * k), acc[k]);
  };
  int64_t j = 0;
  if constexpr (K <= 4) {
    for (; j + 2 <= n_rows; j += 2) {
      add_row(even, j);
      add_row(odd, j + 1);
    }
  }
  for (; j < n_rows; ++j) add_row(even, j);
  for (int k = 0; k < K; ++k) _mm256_storeu_ps(y + 8 * k, K <= 4 ? _mm256_add_ps(even[k], odd[k]) : even[k]);
}

void weighted_sum_f16_avx2(int64_t n, float* y, const float* p, const void* vrows, size_t stride, int64_t n_rows) {
  const auto* rows = static_cast<const uint8_t*>(vrows);
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) weighted_sum_cols_avx2<8>(y + i, p, rows + i * 2, stride, n_rows);
  // The rest of the 8-column groups in one pass over the rows (a head of 32 is one pass of
  // four accumulators, not four latency-bound passes of one).
  const uint8_t* r = rows + i * 2;
  switch ((n - i) / 8) {
    case 7: weighted_sum_cols_avx2<7>(y + i, p, r, stride, n_rows); break;
    case 6: weighted_sum_cols_avx2<6>(y + i, p, r, stride, n_rows); break;
    case 5: weighted_sum_cols_avx2<5>(y + i, p, r, stride, n_rows); break;
    case 4: weighted_sum_cols_avx2<4>(y + i, p, r, stride, n_rows); break;
    case 3: weighted_sum_cols_avx2<3>(y + i, p, r, stride, n_rows); break;
    case 2: weighted_sum_cols_avx2<2>(y + i, p, r, stride, n_rows); break;
    case 1: weighted_sum_cols_avx2<1>(y + i, p, r, stride, n_rows); break;
    default: break;
  }
  i += (n - i) / 8 * 8;
  for (; i < n; ++i) {
    float sum = 0;
    for (int64_t j = 0; j < n_rows; ++j)
      if (p[j] != 0.0f) sum += p[j] * h2f(reinterpret_cast<const uint16_t*>(rows + j * stride)[i]);
    y[i] = sum;
  }
}

// ---- repacked Q4_0 / Q5_0 (quant-kernels-packed256-impl.h) ----
// maddubs + madd: |nibble * a| pairs fit int16 (2 * 31 * 127 < 32768 with the fifth bit);
// Q8_0's unsigned quants would not, so it has no packed kernel at this tier.
struct DotMaddubs {
  static __m256i run(__m256i init, __m256i lo, __m256i alo, __m256i hi, __m256i ahi) {
    const __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(lo, alo), _mm256_maddubs_epi16(hi, ahi));
    return _mm256_add_epi32(init, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
  }
};

// ---- 32-blocks ----

void vec_dot_q4_0_avx2(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const BlockQ4_0*>(vw);
  const auto* a = static_cast<const ActQ8_0*>(va);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK; ++b) {
    const __m256i q = _mm256_sub_epi8(unpack_nibbles(w[b].qs), _mm256_set1_epi8(8));
    const __m256 p = _mm256_cvtepi32_ps(dot_i8(q, load32(a[b].qs)));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[b].d) * h2f(a[b].d)), p, acc);
  }
  *s = hsum(acc);
}

void vec_dot_q4_1_avx2(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const BlockQ4_1*>(vw);
  const auto* a = static_cast<const ActQ8_1*>(va);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0;
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float da = h2f(a[b].d);
    const __m256 p = _mm256_cvtepi32_ps(dot_u8_i8(unpack_nibbles(w[b].qs), load32(a[b].qs)));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[b].d) * da), p, acc);
    mins += h2f(w[b].m) * da * a[b].sum;
  }
  *s = hsum(acc) + mins;
}

void vec_dot_q5_0_avx2(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const BlockQ5_0*>(vw);
  const auto* a = static_cast<const ActQ8_0*>(va);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK; ++b) {
    // (nibble | bit<<4) - 16 as a signed byte: nibble where the bit is set, else nibble|0xF0.
    const __m256i f0 = _mm256_set1_epi8(static_cast<char>(0xF0));
    const __m256i high = _mm256_andnot_si256(expand_bits(w[b].qh), f0);
    const __m256i q = _mm256_or_si256(unpack_nibbles(w[b].qs), high);
    const __m256 p = _mm256_cvtepi32_ps(dot_i8(q, load32(a[b].qs)));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[b].d) * h2f(a[b].d)), p, acc);
  }
  *s = hsum(acc);
}

void vec_dot_q5_1_avx2(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const BlockQ5_1*>(vw);
  const auto* a = static_cast<const ActQ8_1*>(va);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0;
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float da = h2f(a[b].d);
    const __m256i high = _mm256_and_si256(expand_bits(w[b].qh), _mm256_set1_epi8(0x10));
    const __m256i q = _mm256_or_si256(unpack_nibbles(w[b].qs), high);
    const __m256 p = _mm256_cvtepi32_ps(dot_u8_i8(q, load32(a[b].qs)));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[b].d) * da), p, acc);
    mins += h2f(w[b].m) * da * a[b].sum;
  }
  *s = hsum(acc) + mins;
}

void vec_dot_q8_0_avx2(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const BlockQ8_0*>(vw);
  const auto* a = static_cast<const ActQ8_0*>(va);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK; ++b) {
    const __m256 p = _mm256_cvtepi32_ps(dot_i8(load32(w[b].qs), load32(a[b].qs)));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[b].d) * h2f(a[b].d)), p, acc);
  }
  *s = hsum(acc);
}

// ---- K-quants ----

// scale_j * bsums_j over 16 sub-blocks, in 8 int32 lanes (the constant-offset part of a dot).
__m256i scaled_bsums(__m128i scales_i8, const int16_t* bsums) {
  return _mm256_madd_epi16(_mm256_cvtepi8_epi16(scales_i8), load32(bsums));
}

void vec_dot_q2_k_avx2(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const BlockQ2_K*>(vw);
  const auto* a = static_cast<const ActQ8_K*>(va);
  const __m256i m3 = _mm256_set1_epi8(3);
  __m256 acc = _mm256_setzero_ps(), acc_min = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQKK; ++b) {
    const BlockQ2_K& x = w[b];
    const __m128i packed = load16(x.scales);
    const __m128i sc = _mm_and_si128(packed, _mm_set1_epi8(15));
    const __m128i mn = _mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(15));
    const Scales16 scales = widen_scales(sc);
    __m256i sumi = _mm256_setzero_si256();
    for (int half = 0; half < 2; ++half) {
      __m256i q = load32(x.qs + 32 * half);
      for (int g = 0; g < 4; ++g) {  // bits 2g of each byte: elements 128*half + 32*g + l
        const __m256i v = _mm256_and_si256(q, m3);
        q = _mm256_srli_epi16(q, 2);
        const __m256i p = _mm256_maddubs_epi16(v, load32(a[b].qs + 128 * half + 32 * g));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale_pair(scales, half, g)));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x.d) * a[b].d), _mm256_cvtepi32_ps(sumi), acc);
    acc_min = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x.dmin) * a[b].d),
                              _mm256_cvtepi32_ps(scaled_bsums(mn, a[b].bsums)), acc_min);
  }
  *s = hsum(_mm256_sub_ps(acc, acc_min));
}

// The 16 Q3_K scales as signed bytes (-32..31), unpacked four at a time.
__m128i q3_k_scales(const uint8_t* s) {
  uint32_t u[3];
  std::memcpy(u, s, 12);
  const uint32_t m4 = 0x0F0F0F0F, m2 = 0x03030303;
  const uint32_t s0 = (u[0] & m4) | ((u[2] & m2) << 4);
  const uint32_t s1 = (u[1] & m4) | (((u[2] >> 2) & m2) << 4);
  const uint32_t s2 = ((u[0] >> 4) & m4) | (((u[2] >> 4) & m2) << 4);
  const uint32_t s3 = ((u[1] >> 4) & m4) | (((u[2] >> 6) & m2) << 4);
  const __m128i v = _mm_setr_epi32(static_cast<int>(s0), static_cast<int>(s1), static_cast<int>(s2),
                                   static_cast<int>(s3));
  return _mm_sub_epi8(v, _mm_set1_epi8(32));
}

void vec_dot_q3_k_avx2(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const BlockQ3_K*>(vw);
  const auto* a = static_cast<const ActQ8_K*>(va);
  const __m256i m3 = _mm256_set1_epi8(3), m1 = _mm256_set1_epi8(1);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQKK; ++b) {
    const BlockQ3_K& x = w[b];
    const __m128i sc = q3_k_scales(x.scales);
    // q - 4 + 4*hbit = (q | hbit<<2) - 4: the unsigned part goes through maddubs, the -4
    // through the block sums.
    const Scales16 scales = widen_scales(sc);
    __m256i sumi = _mm256_setzero_si256();
    __m256i hm = load32(x.hmask);
    for (int half = 0; half < 2; ++half) {
      __m256i q = load32(x.qs + 32 * half);
      for (int g = 0; g < 4; ++g) {
        const __m256i v = _mm256_or_si256(_mm256_and_si256(q, m3),
                                          _mm256_slli_epi16(_mm256_and_si256(hm, m1), 2));
        q = _mm256_srli_epi16(q, 2);
        hm = _mm256_srli_epi16(hm, 1);
        const __m256i p = _mm256_maddubs_epi16(v, load32(a[b].qs + 128 * half + 32 * g));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale_pair(scales, half, g)));
      }
    }
    const __m256i offset = _mm256_slli_epi32(scaled_bsums(sc, a[b].bsums), 2);  // 4 * ...
    const __m256i total = _mm256_sub_epi32(sumi, offset);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x.d) * a[b].d), _mm256_cvtepi32_ps(total), acc);
  }
  *s = hsum(acc);
}

// Q4_K/Q5_K's 8 scales (bytes 0..7) and 8 mins (bytes 8..15), unpacked from 6 bits.
__m128i k4_scales_mins(const uint8_t* s) {
  uint32_t u[3];
  std::memcpy(u, s, 12);
  const uint32_t m6 = 0x3F3F3F3F, m4 = 0x0F0F0F0F, m2 = 0x03030303;
  const uint32_t sc_lo = u[0] & m6, mn_lo = u[1] & m6;
  const uint32_t sc_hi = (u[2] & m4) | (((u[0] >> 6) & m2) << 4);
  const uint32_t mn_hi = ((u[2] >> 4) & m4) | (((u[1] >> 6) & m2) << 4);
  return _mm_setr_epi32(static_cast<int>(sc_lo), static_cast<int>(sc_hi), static_cast<int>(mn_lo),
                        static_cast<int>(mn_hi));
}

// Shared by Q4_K and Q5_K: with_high adds the fifth bits from qh.
template <bool with_high, typename Block>
void vec_dot_k4_avx2(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const Block*>(vw);
  const auto* a = static_cast<const ActQ8_K*>(va);
  const __m256i m4 = _mm256_set1_epi8(0x0F), m1 = _mm256_set1_epi8(1);
  __m256 acc = _mm256_setzero_ps();
  __m128 acc_min = _mm_setzero_ps();
  for (int64_t b = 0; b < n / kQKK; ++b) {
    const Block& x = w[b];
    const float dy = a[b].d;
    const __m128i scm = k4_scales_mins(x.scales);
    // mins: sum over sub-blocks j of min_j * (bsums[2j] + bsums[2j+1]), kept as 4 lanes.
    const __m128i pairs = _mm_hadd_epi16(load16(a[b].bsums), load16(a[b].bsums + 8));
    const __m128i mins = _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_unpackhi_epi64(scm, scm)), pairs);
    acc_min = _mm_fmadd_ps(_mm_set1_ps(h2f(x.dmin) * dy), _mm_cvtepi32_ps(mins), acc_min);
    // The 8 scales as int16 in both 128-bit lanes; a byte shuffle broadcasts scale j.
    const __m256i scales = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scm));
    __m256i sumi = _mm256_setzero_si256();
    __m256i hb = _mm256_setzero_si256();
    if constexpr (with_high) hb = load32(x.qh);
    for (int c = 0; c < 4; ++c) {  // 64 elements: low nibbles then high nibbles of 32 bytes
      const __m256i q = load32(x.qs + 32 * c);
      __m256i lo = _mm256_and_si256(q, m4);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      if constexpr (with_high) {
        lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hb, m1), 4));
        const __m256i hi_bit = _mm256_and_si256(_mm256_srli_epi16(hb, 1), m1);
        hi = _mm256_or_si256(hi, _mm256_slli_epi16(hi_bit, 4));
        hb = _mm256_srli_epi16(hb, 2);
      }
      const short pick = static_cast<short>(0x0100 + 0x0404 * c);  // bytes 4c, 4c+1
      const __m256i sc_lo = _mm256_shuffle_epi8(scales, _mm256_set1_epi16(pick));
      const __m256i sc_hi = _mm256_shuffle_epi8(scales, _mm256_set1_epi16(pick + 0x0202));
      const __m256i plo = _mm256_maddubs_epi16(lo, load32(a[b].qs + 64 * c));
      const __m256i phi = _mm256_maddubs_epi16(hi, load32(a[b].qs + 64 * c + 32));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, sc_lo));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(phi, sc_hi));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x.d) * dy), _mm256_cvtepi32_ps(sumi), acc);
  }
  __m128 m = _mm_add_ps(acc_min, _mm_movehl_ps(acc_min, acc_min));
  m = _mm_add_ss(m, _mm_movehdup_ps(m));
  *s = hsum(acc) - _mm_cvtss_f32(m);
}

void vec_dot_q6_k_avx2(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const BlockQ6_K*>(vw);
  const auto* a = static_cast<const ActQ8_K*>(va);
  const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQKK; ++b) {
    const BlockQ6_K& x = w[b];
    const __m128i sc = load16(x.scales);
    const Scales16 scales = widen_scales(sc);
    __m256i sumi = _mm256_setzero_si256();
    for (int half = 0; half < 2; ++half) {
      const __m256i q0 = load32(x.ql + 64 * half);
      const __m256i q1 = load32(x.ql + 64 * half + 32);
      const __m256i h = load32(x.qh + 32 * half);
      // Unsigned 6-bit values; the -32 goes through the block sums below.
      const __m256i v[4] = {
          _mm256_or_si256(_mm256_and_si256(q0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m3), 4)),
          _mm256_or_si256(_mm256_and_si256(q1, m4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m3), 4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q0, 4), m4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m3), 4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q1, 4), m4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m3), 4)),
      };
      for (int g = 0; g < 4; ++g) {
        const __m256i p = _mm256_maddubs_epi16(v[g], load32(a[b].qs + 128 * half + 32 * g));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale_pair(scales, half, g)));
      }
    }
    const __m256i offset = _mm256_slli_epi32(scaled_bsums(sc, a[b].bsums), 5);  // 32 * ...
    const __m256i total = _mm256_sub_epi32(sumi, offset);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x.d) * a[b].d), _mm256_cvtepi32_ps(total), acc);
  }
  *s = hsum(acc);
}

// ---- tiles: R weight rows x C activation rows per call ----
// Each weight block is decoded once for the C columns and each activation block loaded once
// for the R rows. The per-lane integer sums are exactly vec_dot's; the accumulators are
// vec_dot's too (so for the 32-blocks the results are bit-identical), except that the
// K-quant mins are folded into the main accumulator.

// Calls Tile<R, C>::run for the runtime tile shape (R <= kTileRows, C <= kTileCols).
template <template <int, int> class Tile>
void dispatch_tile(int64_t n, float* s, size_t ss, const void* w, size_t ws, const void* a,
                   size_t as, int nr, int nc) {
  static_assert(kTileRows == 4 && kTileCols == 4);
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* ab = static_cast<const uint8_t*>(a);
#define XENT_TILE_CASE(R, C) \
  case (R - 1) * 4 + (C - 1): return Tile<R, C>::run(n, s, ss, wb, ws, ab, as);
  switch ((nr - 1) * 4 + (nc - 1)) {
    XENT_TILE_CASE(1, 1) XENT_TILE_CASE(1, 2) XENT_TILE_CASE(1, 3) XENT_TILE_CASE(1, 4)
    XENT_TILE_CASE(2, 1) XENT_TILE_CASE(2, 2) XENT_TILE_CASE(2, 3) XENT_TILE_CASE(2, 4)
    XENT_TILE_CASE(3, 1) XENT_TILE_CASE(3, 2) XENT_TILE_CASE(3, 3) XENT_TILE_CASE(3, 4)
    XENT_TILE_CASE(4, 1) XENT_TILE_CASE(4, 2) XENT_TILE_CASE(4, 3) XENT_TILE_CASE(4, 4)
    default: break;
  }
#undef XENT_TILE_CASE
}

// 32-blocks against Q8_0 activations. A decoder gives, per weight block, the unsigned
// maddubs operand `u` and the scale; signed types (Q8_0) also give the register whose sign
// moves onto the activation, offset types (Q4_0: q - 8, Q5_0: q - 16) subtract
// offset * sum(a) per lane instead.
struct DecQ8_0 {
  using Block = BlockQ8_0;
  static constexpr int kOffset = 0;
  static void decode(const Block& b, __m256i* u, __m256i* sgn, float* d) {
    *sgn = load32(b.qs);
    *u = _mm256_sign_epi8(*sgn, *sgn);
    *d = h2f(b.d);
  }
};
struct DecQ4_0 {
  using Block = BlockQ4_0;
  static constexpr int kOffset = 8;
  static void decode(const Block& b, __m256i* u, __m256i*, float* d) {
    *u = unpack_nibbles(b.qs);
    *d = h2f(b.d);
  }
};
struct DecQ5_0 {
  using Block = BlockQ5_0;
  static constexpr int kOffset = 16;
  static void decode(const Block& b, __m256i* u, __m256i*, float* d) {
    const __m256i high = _mm256_and_si256(expand_bits(b.qh), _mm256_set1_epi8(0x10));
    *u = _mm256_or_si256(unpack_nibbles(b.qs), high);
    *d = h2f(b.d);
  }
};

template <class Dec>
struct Tile32 {
  template <int R, int C>
  struct T {
    static void run(int64_t n, float* s, size_t ss, const uint8_t* w, size_t ws, const uint8_t* a,
                    size_t as) {
      using Block = typename Dec::Block;
      __m256 acc[R][C];
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
      for (int64_t b = 0; b < n / kQK; ++b) {
        __m256i u[R], sgn[R];
        float dw[R];
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r)
          Dec::decode(reinterpret_cast<const Block*>(w + r * ws)[b], &u[r], &sgn[r], &dw[r]);
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) {
          const ActQ8_0& ab = reinterpret_cast<const ActQ8_0*>(a + c * as)[b];
          const __m256i aq = load32(ab.qs);
          const float da = h2f(ab.d);
          __m256i off = _mm256_setzero_si256();
          if constexpr (Dec::kOffset != 0)
            off = dot_u8_i8(_mm256_set1_epi8(static_cast<char>(Dec::kOffset)), aq);
#pragma GCC unroll 16
          for (int r = 0; r < R; ++r) {
            __m256i dot;
            if constexpr (Dec::kOffset == 0)
              dot = dot_u8_i8(u[r], _mm256_sign_epi8(aq, sgn[r]));
            else
              dot = _mm256_sub_epi32(dot_u8_i8(u[r], aq), off);
            acc[r][c] = _mm256_fmadd_ps(_mm256_set1_ps(dw[r] * da), _mm256_cvtepi32_ps(dot), acc[r][c]);
          }
        }
      }
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) s[c * ss + r] = hsum(acc[r][c]);
    }
  };
};
template <int R, int C> using TileQ8_0 = Tile32<DecQ8_0>::T<R, C>;
template <int R, int C> using TileQ4_0 = Tile32<DecQ4_0>::T<R, C>;
template <int R, int C> using TileQ5_0 = Tile32<DecQ5_0>::T<R, C>;

// Q4_K/Q5_K: per 64-element chunk each row's 2 registers of quants and 2 of scales are made
// once, then every column's 2 activation registers meet them.
template <bool with_high, typename Block>
struct TileK4 {
  template <int R, int C>
  struct T {
    static void run(int64_t n, float* s, size_t ss, const uint8_t* w, size_t ws, const uint8_t* a,
                    size_t as) {
      const __m256i m4 = _mm256_set1_epi8(0x0F), m1 = _mm256_set1_epi8(1);
      __m256 acc[R][C];
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
      for (int64_t b = 0; b < n / kQKK; ++b) {
        __m256i scales[R], hb[R];
        __m128i mins[R];
        float d[R], dmin[R];
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
          const Block& x = reinterpret_cast<const Block*>(w + r * ws)[b];
          const __m128i scm = k4_scales_mins(x.scales);
          mins[r] = _mm_cvtepu8_epi16(_mm_unpackhi_epi64(scm, scm));
          scales[r] = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scm));
          d[r] = h2f(x.d);
          dmin[r] = h2f(x.dmin);
          if constexpr (with_high) hb[r] = load32(x.qh);
        }
        const ActQ8_K* ay[C];
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) ay[c] = reinterpret_cast<const ActQ8_K*>(a + c * as) + b;
        __m256i sumi[R][C];
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
          for (int c = 0; c < C; ++c) sumi[r][c] = _mm256_setzero_si256();
        for (int ch = 0; ch < 4; ++ch) {
          __m256i lo[R], hi[R], sc_lo[R], sc_hi[R];
          const short pick = static_cast<short>(0x0100 + 0x0404 * ch);
#pragma GCC unroll 16
          for (int r = 0; r < R; ++r) {
            const Block& x = reinterpret_cast<const Block*>(w + r * ws)[b];
            const __m256i q = load32(x.qs + 32 * ch);
            lo[r] = _mm256_and_si256(q, m4);
            hi[r] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            if constexpr (with_high) {
              lo[r] = _mm256_or_si256(lo[r], _mm256_slli_epi16(_mm256_and_si256(hb[r], m1), 4));
              const __m256i hi_bit = _mm256_and_si256(_mm256_srli_epi16(hb[r], 1), m1);
              hi[r] = _mm256_or_si256(hi[r], _mm256_slli_epi16(hi_bit, 4));
              hb[r] = _mm256_srli_epi16(hb[r], 2);
            }
            sc_lo[r] = _mm256_shuffle_epi8(scales[r], _mm256_set1_epi16(pick));
            sc_hi[r] = _mm256_shuffle_epi8(scales[r], _mm256_set1_epi16(static_cast<short>(pick + 0x0202)));
          }
#pragma GCC unroll 16
          for (int c = 0; c < C; ++c) {
            const __m256i alo = load32(ay[c]->qs + 64 * ch);
            const __m256i ahi = load32(ay[c]->qs + 64 * ch + 32);
#pragma GCC unroll 16
            for (int r = 0; r < R; ++r) {
              const __m256i plo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo[r], alo), sc_lo[r]);
              const __m256i phi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi[r], ahi), sc_hi[r]);
              sumi[r][c] = _mm256_add_epi32(sumi[r][c], _mm256_add_epi32(plo, phi));
            }
          }
        }
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) {
          const float dy = ay[c]->d;
          const __m128i pairs = _mm_hadd_epi16(load16(ay[c]->bsums), load16(ay[c]->bsums + 8));
#pragma GCC unroll 16
          for (int r = 0; r < R; ++r) {
            const __m128i m = _mm_madd_epi16(mins[r], pairs);
            acc[r][c] = _mm256_fmadd_ps(_mm256_set1_ps(d[r] * dy), _mm256_cvtepi32_ps(sumi[r][c]), acc[r][c]);
            acc[r][c] = _mm256_fnmadd_ps(_mm256_set1_ps(dmin[r] * dy),
                                         _mm256_cvtepi32_ps(_mm256_zextsi128_si256(m)), acc[r][c]);
          }
        }
      }
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) s[c * ss + r] = hsum(acc[r][c]);
    }
  };
};
template <int R, int C> using TileQ4_K = TileK4<false, BlockQ4_K>::T<R, C>;
template <int R, int C> using TileQ5_K = TileK4<true, BlockQ5_K>::T<R, C>;

// Q6_K: per half super-block each row's 4 registers of 6-bit values and 4 scale pairs are
// made once for all columns.
template <int R, int C>
struct TileQ6_K {
  static void run(int64_t n, float* s, size_t ss, const uint8_t* w, size_t ws, const uint8_t* a,
                  size_t as) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    __m256 acc[R][C];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / kQKK; ++b) {
      const BlockQ6_K* x[R];
      Scales16 scales[R];
      __m256i sc16[R];
      float d[R];
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        x[r] = reinterpret_cast<const BlockQ6_K*>(w + r * ws) + b;
        const __m128i sc = load16(x[r]->scales);
        scales[r] = widen_scales(sc);
        sc16[r] = _mm256_cvtepi8_epi16(sc);
        d[r] = h2f(x[r]->d);
      }
      const ActQ8_K* ay[C];
      __m256i sumi[R][C];
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        ay[c] = reinterpret_cast<const ActQ8_K*>(a + c * as) + b;
        const __m256i bs = load32(ay[c]->bsums);
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r)  // start from -32 * sum(scale_j * bsums_j)
          sumi[r][c] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                        _mm256_slli_epi32(_mm256_madd_epi16(sc16[r], bs), 5));
      }
      for (int half = 0; half < 2; ++half) {
        for (int g2 = 0; g2 < 2; ++g2) {  // two of the four 32-element groups at a time
          __m256i v[R][2], sp[R][2];
#pragma GCC unroll 16
          for (int r = 0; r < R; ++r) {
            const __m256i q = load32(x[r]->ql + 64 * half + 32 * g2);
            const __m256i h = _mm256_srli_epi16(load32(x[r]->qh + 32 * half), 2 * g2);
            // groups g2 (low nibbles, h bits 2*g2) and g2 + 2 (high nibbles, h bits 2*g2 + 4)
            v[r][0] = _mm256_or_si256(_mm256_and_si256(q, m4),
                                      _mm256_slli_epi16(_mm256_and_si256(h, m3), 4));
            v[r][1] = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(q, 4), m4),
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m3), 4));
            sp[r][0] = scale_pair(scales[r], half, g2);
            sp[r][1] = scale_pair(scales[r], half, g2 + 2);
          }
#pragma GCC unroll 16
          for (int c = 0; c < C; ++c) {
            const __m256i a0 = load32(ay[c]->qs + 128 * half + 32 * g2);
            const __m256i a1 = load32(ay[c]->qs + 128 * half + 32 * (g2 + 2));
#pragma GCC unroll 16
            for (int r = 0; r < R; ++r) {
              const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(v[r][0], a0), sp[r][0]);
              const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(v[r][1], a1), sp[r][1]);
              sumi[r][c] = _mm256_add_epi32(sumi[r][c], _mm256_add_epi32(p0, p1));
            }
          }
        }
      }
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c)
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r)
          acc[r][c] = _mm256_fmadd_ps(_mm256_set1_ps(d[r] * ay[c]->d), _mm256_cvtepi32_ps(sumi[r][c]),
                                      acc[r][c]);
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) s[c * ss + r] = hsum(acc[r][c]);
  }
};

// weighted_sum_multi: up to four probability rows share each 16 (or 8) widened columns of
// a cached row; M * K accumulators stay in registers while the rows pass by.
template <int M, int K>
void weighted_sum_m_cols(float* const* y, int64_t col, const float* p, size_t ps, const uint8_t* rows, size_t stride,
                         int64_t n_rows) {
  __m256 acc[M][K];
#pragma GCC unroll 4
  for (int m = 0; m < M; ++m)
#pragma GCC unroll 2
    for (int k = 0; k < K; ++k) acc[m][k] = _mm256_setzero_ps();
  for (int64_t j = 0; j < n_rows; ++j) {
    bool any = false;
#pragma GCC unroll 4
    for (int m = 0; m < M; ++m) any |= p[m * ps + j] != 0.0f;
    if (!any) continue;
    const auto* r = reinterpret_cast<const uint16_t*>(rows + j * stride) + col;
    __m256 v[K];
#pragma GCC unroll 2
    for (int k = 0; k < K; ++k) v[k] = load_f16x8(r + 8 * k);
#pragma GCC unroll 4
    for (int m = 0; m < M; ++m) {
      const __m256 pj = _mm256_set1_ps(p[m * ps + j]);
#pragma GCC unroll 2
      for (int k = 0; k < K; ++k) acc[m][k] = _mm256_fmadd_ps(pj, v[k], acc[m][k]);
    }
  }
#pragma GCC unroll 4
  for (int m = 0; m < M; ++m)
#pragma GCC unroll 2
    for (int k = 0; k < K; ++k) _mm256_storeu_ps(y[m] + col + 8 * k, acc[m][k]);
}

template <int M>
void weighted_sum_m_f16(int64_t n, float* const* y, const float* p, size_t ps, const uint8_t* rows, size_t stride,
                        int64_t n_rows) {
  int64_t col = 0;
  for (; col + 16 <= n; col += 16) weighted_sum_m_cols<M, 2>(y, col, p, ps, rows, stride, n_rows);
  if (col + 8 <= n) weighted_sum_m_cols<M, 1>(y, col, p, ps, rows, stride, n_rows), col += 8;
  for (; col < n; ++col) {  // heads that are not a multiple of 8
    for (int m = 0; m < M; ++m) {
      float sum = 0.0f;
      for (int64_t j = 0; j < n_rows; ++j)
        sum += p[m * ps + j] * h2f(reinterpret_cast<const uint16_t*>(rows + j * stride)[col]);
      y[m][col] = sum;
    }
  }
}

void weighted_sum_multi_f16_avx2(int64_t n, float* const* y, const float* p, size_t ps, int m, const void* vrows,
                                 size_t stride, int64_t n_rows) {
  const auto* rows = static_cast<const uint8_t*>(vrows);
  for (int r = 0; r < m; r += 4) {
    switch (std::min(4, m - r)) {
      case 1: weighted_sum_f16_avx2(n, y[r], p + r * ps, vrows, stride, n_rows); break;
      case 2: weighted_sum_m_f16<2>(n, y + r, p + r * ps, ps, rows, stride, n_rows); break;
      case 3: weighted_sum_m_f16<3>(n, y + r, p + r * ps, ps, rows, stride, n_rows); break;
      case 4: weighted_sum_m_f16<4>(n, y + r, p + r * ps, ps, rows, stride, n_rows); break;
      default: break;
    }
  }
}

constexpr QuantKernels kAvx2[] = {
    {DType::F32, DType::F32, act_row_bytes_f32, quantize_act_f32, vec_dot_f32_avx2},
    {DType::F16, DType::F32, act_row_bytes_f32, quantize_act_f32,
     vec_dot_half_avx2<load_f16x8, h2f>, nullptr,
     dot_rows_f16_avx2, weighted_sum_f16_avx2, nullptr, nullptr, dot_rows_multi_f16_avx2, weighted_sum_multi_f16_avx2},
    {DType::BF16, DType::F32, act_row_bytes_f32, quantize_act_f32,
     vec_dot_half_avx2<load_bf16x8, bf16_bits_to_f32>},
    {DType::Q4_0, DType::Q8_0, act_row_bytes_q8_0, quantize_act_q8_0_avx2, vec_dot_q4_0_avx2,
     dispatch_tile<TileQ4_0>, nullptr, nullptr, pack4_q4_0, vec_dot_packed256<Packed256Q4_0, DotMaddubs>},
    {DType::Q4_1, DType::Q8_1, act_row_bytes_q8_1, quantize_act_q8_1_avx2, vec_dot_q4_1_avx2},
    {DType::Q5_0, DType::Q8_0, act_row_bytes_q8_0, quantize_act_q8_0_avx2, vec_dot_q5_0_avx2,
     dispatch_tile<TileQ5_0>, nullptr, nullptr, pack4_q5_0, vec_dot_packed256<Packed256Q5_0, DotMaddubs>},
    {DType::Q5_1, DType::Q8_1, act_row_bytes_q8_1, quantize_act_q8_1_avx2, vec_dot_q5_1_avx2},
    {DType::Q8_0, DType::Q8_0, act_row_bytes_q8_0, quantize_act_q8_0_avx2, vec_dot_q8_0_avx2,
     dispatch_tile<TileQ8_0>, dot_rows_q8_0_avx2, weighted_sum_q8_0_avx2},
    {DType::Q2_K, DType::Q8_K, act_row_bytes_q8_k, quantize_act_q8_k_avx2, vec_dot_q2_k_avx2},
    {DType::Q3_K, DType::Q8_K, act_row_bytes_q8_k, quantize_act_q8_k_avx2, vec_dot_q3_k_avx2},
    {DType::Q4_K, DType::Q8_K, act_row_bytes_q8_k, quantize_act_q8_k_avx2,
     vec_dot_k4_avx2<false, BlockQ4_K>, dispatch_tile<TileQ4_K>},
    {DType::Q5_K, DType::Q8_K, act_row_bytes_q8_k, quantize_act_q8_k_avx2,
     vec_dot_k4_avx2<true, BlockQ5_K>, dispatch_tile<TileQ5_K>},
    {DType::Q6_K, DType::Q8_K, act_row_bytes_q8_k, quantize_act_q8_k_avx2, vec_dot_q6_k_avx2,
     dispatch_tile<TileQ6_K>},
};

}  // namespace

const QuantKernels* kernels_avx2(DType weight_type) {
  for (const QuantKernels& k : kAvx2)
    if (k.weight_type == weight_type) return &k;
  return nullptr;
}

}  // namespace xent::cpu
