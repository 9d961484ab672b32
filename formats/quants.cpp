// Scalar fp16/bf16 conversion and the reference (de)quantizers of the GGUF block types, bit
// for bit like ggml's: the float expressions keep its operation order, do not "simplify" them.
#include "formats/quants.h"

#include <cmath>
#include <cstring>
#include <string>

#include "formats/error.h"
#include "formats/quant-blocks.h"
#include "formats/quants-k.h"

// Fusing a*b+c into one FMA changes the rounding and with it the chosen scales and bytes
// (measured: 70% identical Q5_K blocks with -march=native). Compilers fuse by default
// wherever FMA is baseline (aarch64) or enabled, even in ISO C++ mode, so forbid it here.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace xent {

// ---------------------------------------------------------------------------------------
// fp16 / bf16 scalars
// ---------------------------------------------------------------------------------------

namespace {

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Shifts `value` right by `shift` (1..31) and rounds the dropped bits to nearest, ties to
// an even result: the integer core of every narrowing conversion here.
uint32_t shift_round_even(uint32_t value, int shift) {
  const uint32_t kept = value >> shift;
  const uint32_t dropped = value & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  return kept + ((dropped > half || (dropped == half && (kept & 1))) ? 1 : 0);
}

}  // namespace

float fp16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  if (exp == 0) {
    // Zero or subnormal: mant units of 2^-24, exact in f32.
    const float mag = static_cast<float>(mant) * 0x1p-24f;
    return sign ? -mag : mag;
  }
  if (exp == 31) return bits_float(sign | 0x7f800000u | (mant << 13));  // inf, NaN keeps payload
  return bits_float(sign | ((exp + 112) << 23) | (mant << 13));          // rebias 15 -> 127
}

uint16_t f32_to_fp16(float f) {
  const uint32_t u = float_bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) {
    // NaN: like vcvtps2ph, keep the top payload bits and set the quiet bit.
    return static_cast<uint16_t>(sign | 0x7e00 | ((a >> 13) & 0x3ff));
  }
  // 65520 (0x477ff000) is halfway between 65504, the largest half, and 2^16: it and
  // everything above rounds to infinity (the tie goes to the even pattern 0x7c00).
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00);
  if (a >= 0x38800000u) {
    // Normal half range [2^-14, 65520): rebias the exponent and round off 13 bits. A carry
    // out of the mantissa correctly bumps the exponent.
    return static_cast<uint16_t>(sign | shift_round_even(a - 0x38000000u, 13));
  }
  // Subnormal half: the result counts units of 2^-24. At or below 2^-25 (half a unit,
  // ties to even = 0) the result is zero; this also covers every f32 subnormal.
  if (a <= 0x33000000u) return sign;
  const int exp = static_cast<int>(a >> 23);  // 102..112 here
  const uint32_t mant = (a & 0x7fffffu) | 0x800000u;
  // value = mant * 2^(exp - 150) = mant * 2^(exp - 126) units of 2^-24.
  return static_cast<uint16_t>(sign | shift_round_even(mant, 126 - exp));
}

float bf16_to_f32(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

uint16_t f32_to_bf16(float f) {
  const uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    // NaN: truncating could leave an all-zero payload (= infinity); forcing the quiet bit
    // keeps it a NaN, as ggml does.
    return static_cast<uint16_t>((u >> 16) | 0x40);
  }
  // Round to nearest even on the low 16 bits; overflow of the largest finite values into
  // infinity is the correct IEEE result.
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

namespace {

// ---------------------------------------------------------------------------------------
// 32-element block types
// ---------------------------------------------------------------------------------------

// Symmetric 4/5-bit: the signed extreme maps to -2^(bits-1), so it is represented exactly.
template <int kBits>
void sym_block_levels(const float* x, float* d_out, uint8_t* q) {
  constexpr int kHalfRange = 1 << (kBits - 1);
  constexpr int kTop = (1 << kBits) - 1;
  float amax = 0, max = 0;
  for (int j = 0; j < kQkSmall; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  const float d = max / static_cast<float>(-kHalfRange);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  *d_out = d;
  for (int j = 0; j < kQkSmall; ++j) {
    // Truncation of v + 8.5 (16.5) is the reference's rounding: not round-half-even.
    const int v = static_cast<int>(x[j] * id + (static_cast<float>(kHalfRange) + 0.5f));
    q[j] = static_cast<uint8_t>(v < kTop ? v : kTop);
  }
}

// Asymmetric 4/5-bit: min and max of the block span the 2^bits levels.
template <int kBits>
void asym_block_levels(const float* x, float* d_out, float* m_out, uint8_t* q) {
  constexpr int kTop = (1 << kBits) - 1;
  float min = x[0], max = x[0];
  for (int j = 1; j < kQkSmall; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
  const float d = (max - min) / static_cast<float>(kTop);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  *d_out = d;
  *m_out = min;
  for (int j = 0; j < kQkSmall; ++j) {
    const int v = static_cast<int>((x[j] - min) * id + 0.5f);
    q[j] = static_cast<uint8_t>(v < kTop ? v : kTop);
  }
}

void pack_nibbles(const uint8_t* q, uint8_t* qs) {
  for (int j = 0; j < kQkSmall / 2; ++j)
    qs[j] = static_cast<uint8_t>((q[j] & 0xF) | ((q[j + kQkSmall / 2] & 0xF) << 4));
}

void pack_high_bits(const uint8_t* q, uint8_t* qh) {
  uint32_t bits = 0;
  for (int j = 0; j < kQkSmall; ++j) bits |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
  for (int b = 0; b < 4; ++b) qh[b] = static_cast<uint8_t>(bits >> (8 * b));
}

uint32_t load_high_bits(const uint8_t* qh) {
  return static_cast<uint32_t>(qh[0]) | (static_cast<uint32_t>(qh[1]) << 8) |
         (static_cast<uint32_t>(qh[2]) << 16) | (static_cast<uint32_t>(qh[3]) << 24);
}

void quantize_q4_0(const float* x, BlockQ4_0* y) {
  float d;
  uint8_t q[kQkSmall];
  sym_block_levels<4>(x, &d, q);
  y->d = f32_to_fp16(d);
  pack_nibbles(q, y->qs);
}

void quantize_q4_1(const float* x, BlockQ4_1* y) {
  float d, m;
  uint8_t q[kQkSmall];
  asym_block_levels<4>(x, &d, &m, q);
  y->d = f32_to_fp16(d);
  y->m = f32_to_fp16(m);
  pack_nibbles(q, y->qs);
}

void quantize_q5_0(const float* x, BlockQ5_0* y) {
  float d;
  uint8_t q[kQkSmall];
  sym_block_levels<5>(x, &d, q);
  y->d = f32_to_fp16(d);
  pack_nibbles(q, y->qs);
  pack_high_bits(q, y->qh);
}

void quantize_q5_1(const float* x, BlockQ5_1* y) {
  float d, m;
  uint8_t q[kQkSmall];
  asym_block_levels<5>(x, &d, &m, q);
  y->d = f32_to_fp16(d);
  y->m = f32_to_fp16(m);
  pack_nibbles(q, y->qs);
  pack_high_bits(q, y->qh);
}

// Q8_0/Q8_1 round with std::round (ties away from zero), as the reference does.
float q8_block(const float* x, int8_t* qs) {
  float amax = 0;
  for (int j = 0; j < kQkSmall; ++j) amax = std::fmax(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  for (int j = 0; j < kQkSmall; ++j) qs[j] = static_cast<int8_t>(std::round(x[j] * id));
  return d;
}

void quantize_q8_0(const float* x, BlockQ8_0* y) { y->d = f32_to_fp16(q8_block(x, y->qs)); }

void quantize_q8_1(const float* x, BlockQ8_1* y) {
  const float d = q8_block(x, y->qs);
  int sum = 0;
  for (int j = 0; j < kQkSmall; ++j) sum += y->qs[j];
  y->d = f32_to_fp16(d);
  y->s = f32_to_fp16(static_cast<float>(sum) * d);
}

void dequantize_q4_0(const BlockQ4_0* b, float* y) {
  const float d = fp16_to_f32(b->d);
  for (int j = 0; j < kQkSmall / 2; ++j) {
    y[j] = static_cast<float>((b->qs[j] & 0xF) - 8) * d;
    y[j + kQkSmall / 2] = static_cast<float>((b->qs[j] >> 4) - 8) * d;
  }
}

void dequantize_q4_1(const BlockQ4_1* b, float* y) {
  const float d = fp16_to_f32(b->d), m = fp16_to_f32(b->m);
  for (int j = 0; j < kQkSmall / 2; ++j) {
    y[j] = static_cast<float>(b->qs[j] & 0xF) * d + m;
    y[j + kQkSmall / 2] = static_cast<float>(b->qs[j] >> 4) * d + m;
  }
}

void dequantize_q5_0(const BlockQ5_0* b, float* y) {
  const float d = fp16_to_f32(b->d);
  const uint32_t qh = load_high_bits(b->qh);
  for (int j = 0; j < kQkSmall / 2; ++j) {
    const int lo = (b->qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1) << 4);
    const int hi = (b->qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
    y[j] = static_cast<float>(lo - 16) * d;
    y[j + kQkSmall / 2] = static_cast<float>(hi - 16) * d;
  }
}

void dequantize_q5_1(const BlockQ5_1* b, float* y) {
  const float d = fp16_to_f32(b->d), m = fp16_to_f32(b->m);
  const uint32_t qh = load_high_bits(b->qh);
  for (int j = 0; j < kQkSmall / 2; ++j) {
    const int lo = (b->qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1) << 4);
    const int hi = (b->qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
    y[j] = static_cast<float>(lo) * d + m;
    y[j + kQkSmall / 2] = static_cast<float>(hi) * d + m;
  }
}

void dequantize_q8_0(const BlockQ8_0* b, float* y) {
  const float d = fp16_to_f32(b->d);
  for (int j = 0; j < kQkSmall; ++j) y[j] = static_cast<float>(b->qs[j]) * d;
}

void dequantize_q8_1(const BlockQ8_1* b, float* y) {
  const float d = fp16_to_f32(b->d);
  for (int j = 0; j < kQkSmall; ++j) y[j] = static_cast<float>(b->qs[j]) * d;
}

// ---------------------------------------------------------------------------------------
// Dispatch
// ---------------------------------------------------------------------------------------

// Runs fn(block_src, block_dst) over the n / block elements of a row.
template <typename Block, typename Fn>
void for_blocks_q(const float* src, void* dst, int64_t n, int64_t block, Fn fn) {
  Block* out = static_cast<Block*>(dst);
  for (int64_t b = 0; b < n / block; ++b) fn(src + b * block, out + b);
}

template <typename Block, typename Fn>
void for_blocks_dq(const void* src, float* dst, int64_t n, int64_t block, Fn fn) {
  const Block* in = static_cast<const Block*>(src);
  for (int64_t b = 0; b < n / block; ++b) fn(in + b, dst + b * block);
}

void check_row(DType t, int64_t n, bool (*supported)(DType), const char* what) {
  if (!supported(t)) throw Error(std::string(what) + ": unsupported type " + dtype_name(t));
  if (n < 0 || n % dtype_block_elems(t) != 0)
    throw Error(std::string(what) + ": " + std::to_string(n) + " elements is not a multiple of the " +
                dtype_name(t) + " block size " + std::to_string(dtype_block_elems(t)));
}

}  // namespace

bool dtype_can_dequantize(DType t) {
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16:
    case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1:
    case DType::Q8_0: case DType::Q8_1:
    case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K:
    case DType::Q6_K: case DType::Q8_K:
      return true;
    default:
      return false;
  }
}

bool dtype_can_quantize(DType t) { return dtype_can_dequantize(t); }

void dequantize_row(DType t, const void* src, float* dst, int64_t n) {
  check_row(t, n, dtype_can_dequantize, "dequantize_row");
  switch (t) {
    case DType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::F16: {
      const uint16_t* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_f32(h[i]);
      return;
    }
    case DType::BF16: {
      const uint16_t* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(h[i]);
      return;
    }
    case DType::Q4_0: return for_blocks_dq<BlockQ4_0>(src, dst, n, kQkSmall, dequantize_q4_0);
    case DType::Q4_1: return for_blocks_dq<BlockQ4_1>(src, dst, n, kQkSmall, dequantize_q4_1);
    case DType::Q5_0: return for_blocks_dq<BlockQ5_0>(src, dst, n, kQkSmall, dequantize_q5_0);
    case DType::Q5_1: return for_blocks_dq<BlockQ5_1>(src, dst, n, kQkSmall, dequantize_q5_1);
    case DType::Q8_0: return for_blocks_dq<BlockQ8_0>(src, dst, n, kQkSmall, dequantize_q8_0);
    case DType::Q8_1: return for_blocks_dq<BlockQ8_1>(src, dst, n, kQkSmall, dequantize_q8_1);
    case DType::Q2_K: return for_blocks_dq<BlockQ2_K>(src, dst, n, kQkK, dequantize_q2_k);
    case DType::Q3_K: return for_blocks_dq<BlockQ3_K>(src, dst, n, kQkK, dequantize_q3_k);
    case DType::Q4_K: return for_blocks_dq<BlockQ4_K>(src, dst, n, kQkK, dequantize_q4_k);
    case DType::Q5_K: return for_blocks_dq<BlockQ5_K>(src, dst, n, kQkK, dequantize_q5_k);
    case DType::Q6_K: return for_blocks_dq<BlockQ6_K>(src, dst, n, kQkK, dequantize_q6_k);
    case DType::Q8_K: return for_blocks_dq<BlockQ8_K>(src, dst, n, kQkK, dequantize_q8_k);
    default: break;
  }
  throw Error(std::string("dequantize_row: unsupported type ") + dtype_name(t));
}

void quantize_row(DType t, const float* src, void* dst, int64_t n) {
  check_row(t, n, dtype_can_quantize, "quantize_row");
  switch (t) {
    case DType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::F16: {
      uint16_t* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = f32_to_fp16(src[i]);
      return;
    }
    case DType::BF16: {
      uint16_t* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = f32_to_bf16(src[i]);
      return;
    }
    case DType::Q4_0: return for_blocks_q<BlockQ4_0>(src, dst, n, kQkSmall, quantize_q4_0);
    case DType::Q4_1: return for_blocks_q<BlockQ4_1>(src, dst, n, kQkSmall, quantize_q4_1);
    case DType::Q5_0: return for_blocks_q<BlockQ5_0>(src, dst, n, kQkSmall, quantize_q5_0);
    case DType::Q5_1: return for_blocks_q<BlockQ5_1>(src, dst, n, kQkSmall, quantize_q5_1);
    case DType::Q8_0: return for_blocks_q<BlockQ8_0>(src, dst, n, kQkSmall, quantize_q8_0);
    case DType::Q8_1: return for_blocks_q<BlockQ8_1>(src, dst, n, kQkSmall, quantize_q8_1);
    case DType::Q2_K: return for_blocks_q<BlockQ2_K>(src, dst, n, kQkK, quantize_q2_k);
    case DType::Q3_K: return for_blocks_q<BlockQ3_K>(src, dst, n, kQkK, quantize_q3_k);
    case DType::Q4_K: return for_blocks_q<BlockQ4_K>(src, dst, n, kQkK, quantize_q4_k);
    case DType::Q5_K: return for_blocks_q<BlockQ5_K>(src, dst, n, kQkK, quantize_q5_k);
    case DType::Q6_K: return for_blocks_q<BlockQ6_K>(src, dst, n, kQkK, quantize_q6_k);
    case DType::Q8_K: return for_blocks_q<BlockQ8_K>(src, dst, n, kQkK, quantize_q8_k);
    default: break;
  }
  throw Error(std::string("quantize_row: unsupported type ") + dtype_name(t));
}

size_t quantize_rows(DType t, const float* src, void* dst, int64_t nrows, int64_t n_per_row) {
  check_row(t, n_per_row, dtype_can_quantize, "quantize_rows");
  if (nrows < 0) throw Error("quantize_rows: negative row count " + std::to_string(nrows));
  const size_t row_bytes = dtype_row_bytes(t, n_per_row);
  uint8_t* out = static_cast<uint8_t*>(dst);
  for (int64_t r = 0; r < nrows; ++r) quantize_row(t, src + r * n_per_row, out + r * row_bytes, n_per_row);
  return static_cast<size_t>(nrows) * row_bytes;
}

}  // namespace xent
