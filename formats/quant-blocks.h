// The on-disk block of every quantized GGUF type as a plain struct, laid out byte for byte
// like ggml's, so CPU kernels, GPU uploads and the reference quantizer share one definition.
#pragma once
#include <cstddef>
#include <cstdint>

namespace xent {

// Elements per block: the 32-wide "legacy" types and the 256-wide K-quant super-blocks.
constexpr int kQkSmall = 32;
constexpr int kQkK = 256;
// Bytes of the packed 6-bit scales/mins of Q4_K and Q5_K (and the 6-bit scales of Q3_K).
constexpr int kKScaleBytes = 12;

// Halves (d, m, dmin ...) are IEEE fp16 bit patterns; use fp16_to_f32 from quants.h.
// Every member has alignment <= 2 (Q8_K: 4) and sizes add up without padding; the
// static_asserts below keep it that way.

// x = d * (q - 8), q in 0..15. qs[j] holds element j (low nibble) and j + 16 (high).
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQkSmall / 2];
};

// x = d * q + m, q in 0..15; same nibble order as Q4_0.
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQkSmall / 2];
};

// x = d * (q - 16), q in 0..31: low 4 bits as in Q4_0, bit 4 of element j in bit j of qh
// (a little-endian u32 stored as bytes, so the struct keeps 2-byte alignment).
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQkSmall / 2];
};

// x = d * q + m, q in 0..31; bits as in Q5_0.
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQkSmall / 2];
};

// x = d * q.
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQkSmall];
};

// x = d * q; s = d * sum(q) (fp16), used by dot products with Q4_1/Q5_1.
struct BlockQ8_1 {
  uint16_t d;
  uint16_t s;
  int8_t qs[kQkSmall];
};

// 16 sub-blocks of 16: x = d * (scales[k] & 15) * q - dmin * (scales[k] >> 4), q in 0..3.
// qs: in each 128-element half, byte l holds elements l, l+32, l+64, l+96 (2 bits each,
// lowest first).
struct BlockQ2_K {
  uint8_t scales[kQkK / 16];
  uint8_t qs[kQkK / 4];
  uint16_t d;
  uint16_t dmin;
};

// 16 sub-blocks of 16: x = d * (s_k - 32) * (q - 4), q in 0..7, s_k 6 bits. The low 2 bits
// of q are packed like Q2_K; bit 2 of element i is bit (i / 32) of hmask[i % 32].
// scales: low nibbles of s_0..s_7 in bytes 0..7, of s_8..s_15 in their high nibbles;
// the top 2 bits of s_k in bits 2*(k/4) of byte 8 + k%4.
struct BlockQ3_K {
  uint8_t hmask[kQkK / 8];
  uint8_t qs[kQkK / 4];
  uint8_t scales[kKScaleBytes];
  uint16_t d;
};

// 8 sub-blocks of 32: x = d * sc_k * q - dmin * m_k, q in 0..15, sc/m 6 bits packed in
// `scales` (k < 4: sc in byte k, m in byte k+4, low 6 bits; k >= 4: low nibbles in byte
// k+4, top 2 bits in bits 6..7 of bytes k-4 (sc) and k (m)). qs: each 64-element chunk is
// 32 bytes, low nibbles the first 32 elements, high nibbles the next 32.
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qs[kQkK / 2];
};

// As Q4_K with q in 0..31: bit 4 of element 64c + j (j < 32) is bit 2c of qh[j], of
// element 64c + 32 + j bit 2c+1.
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kQkK / 8];
  uint8_t qs[kQkK / 2];
};

// 16 sub-blocks of 16: x = d * scales[k] * (q - 32), q in 0..63. In each 128-element half,
// ql[l] holds the low nibbles of elements l (low) and l+64 (high), ql[l+32] of l+32 and
// l+96; qh[l] holds the top 2 bits of l, l+32, l+64, l+96 (lowest first).
struct BlockQ6_K {
  uint8_t ql[kQkK / 2];
  uint8_t qh[kQkK / 4];
  int8_t scales[kQkK / 16];
  uint16_t d;
};

// Activations for K-quant dot products: x = d * q with an f32 d; bsums are the sums of
// each 16 consecutive q.
struct BlockQ8_K {
  float d;
  int8_t qs[kQkK];
  int16_t bsums[kQkK / 16];
};

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22 && sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292);

}  // namespace xent
