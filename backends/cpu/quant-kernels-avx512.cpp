// AVX-512 VNNI matmul kernels: vpdpbusd does 64 unsigned x signed int8 products into 16
// int32 lanes in one instruction, two 32-blocks per register. Compiled with -mavx512f/bw/vl/vnni
// and only called when the CPU (and OS) report them; other types use the AVX2 table.
// GCC 12's own avx512fintrin.h (_mm512_undefined_*, used by the zero-extend, insert and
// reduce helpers) trips -Wuninitialized; the warning is about the header, not this code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstring>

#include "backends/cpu/quant-kernels-internal.h"

namespace xent::cpu {
namespace {

float h2f(uint16_t h) { return _cvtsh_ss(h); }

// Two 32-byte halves into one register; a missing second half (odd block count) is zero.
__m512i load_pair(const void* lo, const void* hi) {
  const __m256i l = _mm256_loadu_si256(static_cast<const __m256i*>(lo));
  const __m256i h = hi ? _mm256_loadu_si256(static_cast<const __m256i*>(hi)) : _mm256_setzero_si256();
  return _mm512_inserti64x4(_mm512_zextsi256_si512(l), h, 1);
}
// Lanes 0..7 = a, lanes 8..15 = b.
__m512 halves(float a, float b) { return _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(a), _mm512_set1_ps(b)); }

__m256i nibbles(const uint8_t* qs) {
  const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
}

// Q8_0 weights become unsigned by adding 128 (x ^ 0x80), Q4_0 nibbles are already
// unsigned with offset 8; either way dot = dpbusd(u, a) - offset * sum(a).
struct DecQ8_0 {
  using Block = BlockQ8_0;
  static constexpr int kOffset = 128;
  static __m512i decode(const Block* b0, const Block* b1) {
    return _mm512_xor_si512(load_pair(b0->qs, b1 ? b1->qs : nullptr), _mm512_set1_epi8(static_cast<char>(0x80)));
  }
};
struct DecQ4_0 {
  using Block = BlockQ4_0;
  static constexpr int kOffset = 8;
  static __m512i decode(const Block* b0, const Block* b1) {
    const __m256i h = b1 ? nibbles(b1->qs) : _mm256_setzero_si256();
    return _mm512_inserti64x4(_mm512_zextsi256_si512(nibbles(b0->qs)), h, 1);
  }
};

template <class Dec>
struct Tile32 {
  template <int R, int C>
  static void run(int64_t n, float* s, size_t ss, const uint8_t* w, size_t ws, const uint8_t* a,
                  size_t as) {
    using Block = typename Dec::Block;
    __m512 acc[R][C];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
    const int64_t nb = n / kQK;
    const __m512i off = _mm512_set1_epi8(static_cast<char>(Dec::kOffset));
    for (int64_t b = 0; b < nb; b += 2) {
      const bool two = b + 1 < nb;
      __m512i u[R];
      __m512 dw[R];
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const Block* x = reinterpret_cast<const Block*>(w + r * ws) + b;
        u[r] = Dec::decode(x, two ? x + 1 : nullptr);
        dw[r] = halves(h2f(x[0].d), two ? h2f(x[1].d) : 0.f);
      }
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        const ActQ8_0* y = reinterpret_cast<const ActQ8_0*>(a + c * as) + b;
        const __m512i q = load_pair(y[0].qs, two ? y[1].qs : nullptr);
        const __m512 da = halves(h2f(y[0].d), two ? h2f(y[1].d) : 0.f);
        // Lanes start at -offset * sum(a) so one dpbusd per pair gives the signed dot.
        const __m512i init =
            _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), off, q));
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
          const __m512i dot = _mm512_dpbusd_epi32(init, u[r], q);
          acc[r][c] = _mm512_fmadd_ps(_mm512_mul_ps(dw[r], da), _mm512_cvtepi32_ps(dot), acc[r][c]);
        }
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) s[c * ss + r] = _mm512_reduce_add_ps(acc[r][c]);
  }
};

// Q4_K/Q8_K: 64 elements (two sub-blocks of 32) per register. maddubs makes int16 pair
// sums (15 * 127 * 2 fits) and vpdpwssd multiplies them by the sub-block's scale and adds.
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

struct TileQ4_K {
  template <int R, int C>
  static void run(int64_t n, float* s, size_t ss, const uint8_t* w, size_t ws, const uint8_t* a,
                  size_t as) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m512 acc[R][C];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < n / kQKK; ++b) {
      const BlockQ4_K* x[R];
      __m512i scales[R];
      __m128i mins[R];
      float d[R], dmin[R];
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        x[r] = reinterpret_cast<const BlockQ4_K*>(w + r * ws) + b;
        const __m128i scm = k4_scales_mins(x[r]->scales);
        mins[r] = _mm_cvtepu8_epi16(_mm_unpackhi_epi64(scm, scm));
        scales[r] = _mm512_zextsi128_si512(_mm_cvtepu8_epi16(scm));
        d[r] = h2f(x[r]->d);
        dmin[r] = h2f(x[r]->dmin);
      }
      const ActQ8_K* y[C];
      __m512i sumi[R][C];
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        y[c] = reinterpret_cast<const ActQ8_K*>(a + c * as) + b;
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) sumi[r][c] = _mm512_setzero_si512();
      }
      for (int ch = 0; ch < 4; ++ch) {
        // int16 scale 2ch in the low 256 bits, 2ch + 1 in the high.
        const __m512i pick = _mm512_mask_blend_epi16(0xFFFF0000u, _mm512_set1_epi16(static_cast<short>(2 * ch)),
                                                     _mm512_set1_epi16(static_cast<short>(2 * ch + 1)));
        __m512i q[R], sc[R];
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[r]->qs + 32 * ch));
          q[r] = _mm512_inserti64x4(_mm512_zextsi256_si512(_mm256_and_si256(v, m4)),
                                    _mm256_and_si256(_mm256_srli_epi16(v, 4), m4), 1);
          sc[r] = _mm512_permutexvar_epi16(pick, scales[r]);
        }
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) {
          const __m512i av = _mm512_loadu_si512(y[c]->qs + 64 * ch);
#pragma GCC unroll 16
          for (int r = 0; r < R; ++r)
            sumi[r][c] = _mm512_dpwssd_epi32(sumi[r][c], _mm512_maddubs_epi16(q[r], av), sc[r]);
        }
      }
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        const __m128i pairs = _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(y[c]->bsums)),
                                             _mm_loadu_si128(reinterpret_cast<const __m128i*>(y[c]->bsums + 8)));
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
          const __m512i m = _mm512_zextsi128_si512(_mm_madd_epi16(mins[r], pairs));
          acc[r][c] = _mm512_fmadd_ps(_mm512_set1_ps(d[r] * y[c]->d), _mm512_cvtepi32_ps(sumi[r][c]), acc[r][c]);
          acc[r][c] = _mm512_fnmadd_ps(_mm512_set1_ps(dmin[r] * y[c]->d), _mm512_cvtepi32_ps(m), acc[r][c]);
        }
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) s[c * ss + r] = _mm512_reduce_add_ps(acc[r][c]);
  }
};

// Q6_K/Q8_K: 64 elements (four sub-blocks of 16) per register, unsigned 6-bit values
// (63 * 127 * 2 fits int16) through maddubs, the sub-block scales through vpdpwssd, and the
// -32 through the activations' bsums. A half block (128 elements) is one 64-byte load of ql
// (low nibbles: elements 0..63, high: 64..127) and its 32 bytes of qh, broadcast to both
// 256-bit halves and shifted per half so that bits 2g of group g land on bits 4..5.
inline __m512i q6_half(const __m512i ql, const __m512i qh2, const __m512i shift, bool high, const __m512i m30) {
  const __m512i nib = high ? _mm512_srli_epi16(ql, 4) : ql;
  const __m512i hi = _mm512_and_si512(high ? _mm512_srlv_epi16(qh2, shift) : _mm512_sllv_epi16(qh2, shift), m30);
  // (nib & 0x0F) | hi in one ternary-logic op, the mask 0x0F as its third input: 0xEC = (A & C) | B.
  return _mm512_ternarylogic_epi32(nib, hi, _mm512_set1_epi8(0x0F), 0xEC);
}
struct TileQ6_K {
  template <int R, int C>
  static void run(int64_t n, float* s, size_t ss, const uint8_t* w, size_t ws, const uint8_t* a,
                  size_t as) {
    const __m512i m30 = _mm512_set1_epi8(0x30);
    // Left shifts for the low group pair (groups 0, 1: bits 0..1 and 2..3 up to 4..5), right
    // shifts for the high pair (groups 2, 3: bits 4..5 stay, 6..7 down by 2).
    const __m512i shl = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i shr = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    // 16-bit lanes 8k..8k+7 of a 64-element register take its sub-block k's scale.
    const __m512i pick0 = _mm512_setr_epi32(0, 0, 0, 0, 0x00010001, 0x00010001, 0x00010001, 0x00010001,
                                            0x00020002, 0x00020002, 0x00020002, 0x00020002, 0x00030003,
                                            0x00030003, 0x00030003, 0x00030003);
    // One float accumulator per row: with C == 1 its 16 lanes are partial sums of the one
    // column; otherwise lane 4g + c holds part g of column c (see the end of a block).
    __m512 acc[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    for (int64_t b = 0; b < n / kQKK; ++b) {
      const ActQ8_K* y[C];
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) y[c] = reinterpret_cast<const ActQ8_K*>(a + c * as) + b;
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const BlockQ6_K* x = reinterpret_cast<const BlockQ6_K*>(w + r * ws) + b;
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x->scales)));
        const __m512i sc512 = _mm512_zextsi256_si512(sc16);
        // Each column starts from -32 * sum(scale_j * bsums_j).
        const __m256i sc_m32 = _mm256_slli_epi16(_mm256_sub_epi16(_mm256_setzero_si256(), sc16), 5);
        __m512i sumi[C];
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c)
          sumi[c] = _mm512_zextsi256_si512(
              _mm256_madd_epi16(sc_m32, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[c]->bsums))));
#pragma GCC unroll 2
        for (int half = 0; half < 2; ++half) {
          const __m512i ql = _mm512_loadu_si512(x->ql + 64 * half);
          const __m512i qh2 = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x->qh + 32 * half)));
#pragma GCC unroll 2
          for (int gp = 0; gp < 2; ++gp) {
            const __m512i v = q6_half(ql, qh2, gp ? shr : shl, gp != 0, m30);
            const __m512i sc = _mm512_permutexvar_epi16(
                _mm512_add_epi16(pick0, _mm512_set1_epi16(static_cast<short>(8 * half + 4 * gp))), sc512);
#pragma GCC unroll 16
            for (int c = 0; c < C; ++c)
              sumi[c] = _mm512_dpwssd_epi32(
                  sumi[c], _mm512_maddubs_epi16(v, _mm512_loadu_si512(y[c]->qs + 128 * half + 64 * gp)), sc);
          }
        }
        const float d = h2f(x->d);
        if constexpr (C == 1) {
          acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(d * y[0]->d), _mm512_cvtepi32_ps(sumi[0]), acc[r]);
        } else {
          // Fold the columns' 16 lanes into one register: after two unpack-and-add steps lane
          // 4g + c holds the sum of column c's lanes 4g..4g+3; missing columns are zero.
          __m512i p[4];
#pragma GCC unroll 4
          for (int c = 0; c < 4; ++c) p[c] = c < C ? sumi[c < C ? c : 0] : _mm512_setzero_si512();
          const __m512i t01 = _mm512_add_epi32(_mm512_unpacklo_epi32(p[0], p[1]), _mm512_unpackhi_epi32(p[0], p[1]));
          const __m512i t23 = _mm512_add_epi32(_mm512_unpacklo_epi32(p[2], p[3]), _mm512_unpackhi_epi32(p[2], p[3]));
          const __m512i t = _mm512_add_epi32(_mm512_unpacklo_epi64(t01, t23), _mm512_unpackhi_epi64(t01, t23));
          float yd[4] = {0.f, 0.f, 0.f, 0.f};
#pragma GCC unroll 4
          for (int c = 0; c < C; ++c) yd[c] = d * y[c]->d;
          const __m512 scale = _mm512_broadcast_f32x4(_mm_loadu_ps(yd));
          acc[r] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(t), acc[r]);
        }
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      if constexpr (C == 1) {
        s[r] = _mm512_reduce_add_ps(acc[r]);
      } else {
        const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(acc[r]), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[r]), 1)));
        const __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
        float out[4];
        _mm_storeu_ps(out, q);
#pragma GCC unroll 4
        for (int c = 0; c < C; ++c) s[c * ss + r] = out[c];
      }
    }
  }
};

// Packed Q4_0 / Q5_0 / Q8_0 (BlockQ4_0x4 / BlockQ5_0x4 / BlockQ8_0x4): one 64-byte load is a
// block of four rows, 128-bit lane group r holding row r. The activation block's two 16-byte halves are
// broadcast to every group, so dpbusd leaves row r's partial sums in lanes 4r..4r+3; the
// offset (8, 16 or 128) is folded in as -offset * sum(a), from the activation blocks' sums
// (ActQ8_0x), in the first lane of each group.
// The low and high nibbles of four rows' 16 quant bytes each.
inline void split_nibbles(const uint8_t* qs, __m512i& lo, __m512i& hi) {
  const __m512i raw = _mm512_loadu_si512(qs);
  lo = _mm512_and_si512(raw, _mm512_set1_epi8(0x0F));
  hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), _mm512_set1_epi8(0x0F));
}
struct PackedQ4_0 {
  using Block = BlockQ4_0x4;
  static constexpr int kOffsetShift = 3;  // offset 8
  static void decode(const Block& b, __m512i& lo, __m512i& hi) { split_nibbles(b.qs[0], lo, hi); }
};
// Q8_0: the signed quants made unsigned by adding 128 (x ^ 0x80).
struct PackedQ8_0 {
  using Block = BlockQ8_0x4;
  static constexpr int kOffsetShift = 7;  // offset 128
  static void decode(const Block& b, __m512i& lo, __m512i& hi) {
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    lo = _mm512_xor_si512(_mm512_loadu_si512(b.qs[0]), flip);
    hi = _mm512_xor_si512(_mm512_loadu_si512(b.qs[1]), flip);
  }
};
struct PackedQ5_0 {
  using Block = BlockQ5_0x4;
  static constexpr int kOffsetShift = 4;  // offset 16
  static void decode(const Block& b, __m512i& lo, __m512i& hi) {
    split_nibbles(b.qs[0], lo, hi);
    const __m512i sixteen = _mm512_set1_epi8(16);
    lo = _mm512_mask_add_epi8(lo, _cvtu64_mask64(b.hbits[0]), lo, sixteen);
    hi = _mm512_mask_add_epi8(hi, _cvtu64_mask64(b.hbits[1]), hi, sixteen);
  }
};

template <class P, int C>
void packed4_run(int64_t n, float* s, size_t ss, const typename P::Block* g, const uint8_t* a, size_t as) {
  __m512 acc[C];
#pragma GCC unroll 8
  for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
  const int64_t nb = n / kQK;
  const __m512i expand = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  for (int64_t b = 0; b < nb; ++b) {
    __m512i lo, hi;
    P::decode(g[b], lo, hi);
    const __m128 d4 = _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(g[b].d)));
    const __m512 dw = _mm512_permutexvar_ps(expand, _mm512_castps128_ps512(d4));
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      const ActQ8_0x* y = reinterpret_cast<const ActQ8_0x*>(a + c * as) + b;
      const __m512i alo = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(y->qs)));
      const __m512i ahi = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(y->qs + 16)));
      // -offset * sum(a); the four lanes of a row's group are summed at the end, so it goes
      // into the first.
      __m512i dot = _mm512_maskz_slli_epi32(0x1111, _mm512_set1_epi32(y->neg_sum), P::kOffsetShift);
      dot = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(dot, lo, alo), hi, ahi);
      acc[c] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(y->d)), _mm512_cvtepi32_ps(dot), acc[c]);
    }
  }
#pragma GCC unroll 8
  for (int c = 0; c < C; ++c) {
    const __m128 g0 = _mm512_extractf32x4_ps(acc[c], 0), g1 = _mm512_extractf32x4_ps(acc[c], 1);
    const __m128 g2 = _mm512_extractf32x4_ps(acc[c], 2), g3 = _mm512_extractf32x4_ps(acc[c], 3);
    _mm_storeu_ps(s + c * ss, _mm_hadd_ps(_mm_hadd_ps(g0, g1), _mm_hadd_ps(g2, g3)));
  }
}

template <class P>
void vec_dot_packed4(int64_t n, float* s, size_t ss, const void* group, const void* act, size_t as, int nc) {
  const auto* g = static_cast<const typename P::Block*>(group);
  const auto* a = static_cast<const uint8_t*>(act);
  switch (nc) {
    case 1: return packed4_run<P, 1>(n, s, ss, g, a, as);
    case 2: return packed4_run<P, 2>(n, s, ss, g, a, as);
    case 3: return packed4_run<P, 3>(n, s, ss, g, a, as);
    case 4: return packed4_run<P, 4>(n, s, ss, g, a, as);
    case 5: return packed4_run<P, 5>(n, s, ss, g, a, as);
    case 6: return packed4_run<P, 6>(n, s, ss, g, a, as);
    case 7: return packed4_run<P, 7>(n, s, ss, g, a, as);
    case 8: return packed4_run<P, 8>(n, s, ss, g, a, as);
    default: break;
  }
}

// Calls Tile::run<R, C> for the runtime tile shape (R <= kTileRows, C <= kTileCols).
template <class Tile>
void tile(int64_t n, float* s, size_t ss, const void* vw, size_t ws, const void* va, size_t as, int nr, int nc) {
  static_assert(kTileRows == 4 && kTileCols == 4);
  const auto* w = static_cast<const uint8_t*>(vw);
  const auto* a = static_cast<const uint8_t*>(va);
#define XENT_TILE_CASE(R, C) \
  case (R - 1) * 4 + (C - 1): return Tile::template run<R, C>(n, s, ss, w, ws, a, as);
  switch ((nr - 1) * 4 + (nc - 1)) {
    XENT_TILE_CASE(1, 1) XENT_TILE_CASE(1, 2) XENT_TILE_CASE(1, 3) XENT_TILE_CASE(1, 4)
    XENT_TILE_CASE(2, 1) XENT_TILE_CASE(2, 2) XENT_TILE_CASE(2, 3) XENT_TILE_CASE(2, 4)
    XENT_TILE_CASE(3, 1) XENT_TILE_CASE(3, 2) XENT_TILE_CASE(3, 3) XENT_TILE_CASE(3, 4)
    XENT_TILE_CASE(4, 1) XENT_TILE_CASE(4, 2) XENT_TILE_CASE(4, 3) XENT_TILE_CASE(4, 4)
    default: break;
  }
#undef XENT_TILE_CASE
}

// One row pair is the 1x1 tile, so vec_dot and vec_dot_tile cannot disagree.
template <class Tile>
void vec_dot(int64_t n, float* s, const void* w, const void* a) {
  Tile::template run<1, 1>(n, s, 0, static_cast<const uint8_t*>(w), 0, static_cast<const uint8_t*>(a), 0);
}

struct Table {
  QuantKernels q8_0, q4_0, q5_0, q4_k, q6_k;
};

template <class Tile>
QuantKernels with_vnni(DType t) {
  QuantKernels k = *kernels_avx2(t);
  k.vec_dot = vec_dot<Tile>;
  k.vec_dot_tile = tile<Tile>;
  return k;
}

// The AVX2 entries (activation quantizers included) with the VNNI dots put in.
Table make_table() {
  Table t = {with_vnni<Tile32<DecQ8_0>>(DType::Q8_0), with_vnni<Tile32<DecQ4_0>>(DType::Q4_0),
             *kernels_avx2(DType::Q5_0), with_vnni<TileQ4_K>(DType::Q4_K), with_vnni<TileQ6_K>(DType::Q6_K)};
  t.q8_0.pack4 = pack4_q8_0;
  t.q8_0.vec_dot_packed4 = vec_dot_packed4<PackedQ8_0>;
  t.q4_0.pack4 = pack4_q4_0;
  t.q4_0.vec_dot_packed4 = vec_dot_packed4<PackedQ4_0>;
  // Q5_0 keeps AVX2's row kernels (used where weights are not packed) and adds packed ones.
  t.q5_0.pack4 = pack4_q5_0;
  t.q5_0.vec_dot_packed4 = vec_dot_packed4<PackedQ5_0>;
  return t;
}

}  // namespace

const QuantKernels* kernels_avx512(DType weight_type) {
  static const Table t = make_table();
  switch (weight_type) {
    case DType::Q8_0: return &t.q8_0;
    case DType::Q4_0: return &t.q4_0;
    case DType::Q5_0: return &t.q5_0;
    case DType::Q4_K: return &t.q4_k;
    case DType::Q6_K: return &t.q6_k;
    default: return nullptr;
  }
}

}  // namespace xent::cpu
