// Scalar reference matmul kernels: one element at a time, written to be checked against
// the block layouts by eye. Integer sums per block, float scales applied once per block.
#include <cmath>
#include <cstring>

#include "backends/cpu/quant-kernels-internal.h"
#include "formats/quants.h"

namespace xent::cpu {
namespace {

// Round half to even (the default FP mode), which is what ggml's nearest_int and
// _mm256_round_ps / cvtps2dq do, so SIMD quantizers can produce the same bytes.
int round_even(float v) { return static_cast<int>(std::nearbyint(v)); }

float h2f(uint16_t h) { return fp16_to_f32(h); }

// The 5th bit of element j of a Q5 block.
int q5_high_bit(const uint8_t qh[4], int j) {
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  return (bits >> j) & 1;
}
// The low 4 bits of element j of a 32-block.
int nibble(const uint8_t qs[16], int j) { return j < 16 ? (qs[j] & 15) : (qs[j - 16] >> 4); }

// Quantizes 32 values to round(x/d) with d = amax/127; returns d.
float quantize_block_32(const float* x, int8_t* q) {
  float amax = 0;
  for (int j = 0; j < kQK; ++j) amax = std::fmax(amax, std::fabs(x[j]));
  const float d = amax / 127.f;
  const float id = d != 0 ? 1.f / d : 0.f;
  for (int j = 0; j < kQK; ++j) q[j] = static_cast<int8_t>(round_even(x[j] * id));
  return d;
}

}  // namespace

size_t act_row_bytes_f32(int64_t n) { return static_cast<size_t>(n) * sizeof(float); }
size_t act_row_bytes_q8_0(int64_t n) { return static_cast<size_t>(n / kQK) * sizeof(ActQ8_0); }
size_t act_row_bytes_q8_1(int64_t n) { return static_cast<size_t>(n / kQK) * sizeof(ActQ8_1); }
size_t act_row_bytes_q8_k(int64_t n) { return static_cast<size_t>(n / kQKK) * sizeof(ActQ8_K); }

size_t packed_act_row_bytes(int64_t n) { return static_cast<size_t>(n / kQK) * sizeof(ActQ8_0x); }

void pack_act_row(void* row, int64_t n) {
  // Last block first: block b moves from byte 34 b to 40 b, past every block before it.
  auto* bytes = static_cast<uint8_t*>(row);
  for (int64_t b = n / kQK - 1; b >= 0; --b) {
    ActQ8_0 in;
    std::memcpy(&in, bytes + b * sizeof(ActQ8_0), sizeof in);
    ActQ8_0x out;
    out.d = fp16_to_f32(in.d);
    int sum = 0;
    for (int i = 0; i < kQK; ++i) sum += in.qs[i];
    out.neg_sum = -sum;
    std::memcpy(out.qs, in.qs, sizeof out.qs);
    std::memcpy(bytes + b * sizeof(ActQ8_0x), &out, sizeof out);
  }
}

void quantize_act_f32(const float* x, void* y, int64_t n) {
  std::memcpy(y, x, static_cast<size_t>(n) * sizeof(float));
}

void quantize_act_q8_0_ref(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<ActQ8_0*>(vy);
  for (int64_t b = 0; b < n / kQK; ++b)
    y[b].d = f32_to_fp16(quantize_block_32(x + b * kQK, y[b].qs));
}

void quantize_act_q8_1_ref(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<ActQ8_1*>(vy);
  for (int64_t b = 0; b < n / kQK; ++b) {
    y[b].d = f32_to_fp16(quantize_block_32(x + b * kQK, y[b].qs));
    int sum = 0;
    for (int j = 0; j < kQK; ++j) sum += y[b].qs[j];
    y[b].sum = static_cast<int16_t>(sum);
  }
}

void quantize_act_q8_k_ref(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<ActQ8_K*>(vy);
  for (int64_t b = 0; b < n / kQKK; ++b, x += kQKK) {
    // The scale comes from the first value of largest magnitude, sign included.
    float amax = 0, max = 0;
    for (int j = 0; j < kQKK; ++j)
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    std::memset(&y[b], 0, sizeof(ActQ8_K));
    if (amax == 0) continue;
    const float iscale = -127.f / max;
    for (int j = 0; j < kQKK; ++j) {
      const int v = round_even(iscale * x[j]);
      y[b].qs[j] = static_cast<int8_t>(v < 127 ? v : 127);
    }
    for (int g = 0; g < kQKK / 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += y[b].qs[g * 16 + j];
      y[b].bsums[g] = static_cast<int16_t>(sum);
    }
    y[b].d = 1.f / iscale;
  }
}

// ---- plain types: f32 activations, f64 accumulation ----

void vec_dot_f32_ref(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const float*>(vw);
  const auto* a = static_cast<const float*>(va);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(w[i]) * a[i];
  *s = static_cast<float>(sum);
}

void vec_dot_f16_ref(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const uint16_t*>(vw);
  const auto* a = static_cast<const float*>(va);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(fp16_to_f32(w[i])) * a[i];
  *s = static_cast<float>(sum);
}

void pack4_q4_0(int64_t n, const void* w_rows, size_t w_stride, void* dst) {
  auto* out = static_cast<BlockQ4_0x4*>(dst);
  for (int64_t b = 0; b < n / kQK; ++b)
    for (int r = 0; r < 4; ++r) {
      const auto* x = reinterpret_cast<const BlockQ4_0*>(static_cast<const uint8_t*>(w_rows) + r * w_stride) + b;
      out[b].d[r] = x->d;
      std::memcpy(out[b].qs[r], x->qs, 16);
    }
}

void pack4_q8_0(int64_t n, const void* w_rows, size_t w_stride, void* dst) {
  auto* out = static_cast<BlockQ8_0x4*>(dst);
  for (int64_t b = 0; b < n / kQK; ++b)
    for (int r = 0; r < 4; ++r) {
      const auto* x = reinterpret_cast<const BlockQ8_0*>(static_cast<const uint8_t*>(w_rows) + r * w_stride) + b;
      out[b].d[r] = x->d;
      std::memcpy(out[b].qs[0][r], x->qs, 16);
      std::memcpy(out[b].qs[1][r], x->qs + 16, 16);
    }
}

void pack4_q5_0(int64_t n, const void* w_rows, size_t w_stride, void* dst) {
  auto* out = static_cast<BlockQ5_0x4*>(dst);
  for (int64_t b = 0; b < n / kQK; ++b) {
    out[b].hbits[0] = out[b].hbits[1] = 0;
    for (int r = 0; r < 4; ++r) {
      const auto* x = reinterpret_cast<const BlockQ5_0*>(static_cast<const uint8_t*>(w_rows) + r * w_stride) + b;
      uint32_t qh;
      std::memcpy(&qh, x->qh, 4);
      out[b].d[r] = x->d;
      out[b].hbits[0] |= static_cast<uint64_t>(qh & 0xFFFF) << (16 * r);
      out[b].hbits[1] |= static_cast<uint64_t>(qh >> 16) << (16 * r);
      std::memcpy(out[b].qs[r], x->qs, 16);
    }
  }
}

// The dot of a packed group from the definition: value(block, r, i) is row r's element i
// of the block (offset removed), i < 32.
template <typename Block, typename Value>
void vec_dot_packed4_ref(int64_t n, float* s, size_t s_stride, const void* group, const void* act_rows,
                         size_t act_stride, int n_cols, Value value) {
  const auto* g = static_cast<const Block*>(group);
  for (int c = 0; c < n_cols; ++c) {
    const auto* a = reinterpret_cast<const ActQ8_0x*>(static_cast<const uint8_t*>(act_rows) + c * act_stride);
    for (int r = 0; r < 4; ++r) {
      double sum = 0;
      for (int64_t b = 0; b < n / kQK; ++b) {
        int32_t dot = 0;
        for (int i = 0; i < kQK; ++i) dot += value(g[b], r, i) * a[b].qs[i];
        sum += static_cast<double>(fp16_to_f32(g[b].d[r])) * a[b].d * dot;
      }
      s[c * s_stride + r] = static_cast<float>(sum);
    }
  }
}

void vec_dot_packed4_q4_0_ref(int64_t n, float* s, size_t s_stride, const void* group, const void* act_rows,
                              size_t act_stride, int n_cols) {
  vec_dot_packed4_ref<BlockQ4_0x4>(n, s, s_stride, group, act_rows, act_stride, n_cols,
                                   [](const BlockQ4_0x4& b, int r, int i) {
                                     const uint8_t q = b.qs[r][i % 16];
                                     return (i < 16 ? q & 0x0F : q >> 4) - 8;
                                   });
}

void vec_dot_packed4_q5_0_ref(int64_t n, float* s, size_t s_stride, const void* group, const void* act_rows,
                              size_t act_stride, int n_cols) {
  vec_dot_packed4_ref<BlockQ5_0x4>(n, s, s_stride, group, act_rows, act_stride, n_cols,
                                   [](const BlockQ5_0x4& b, int r, int i) {
                                     const uint8_t q = b.qs[r][i % 16];
                                     const int high = static_cast<int>((b.hbits[i / 16] >> (16 * r + i % 16)) & 1);
                                     return ((i < 16 ? q & 0x0F : q >> 4) | high << 4) - 16;
                                   });
}

void vec_dot_packed4_q8_0_ref(int64_t n, float* s, size_t s_stride, const void* group, const void* act_rows,
                              size_t act_stride, int n_cols) {
  vec_dot_packed4_ref<BlockQ8_0x4>(n, s, s_stride, group, act_rows, act_stride, n_cols,
                                   [](const BlockQ8_0x4& b, int r, int i) { return static_cast<int>(b.qs[i / 16][r][i % 16]); });
}

void dot_rows_f16_ref(int64_t n, float* s, const float* x, const void* rows, size_t stride, int64_t n_rows) {
  for (int64_t j = 0; j < n_rows; ++j) vec_dot_f16_ref(n, &s[j], static_cast<const uint8_t*>(rows) + j * stride, x);
}

void weighted_sum_f16_ref(int64_t n, float* y, const float* p, const void* rows, size_t stride, int64_t n_rows) {
  for (int64_t i = 0; i < n; ++i) {
    double sum = 0;
    for (int64_t j = 0; j < n_rows; ++j) {
      if (p[j] == 0.0f) continue;
      const auto* row = reinterpret_cast<const uint16_t*>(static_cast<const uint8_t*>(rows) + j * stride);
      sum += static_cast<double>(p[j]) * fp16_to_f32(row[i]);
    }
    y[i] = static_cast<float>(sum);
  }
}

// Q8_0 rows (a q8_0 KV cache) against f32: the query and the probabilities stay f32, only
// the cached keys and values carry the 8-bit rounding.
void dot_rows_q8_0_ref(int64_t n, float* s, const float* x, const void* rows, size_t stride, int64_t n_rows) {
  for (int64_t j = 0; j < n_rows; ++j) {
    const auto* b = reinterpret_cast<const BlockQ8_0*>(static_cast<const uint8_t*>(rows) + j * stride);
    double sum = 0;
    for (int64_t k = 0; k < n / kQkSmall; ++k) {
      double block = 0;
      for (int i = 0; i < kQkSmall; ++i) block += static_cast<double>(b[k].qs[i]) * x[k * kQkSmall + i];
      sum += block * fp16_to_f32(b[k].d);
    }
    s[j] = static_cast<float>(sum);
  }
}

void weighted_sum_q8_0_ref(int64_t n, float* y, const float* p, const void* rows, size_t stride, int64_t n_rows) {
  for (int64_t i = 0; i < n; ++i) {
    double sum = 0;
    for (int64_t j = 0; j < n_rows; ++j) {
      if (p[j] == 0.0f) continue;
      const auto* b = reinterpret_cast<const BlockQ8_0*>(static_cast<const uint8_t*>(rows) + j * stride);
      const BlockQ8_0& blk = b[i / kQkSmall];
      sum += static_cast<double>(p[j]) * fp16_to_f32(blk.d) * blk.qs[i % kQkSmall];
    }
    y[i] = static_cast<float>(sum);
  }
}

void vec_dot_bf16_ref(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const uint16_t*>(vw);
  const auto* a = static_cast<const float*>(va);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(bf16_to_f32(w[i])) * a[i];
  *s = static_cast<float>(sum);
}

// ---- 32-blocks × Q8_0 / Q8_1 ----

void vec_dot_q4_0_ref(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const BlockQ4_0*>(vw);
  const auto* a = static_cast<const ActQ8_0*>(va);
  float sum = 0;
  for (int64_t b = 0; b < n / kQK; ++b) {
    int sumi = 0;
    for (int j = 0; j < kQK; ++j) sumi += (nibble(w[b].qs, j) - 8) * a[b].qs[j];
    sum += h2f(w[b].d) * h2f(a[b].d) * static_cast<float>(sumi);
  }
  *s = sum;
}

void vec_dot_q4_1_ref(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const BlockQ4_1*>(vw);
  const auto* a = static_cast<const ActQ8_1*>(va);
  float sum = 0;
  for (int64_t b = 0; b < n / kQK; ++b) {
    int sumi = 0;
    for (int j = 0; j < kQK; ++j) sumi += nibble(w[b].qs, j) * a[b].qs[j];
    // sum_j (d*q_j + m) * da*a_j = d*da*sumi + m*da*sum(a)
    const float da = h2f(a[b].d);
    sum += h2f(w[b].d) * da * static_cast<float>(sumi) + h2f(w[b].m) * da * a[b].sum;
  }
  *s = sum;
}

void vec_dot_q5_0_ref(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const BlockQ5_0*>(vw);
  const auto* a = static_cast<const ActQ8_0*>(va);
  float sum = 0;
  for (int64_t b = 0; b < n / kQK; ++b) {
    int sumi = 0;
    for (int j = 0; j < kQK; ++j) {
      const int q = (nibble(w[b].qs, j) | (q5_high_bit(w[b].qh, j) << 4)) - 16;
      sumi += q * a[b].qs[j];
    }
    sum += h2f(w[b].d) * h2f(a[b].d) * static_cast<float>(sumi);
  }
  *s = sum;
}

void vec_dot_q5_1_ref(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const BlockQ5_1*>(vw);
  const auto* a = static_cast<const ActQ8_1*>(va);
  float sum = 0;
  for (int64_t b = 0; b < n / kQK; ++b) {
    int sumi = 0;
    for (int j = 0; j < kQK; ++j) {
      const int q = nibble(w[b].qs, j) | (q5_high_bit(w[b].qh, j) << 4);
      sumi += q * a[b].qs[j];
    }
    const float da = h2f(a[b].d);
    sum += h2f(w[b].d) * da * static_cast<float>(sumi) + h2f(w[b].m) * da * a[b].sum;
  }
  *s = sum;
}

void vec_dot_q8_0_ref(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const BlockQ8_0*>(vw);
  const auto* a = static_cast<const ActQ8_0*>(va);
  float sum = 0;
  for (int64_t b = 0; b < n / kQK; ++b) {
    int sumi = 0;
    for (int j = 0; j < kQK; ++j) sumi += w[b].qs[j] * a[b].qs[j];
    sum += h2f(w[b].d) * h2f(a[b].d) * static_cast<float>(sumi);
  }
  *s = sum;
}

// ---- K-quants × Q8_K ----
// Element e (0..255) of a super-block. For the 2-bit-plane types (Q2_K, Q3_K, Q6_K's high
// bits) the block is two halves of 128; within a half, element 32*g + l sits in bits 2g of
// byte l. Sub-block (scale) index is always e/16 (Q2/Q3/Q6) or e/32 (Q4/Q5).

void vec_dot_q2_k_ref(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const BlockQ2_K*>(vw);
  const auto* a = static_cast<const ActQ8_K*>(va);
  float sum = 0;
  for (int64_t b = 0; b < n / kQKK; ++b) {
    const BlockQ2_K& x = w[b];
    int sumi = 0;
    for (int sb = 0; sb < 16; ++sb) {
      int dot = 0;
      for (int k = 0; k < 16; ++k) {
        const int e = sb * 16 + k, half = e / 128, g = (e % 128) / 32, l = e % 32;
        dot += ((x.qs[half * 32 + l] >> (2 * g)) & 3) * a[b].qs[e];
      }
      sumi += (x.scales[sb] & 15) * dot;
    }
    int summ = 0;  // the mins: sum over sub-blocks of min * sum(a)
    for (int sb = 0; sb < 16; ++sb) summ += (x.scales[sb] >> 4) * a[b].bsums[sb];
    sum += h2f(x.d) * a[b].d * static_cast<float>(sumi) -
           h2f(x.dmin) * a[b].d * static_cast<float>(summ);
  }
  *s = sum;
}

void vec_dot_q3_k_ref(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const BlockQ3_K*>(vw);
  const auto* a = static_cast<const ActQ8_K*>(va);
  float sum = 0;
  for (int64_t b = 0; b < n / kQKK; ++b) {
    const BlockQ3_K& x = w[b];
    int8_t sc[16];
    unpack_scales_q3_k(x.scales, sc);
    int sumi = 0;
    for (int sb = 0; sb < 16; ++sb) {
      int dot = 0;
      for (int k = 0; k < 16; ++k) {
        const int e = sb * 16 + k, half = e / 128, g = (e % 128) / 32, l = e % 32;
        const int lo = (x.qs[half * 32 + l] >> (2 * g)) & 3;
        const int hbit = (x.hmask[l] >> (half * 4 + g)) & 1;
        dot += (lo - (hbit ? 0 : 4)) * a[b].qs[e];
      }
      sumi += sc[sb] * dot;
    }
    sum += h2f(x.d) * a[b].d * static_cast<float>(sumi);
  }
  *s = sum;
}

void vec_dot_q4_k_ref(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const BlockQ4_K*>(vw);
  const auto* a = static_cast<const ActQ8_K*>(va);
  float sum = 0;
  for (int64_t b = 0; b < n / kQKK; ++b) {
    const BlockQ4_K& x = w[b];
    int sumi = 0, summ = 0;
    for (int sb = 0; sb < 8; ++sb) {  // element e: byte 32*(e/64) + e%32, nibble (e/32)&1
      int scale, min;
      unpack_scale_min_k4(x.scales, sb, &scale, &min);
      int dot = 0;
      for (int l = 0; l < 32; ++l) {
        const uint8_t byte = x.qs[(sb / 2) * 32 + l];
        dot += ((sb & 1) ? (byte >> 4) : (byte & 15)) * a[b].qs[sb * 32 + l];
      }
      sumi += scale * dot;
      summ += min * (a[b].bsums[2 * sb] + a[b].bsums[2 * sb + 1]);
    }
    sum += h2f(x.d) * a[b].d * static_cast<float>(sumi) -
           h2f(x.dmin) * a[b].d * static_cast<float>(summ);
  }
  *s = sum;
}

void vec_dot_q5_k_ref(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const BlockQ5_K*>(vw);
  const auto* a = static_cast<const ActQ8_K*>(va);
  float sum = 0;
  for (int64_t b = 0; b < n / kQKK; ++b) {
    const BlockQ5_K& x = w[b];
    int sumi = 0, summ = 0;
    for (int sb = 0; sb < 8; ++sb) {  // as Q4_K, fifth bit of element e is bit e/32 of qh[e%32]
      int scale, min;
      unpack_scale_min_k4(x.scales, sb, &scale, &min);
      int dot = 0;
      for (int l = 0; l < 32; ++l) {
        const uint8_t byte = x.qs[(sb / 2) * 32 + l];
        const int lo = (sb & 1) ? (byte >> 4) : (byte & 15);
        const int q = lo | (((x.qh[l] >> sb) & 1) << 4);
        dot += q * a[b].qs[sb * 32 + l];
      }
      sumi += scale * dot;
      summ += min * (a[b].bsums[2 * sb] + a[b].bsums[2 * sb + 1]);
    }
    sum += h2f(x.d) * a[b].d * static_cast<float>(sumi) -
           h2f(x.dmin) * a[b].d * static_cast<float>(summ);
  }
  *s = sum;
}

void vec_dot_q6_k_ref(int64_t n, float* s, const void* vw, const void* va) {
  const auto* w = static_cast<const BlockQ6_K*>(vw);
  const auto* a = static_cast<const ActQ8_K*>(va);
  float sum = 0;
  for (int64_t b = 0; b < n / kQKK; ++b) {
    const BlockQ6_K& x = w[b];
    int sumi = 0;
    for (int sb = 0; sb < 16; ++sb) {
      int dot = 0;
      for (int k = 0; k < 16; ++k) {
        // low 4 bits: nibble g/2 of ql[64*half + 32*(g&1) + l]; high 2: bits 2g of qh[32*half + l]
        const int e = sb * 16 + k, half = e / 128, g = (e % 128) / 32, l = e % 32;
        const uint8_t lo_byte = x.ql[half * 64 + (g & 1) * 32 + l];
        const int lo = (g >> 1) ? (lo_byte >> 4) : (lo_byte & 15);
        const int hi = (x.qh[half * 32 + l] >> (2 * g)) & 3;
        dot += ((lo | (hi << 4)) - 32) * a[b].qs[e];
      }
      sumi += x.scales[sb] * dot;
    }
    sum += h2f(x.d) * a[b].d * static_cast<float>(sumi);
  }
  *s = sum;
}

}  // namespace xent::cpu
