// Row dot products between weights of any GGUF type and activations, on the CPU.
// A matmul quantizes its activations once into the weight type's `act_type` and then
// calls `vec_dot` per (weight row, activation row). Each entry has a scalar reference
// (kernels_ref) and, where the CPU has the features, a SIMD version (kernels_best).
#pragma once
#include <cstddef>
#include <cstdint>

#include "formats/dtype.h"

namespace xent::cpu {

struct QuantKernels {
  DType weight_type;
  DType act_type;  // activation format: F32, Q8_0 or Q8_K (internal layouts may differ from ggml)
  size_t (*act_row_bytes)(int64_t n);                         // bytes of one activation row
  void (*quantize_act)(const float* x, void* y, int64_t n);   // f32 row -> act_type row
  // s = sum_i w[i] * a[i] over n elements (n a multiple of the block size).
  void (*vec_dot)(int64_t n, float* s, const void* w_row, const void* act_row);
  // Optional (null: call vec_dot per pair). A tile of n_rows weight rows (<= kTileRows)
  // times n_cols activation rows (<= kTileCols): s[c * s_stride + r] = dot(w row r, act
  // row c), rows w_stride / act_stride bytes apart. Each weight block is decoded once for
  // all columns and each activation block loaded once for all rows; the integer sums are
  // vec_dot's, only the float accumulation may be ordered differently.
  void (*vec_dot_tile)(int64_t n, float* s, size_t s_stride, const void* w_rows, size_t w_stride,
                       const void* act_rows, size_t act_stride, int n_rows, int n_cols) = nullptr;
  // F16 and Q8_0 only (attention over the KV cache), rows of n elements `stride` bytes apart
  // (Q8_0: n a multiple of 32):
  // dot_rows: s[j] = dot(x, row j) for j < n_rows;
  // weighted_sum: y[i] = sum over j < n_rows of p[j] * row j[i] (rows with p[j] == 0 skipped).
  void (*dot_rows)(int64_t n, float* s, const float* x, const void* rows, size_t stride, int64_t n_rows) = nullptr;
  void (*weighted_sum)(int64_t n, float* y, const float* p, const void* rows, size_t stride,
                       int64_t n_rows) = nullptr;
  // Optional: weights repacked at load, four rows interleaved block by block (for Q4_0:
  // the four rows' scales, then their four 16-byte quant arrays), so one wide load covers a
  // block of four rows and the activation work is shared by them. pack4 writes the group of
  // rows [0, 4) (rows w_stride bytes apart) to dst, which has their total size.
  void (*pack4)(int64_t n, const void* w_rows, size_t w_stride, void* dst) = nullptr;
  // s[c * s_stride + r] = dot(row r of the packed group, act row c), r < 4, c < n_cols <= kPackedCols.
  // The activation rows are in pack_act_row's layout (below): the SIMD kernels fold the
  // quants' unsigned offset in through its block sums instead of recomputing them per group.
  void (*vec_dot_packed4)(int64_t n, float* s, size_t s_stride, const void* group, const void* act_rows,
                          size_t act_stride, int n_cols) = nullptr;
  // Optional (null: dot_rows / weighted_sum per row), F16 only: the same for m <= kAttnRows
  // query rows at once (the rows of a tree step or a prompt, over the same keys), each cached
  // row loaded and widened once for all m. dot_rows_multi: s[r * s_stride + j] = dot(x[r], row j);
  // weighted_sum_multi: y[r][i] = sum over j of p[r * p_stride + j] * row j[i]. The float
  // sums may be ordered differently from the one-row kernels'.
  void (*dot_rows_multi)(int64_t n, float* s, size_t s_stride, const float* const* x, int m, const void* rows,
                         size_t stride, int64_t n_rows) = nullptr;
  void (*weighted_sum_multi)(int64_t n, float* const* y, const float* p, size_t p_stride, int m, const void* rows,
                             size_t stride, int64_t n_rows) = nullptr;
};
// Query rows one dot_rows_multi / weighted_sum_multi call takes.
constexpr int kAttnRows = 8;
constexpr int kTileRows = 4;
constexpr int kTileCols = 4;
// Activation rows one vec_dot_packed4 call takes: a decoded block of four rows serves them all.
constexpr int kPackedCols = 8;

// The activation rows vec_dot_packed4 reads (all packed types take Q8_0 activations): each
// Q8_0 block with its scale as a float and its quants' sum (quant-kernels-internal.h's
// ActQ8_0x), so a kernel does no conversions per block and column.
size_t packed_act_row_bytes(int64_t n);
// Rewrites in place the Q8_0 activation row (quantize_act's output, n elements) at the start
// of `row`, which holds packed_act_row_bytes(n), into that layout.
void pack_act_row(void* row, int64_t n);

// Null when the weight type has no CPU matmul.
const QuantKernels* kernels_ref(DType weight_type);
// The fastest variant this CPU supports (chosen once, from cpuid / hwcap).
const QuantKernels* kernels_best(DType weight_type);
// Name of the SIMD level in use: "avx512", "avxvnni", "avx2", "neon-i8mm", "neon-dotprod", "neon",
// "scalar".
const char* simd_level();

}  // namespace xent::cpu
