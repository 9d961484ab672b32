// AArch64 NEON with the int8 matrix-multiply extension (SMMLA: a 2x8 by 8x2 int8 product into
// a 2x2 int32 block in one instruction; Neoverse V1/N2, Cortex-A510/A710 and later, Apple M2).
// The dotprod table plus tiles of two weight rows x two tokens for Q4_0, Q5_0 and Q8_0, which
// is where a prompt's matmuls spend their time (the helpers come from
// quant-kernels-neon-impl.h; its kernel table is not used here). Compiled with
// +dotprod+i8mm; only called when getauxval(AT_HWCAP2) reports I8MM.
#include <arm_neon.h>

#include "backends/cpu/quant-kernels-neon-sdot-impl.h"

namespace xent::cpu {
namespace {

// Decoders: block b of a weight row as signed elements 0..15 (lo) and 16..31 (hi), offset
// removed, and its scale.
struct I8mmQ8_0 {
  using Block = BlockQ8_0;
  static void decode(const Block& x, int8x16_t& lo, int8x16_t& hi) {
    lo = vld1q_s8(x.qs);
    hi = vld1q_s8(x.qs + 16);
  }
};
struct I8mmQ4_0 {
  using Block = BlockQ4_0;
  static void decode(const Block& x, int8x16_t& lo, int8x16_t& hi) {
    const Nibbles q = nibbles(x.qs);
    lo = vsubq_s8(s8(q.lo), vdupq_n_s8(8));
    hi = vsubq_s8(s8(q.hi), vdupq_n_s8(8));
  }
};
struct I8mmQ5_0 {
  using Block = BlockQ5_0;
  static void decode(const Block& x, int8x16_t& lo, int8x16_t& hi) {
    uint32_t bits;
    std::memcpy(&bits, x.qh, 4);
    const Nibbles q = nibbles(x.qs);
    const uint8x16_t b16 = vdupq_n_u8(16);
    lo = vsubq_s8(s8(vorrq_u8(q.lo, vandq_u8(expand_bits16(bits), b16))), vdupq_n_s8(16));
    hi = vsubq_s8(s8(vorrq_u8(q.hi, vandq_u8(expand_bits16(bits >> 16), b16))), vdupq_n_s8(16));
  }
};

// The 64-bit halves k of two registers side by side: the 2x8 operand SMMLA reads.
inline int8x16_t pair_lo(int8x16_t x, int8x16_t y) {
  return vreinterpretq_s8_s64(vzip1q_s64(vreinterpretq_s64_s8(x), vreinterpretq_s64_s8(y)));
}
inline int8x16_t pair_hi(int8x16_t x, int8x16_t y) {
  return vreinterpretq_s8_s64(vzip2q_s64(vreinterpretq_s64_s8(x), vreinterpretq_s64_s8(y)));
}

// Weight rows r0, r1 x activation rows c0, c1: lanes [r0.c0, r0.c1, r1.c0, r1.c1].
template <class Dec>
float32x4_t block_2x2(int64_t n, const typename Dec::Block* w0, const typename Dec::Block* w1, const ActQ8_0* a0,
                      const ActQ8_0* a1) {
  float32x4_t acc = vdupq_n_f32(0.f);
  for (int64_t b = 0; b < n / kQK; ++b) {
    int8x16_t w0lo, w0hi, w1lo, w1hi;
    Dec::decode(w0[b], w0lo, w0hi);
    Dec::decode(w1[b], w1lo, w1hi);
    const int8x16_t a0lo = vld1q_s8(a0[b].qs), a0hi = vld1q_s8(a0[b].qs + 16);
    const int8x16_t a1lo = vld1q_s8(a1[b].qs), a1hi = vld1q_s8(a1[b].qs + 16);
    int32x4_t m = vmmlaq_s32(vdupq_n_s32(0), pair_lo(w0lo, w1lo), pair_lo(a0lo, a1lo));
    m = vmmlaq_s32(m, pair_hi(w0lo, w1lo), pair_hi(a0lo, a1lo));
    m = vmmlaq_s32(m, pair_lo(w0hi, w1hi), pair_lo(a0hi, a1hi));
    m = vmmlaq_s32(m, pair_hi(w0hi, w1hi), pair_hi(a0hi, a1hi));
    const float dw0 = h2f(w0[b].d), dw1 = h2f(w1[b].d), da0 = h2f(a0[b].d), da1 = h2f(a1[b].d);
    const float scale[4] = {dw0 * da0, dw0 * da1, dw1 * da0, dw1 * da1};
    acc = vfmaq_f32(acc, vcvtq_f32_s32(m), vld1q_f32(scale));
  }
  return acc;
}

// QuantKernels::vec_dot_tile: 2x2 blocks over the tile; an odd last row or column is paired
// with itself and the duplicate lanes are not stored.
template <class Dec>
void tile_i8mm(int64_t n, float* s, size_t ss, const void* vw, size_t ws, const void* va, size_t as, int nr, int nc) {
  const auto* w = static_cast<const uint8_t*>(vw);
  const auto* a = static_cast<const uint8_t*>(va);
  using Block = typename Dec::Block;
  for (int r = 0; r < nr; r += 2) {
    const int r1 = r + 1 < nr ? r + 1 : r;
    const auto* w0 = reinterpret_cast<const Block*>(w + r * ws);
    const auto* w1 = reinterpret_cast<const Block*>(w + r1 * ws);
    for (int c = 0; c < nc; c += 2) {
      const int c1 = c + 1 < nc ? c + 1 : c;
      const float32x4_t v = block_2x2<Dec>(n, w0, w1, reinterpret_cast<const ActQ8_0*>(a + c * as),
                                           reinterpret_cast<const ActQ8_0*>(a + c1 * as));
      s[c * ss + r] = vgetq_lane_f32(v, 0);
      if (c1 != c) s[c1 * ss + r] = vgetq_lane_f32(v, 1);
      if (r1 != r) s[c * ss + r1] = vgetq_lane_f32(v, 2);
      if (r1 != r && c1 != c) s[c1 * ss + r1] = vgetq_lane_f32(v, 3);
    }
  }
}

struct Table {
  QuantKernels q8_0, q4_0, q5_0;
};

Table make_table() {
  // The dotprod TU's entries (not this file's copy of the header's table, which is then never
  // referenced and not emitted: embedded builds carry one set of NEON kernels per tier only).
  Table t = {*kernels_neon_dotprod(DType::Q8_0), *kernels_neon_dotprod(DType::Q4_0), *kernels_neon_dotprod(DType::Q5_0)};
  t.q8_0.vec_dot_tile = tile_i8mm<I8mmQ8_0>;
  t.q4_0.vec_dot_tile = tile_i8mm<I8mmQ4_0>;
  t.q5_0.vec_dot_tile = tile_i8mm<I8mmQ5_0>;
  return t;
}

}  // namespace

const QuantKernels* kernels_neon_i8mm(DType weight_type) {
  static const Table t = make_table();
  switch (weight_type) {
    case DType::Q8_0: return &t.q8_0;
    case DType::Q4_0: return &t.q4_0;
    case DType::Q5_0: return &t.q5_0;
    default: return kernels_neon_dotprod(weight_type);
  }
}

}  // namespace xent::cpu
