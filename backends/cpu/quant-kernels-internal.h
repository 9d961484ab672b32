// Shared pieces of the CPU matmul kernels: the block layouts they read (ggml's, byte for
// byte), the activation block layouts they produce, and the per-ISA entry points.
#pragma once
#include <cstddef>
#include <cstdint>

#include "backends/cpu/quant-kernels.h"
#include "formats/quant-blocks.h"

namespace xent::cpu {

// Weight blocks are formats/quant-blocks.h's (ggml's layouts, byte for byte).
constexpr int kQK = kQkSmall;  // elements per block of the 32-block types
constexpr int kQKK = kQkK;     // elements per K-quant super-block

// ---- activation blocks ----
// Q8_0 activations: ggml's block_q8_0 (d = amax/127 stored as f16, q = round(x/d)).
using ActQ8_0 = BlockQ8_0;
// For Q4_1/Q5_1 the dot also needs sum(q). ggml's q8_1 keeps d*sum as f16; we keep the
// exact integer sum instead (so the activation is exactly fp16(d)*q, nothing rounded twice).
struct ActQ8_1 { uint16_t d; int16_t sum; int8_t qs[32]; };
// Q8_K: ggml's block_q8_K (d = max/-127 with max the signed largest-magnitude value).
using ActQ8_K = BlockQ8_K;
static_assert(sizeof(ActQ8_0) == 34 && sizeof(ActQ8_1) == 36 && sizeof(ActQ8_K) == 292);
// Q8_0 activations as the packed kernels read them (pack_act_row): the same quants, the
// scale already a float (fp16_to_f32 of ActQ8_0's, exactly), and minus the sum of the
// quants, which a kernel shifts by log2 of its weights' unsigned offset (8, 16 or 128).
struct ActQ8_0x { float d; int32_t neg_sum; int8_t qs[32]; };
static_assert(sizeof(ActQ8_0x) == 40);

// ---- repacked weights (QuantKernels::pack4) ----
// Block b of four Q4_0 rows: their scales, then their quants; the same 72 bytes as the
// four original blocks, so a packed group is as large as its rows.
struct BlockQ4_0x4 {
  uint16_t d[4];
  uint8_t qs[4][16];
};
static_assert(sizeof(BlockQ4_0x4) == 4 * sizeof(BlockQ4_0));
// Four Q5_0 rows: scales, the fifth bits arranged as the byte masks of the two nibble
// halves (bit 16r + k of hbits[0] is row r's element k, of hbits[1] its element 16 + k),
// then the quants as in BlockQ4_0x4.
struct BlockQ5_0x4 {
  uint16_t d[4];
  uint64_t hbits[2];
  uint8_t qs[4][16];
};
static_assert(sizeof(BlockQ5_0x4) == 4 * sizeof(BlockQ5_0));
// Four Q8_0 rows: scales, then elements 0..15 of rows 0..3, then elements 16..31 of rows 0..3.
struct BlockQ8_0x4 {
  uint16_t d[4];
  int8_t qs[2][4][16];
};
static_assert(sizeof(BlockQ8_0x4) == 4 * sizeof(BlockQ8_0));
void pack4_q4_0(int64_t n, const void* w_rows, size_t w_stride, void* dst);
void pack4_q8_0(int64_t n, const void* w_rows, size_t w_stride, void* dst);
void vec_dot_packed4_q8_0_ref(int64_t n, float* s, size_t s_stride, const void* group, const void* act_rows,
                              size_t act_stride, int n_cols);
void pack4_q5_0(int64_t n, const void* w_rows, size_t w_stride, void* dst);
void vec_dot_packed4_q5_0_ref(int64_t n, float* s, size_t s_stride, const void* group, const void* act_rows,
                              size_t act_stride, int n_cols);
// The reference dot of a packed group, from the definition (for tests).
void vec_dot_packed4_q4_0_ref(int64_t n, float* s, size_t s_stride, const void* group, const void* act_rows,
                              size_t act_stride, int n_cols);

// (static: each TU, the -mavx2 one included, gets its own copy, so no AVX2 code can be
// picked by the linker for a portable caller.)
// 6-bit scale and min j (0..7) of a Q4_K/Q5_K block's 12 packed scale bytes.
static inline void unpack_scale_min_k4(const uint8_t* s, int j, int* scale, int* min) {
  if (j < 4) {
    *scale = s[j] & 63;
    *min = s[j + 4] & 63;
  } else {
    *scale = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
    *min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}
// The 16 signed 6-bit scales of a Q3_K block (already minus 32).
static inline void unpack_scales_q3_k(const uint8_t* s, int8_t out[16]) {
  for (int j = 0; j < 16; ++j) {
    const int lo = j < 8 ? (s[j] & 15) : (s[j - 8] >> 4);
    const int hi = (s[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
    out[j] = static_cast<int8_t>((lo | (hi << 4)) - 32);
  }
}

// ---- scalar reference entry points (quant-kernels-ref.cpp) ----
size_t act_row_bytes_f32(int64_t n);
size_t act_row_bytes_q8_0(int64_t n);
size_t act_row_bytes_q8_1(int64_t n);
size_t act_row_bytes_q8_k(int64_t n);

// F32 activations are used as they are; this copy exists so quantize_act is never null.
void quantize_act_f32(const float* x, void* y, int64_t n);
void quantize_act_q8_0_ref(const float* x, void* y, int64_t n);
void quantize_act_q8_1_ref(const float* x, void* y, int64_t n);
void quantize_act_q8_k_ref(const float* x, void* y, int64_t n);

void vec_dot_f32_ref(int64_t n, float* s, const void* w, const void* a);
void vec_dot_f16_ref(int64_t n, float* s, const void* w, const void* a);
void vec_dot_bf16_ref(int64_t n, float* s, const void* w, const void* a);
void dot_rows_f16_ref(int64_t n, float* s, const float* x, const void* rows, size_t stride, int64_t n_rows);
void weighted_sum_f16_ref(int64_t n, float* y, const float* p, const void* rows, size_t stride, int64_t n_rows);
void dot_rows_q8_0_ref(int64_t n, float* s, const float* x, const void* rows, size_t stride, int64_t n_rows);
void weighted_sum_q8_0_ref(int64_t n, float* y, const float* p, const void* rows, size_t stride, int64_t n_rows);
void vec_dot_q4_0_ref(int64_t n, float* s, const void* w, const void* a);
void vec_dot_q4_1_ref(int64_t n, float* s, const void* w, const void* a);
void vec_dot_q5_0_ref(int64_t n, float* s, const void* w, const void* a);
void vec_dot_q5_1_ref(int64_t n, float* s, const void* w, const void* a);
void vec_dot_q8_0_ref(int64_t n, float* s, const void* w, const void* a);
void vec_dot_q2_k_ref(int64_t n, float* s, const void* w, const void* a);
void vec_dot_q3_k_ref(int64_t n, float* s, const void* w, const void* a);
void vec_dot_q4_k_ref(int64_t n, float* s, const void* w, const void* a);
void vec_dot_q5_k_ref(int64_t n, float* s, const void* w, const void* a);
void vec_dot_q6_k_ref(int64_t n, float* s, const void* w, const void* a);

// ---- SIMD tables; only call one the CPU supports (see simd_level) ----
#if defined(__x86_64__) || defined(_M_X64)
#define XENT_CPU_HAVE_AVX2_KERNELS 1
// Null for types without an AVX2 kernel. Act formats match kernels_ref's exactly.
const QuantKernels* kernels_avx2(DType weight_type);
// quant-kernels-avx512.cpp (AVX-512 F/BW/VL + VNNI): call only where the CPU reports them.
// Null for types it does not cover (use kernels_avx2); the other entries are AVX2's.
const QuantKernels* kernels_avx512(DType weight_type);
// AVX-VNNI (256-bit): the packed Q4_0 / Q5_0 / Q8_0 kernels; null for other types.
const QuantKernels* kernels_avxvnni(DType weight_type);
#endif
#if defined(__aarch64__)
#define XENT_CPU_HAVE_NEON_KERNELS 1
// quant-kernels-neon.cpp (ARMv8.0) and quant-kernels-neon-dotprod.cpp (+dotprod: call
// only where HWCAP_ASIMDDP is set). Act formats match kernels_ref's exactly.
const QuantKernels* kernels_neon(DType weight_type);
const QuantKernels* kernels_neon_dotprod(DType weight_type);
// quant-kernels-neon-i8mm.cpp (+dotprod+i8mm: call only where HWCAP2_I8MM is set): the
// dotprod table with SMMLA tiles for Q4_0, Q5_0 and Q8_0.
const QuantKernels* kernels_neon_i8mm(DType weight_type);
#endif

}  // namespace xent::cpu
