// The 256-bit kernels of repacked Q4_0 / Q5_0 / Q8_0 weights (BlockQ4_0x4 / BlockQ5_0x4 /
// BlockQ8_0x4), shared by the AVX2 file (maddubs + madd) and the AVX-VNNI file (vpdpbusd),
// each compiled with its own flags; `Dot` is the instruction choice. Everything here has
// internal linkage, so each includer gets code for its own ISA.
//
// A 256-bit register holds a block of two rows (128-bit lane each); the activation block's
// two halves are broadcast to both lanes, so the dot leaves row 2k's sums in lanes 0..3 and
// row 2k+1's in lanes 4..7. Quants are unsigned (Q4_0 + 8, Q5_0 + 16, Q8_0 + 128); the
// offset is subtracted as offset * sum(a), from the activation blocks' sums (ActQ8_0x), in
// the first lane of each row (the four lanes are summed at the end).
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "backends/cpu/quant-kernels-internal.h"

namespace xent::cpu {
namespace {

// Byte j = 0xFF where bit j of `bits` is set, else 0.
inline __m256i packed256_expand_u32(uint32_t bits) {
  const __m256i pick = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,  //
                                        2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)), pick);
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

// Decoders: rows 2k and 2k + 1 of block b as unsigned bytes, elements 0..15 (lo) and
// 16..31 (hi) of each row in its lane.
struct Packed256Q4_0 {
  using Block = BlockQ4_0x4;
  static constexpr int kOffset = 8;
  static void decode(const Block& b, int k, __m256i& lo, __m256i& hi) {
    const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs[2 * k]));
    lo = _mm256_and_si256(raw, _mm256_set1_epi8(0x0F));
    hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), _mm256_set1_epi8(0x0F));
  }
};
struct Packed256Q5_0 {
  using Block = BlockQ5_0x4;
  static constexpr int kOffset = 16;
  // The fifth bits of rows 2k and 2k + 1: bits 32k .. 32k + 31 of each mask, one per byte.
  static void decode(const Block& b, int k, __m256i& lo, __m256i& hi) {
    const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs[2 * k]));
    const __m256i sixteen = _mm256_set1_epi8(16);
    lo = _mm256_or_si256(_mm256_and_si256(raw, _mm256_set1_epi8(0x0F)),
                         _mm256_and_si256(packed256_expand_u32(static_cast<uint32_t>(b.hbits[0] >> (32 * k))), sixteen));
    hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(raw, 4), _mm256_set1_epi8(0x0F)),
                         _mm256_and_si256(packed256_expand_u32(static_cast<uint32_t>(b.hbits[1] >> (32 * k))), sixteen));
  }
};
// Q8_0: signed quants made unsigned by x ^ 0x80. Only for a Dot without int16 pair sums
// (maddubs would saturate on 255 * 127 * 2).
struct Packed256Q8_0 {
  using Block = BlockQ8_0x4;
  static constexpr int kOffset = 128;
  static void decode(const Block& b, int k, __m256i& lo, __m256i& hi) {
    const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
    lo = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs[0][2 * k])), flip);
    hi = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs[1][2 * k])), flip);
  }
};

// dot = init + sum over the lane's 4 + 4 bytes of lo * alo + hi * ahi, via Dot::run.
template <class P, class Dot, int C>
void packed256_run(int64_t n, float* s, size_t ss, const typename P::Block* g, const uint8_t* a, size_t as) {
  __m256 acc[C][2];
  for (int c = 0; c < C; ++c) acc[c][0] = acc[c][1] = _mm256_setzero_ps();
  const int64_t nb = n / kQK;
  const __m256i pick01 = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1), pick23 = _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3);
  for (int64_t b = 0; b < nb; ++b) {
    __m256i lo[2], hi[2];
    P::decode(g[b], 0, lo[0], hi[0]);
    P::decode(g[b], 1, lo[1], hi[1]);
    const __m256 d4 = _mm256_castps128_ps256(_mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(g[b].d))));
    const __m256 dw[2] = {_mm256_permutevar8x32_ps(d4, pick01), _mm256_permutevar8x32_ps(d4, pick23)};
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      const ActQ8_0x* y = reinterpret_cast<const ActQ8_0x*>(a + c * as) + b;
      const __m256i alo = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(y->qs)));
      const __m256i ahi = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(y->qs + 16)));
      const __m256i init = _mm256_blend_epi32(_mm256_setzero_si256(), _mm256_set1_epi32(y->neg_sum * P::kOffset), 0x11);
      const __m256 da = _mm256_set1_ps(y->d);
      for (int k = 0; k < 2; ++k) {
        const __m256i dot = Dot::run(init, lo[k], alo, hi[k], ahi);
        acc[c][k] = _mm256_fmadd_ps(_mm256_mul_ps(dw[k], da), _mm256_cvtepi32_ps(dot), acc[c][k]);
      }
    }
  }
  for (int c = 0; c < C; ++c) {
    // Lanes 0..3 and 4..7 of acc[c][k] are rows 2k and 2k + 1.
    const __m128 r01 = _mm_hadd_ps(_mm256_castps256_ps128(acc[c][0]), _mm256_extractf128_ps(acc[c][0], 1));
    const __m128 r23 = _mm_hadd_ps(_mm256_castps256_ps128(acc[c][1]), _mm256_extractf128_ps(acc[c][1], 1));
    _mm_storeu_ps(s + c * ss, _mm_hadd_ps(r01, r23));
  }
}

template <class P, class Dot>
void vec_dot_packed256(int64_t n, float* s, size_t ss, const void* group, const void* act, size_t as, int nc) {
  const auto* g = static_cast<const typename P::Block*>(group);
  const auto* a = static_cast<const uint8_t*>(act);
  switch (nc) {
    case 1: return packed256_run<P, Dot, 1>(n, s, ss, g, a, as);
    case 2: return packed256_run<P, Dot, 2>(n, s, ss, g, a, as);
    case 3: return packed256_run<P, Dot, 3>(n, s, ss, g, a, as);
    case 4: return packed256_run<P, Dot, 4>(n, s, ss, g, a, as);
    default:  // more columns than 16 registers hold accumulators for: four, then the rest
      if (nc <= kPackedCols) {
        packed256_run<P, Dot, 4>(n, s, ss, g, a, as);
        vec_dot_packed256<P, Dot>(n, s + 4 * ss, ss, group, a + 4 * as, as, nc - 4);
      }
      break;
  }
}

}  // namespace
}  // namespace xent::cpu
