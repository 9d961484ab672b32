// Reference conversion between f32 and every GGUF element type: fp16/bf16 scalars and
// the quantized block formats (byte-identical to ggml's). These are the oracle that
// SIMD and GPU kernels are tested against, and what `xent quantize` writes.
#pragma once
#include <cstddef>
#include <cstdint>

#include "formats/dtype.h"

namespace xent {

float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f);  // round to nearest even, like F16C's vcvtps2ph
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);  // round to nearest even; NaN stays NaN

// True for every type dequantize_row / quantize_row accept.
bool dtype_can_dequantize(DType t);
bool dtype_can_quantize(DType t);

// n must be a multiple of the type's block size. F32/F16/BF16 are accepted too.
void dequantize_row(DType t, const void* src, float* dst, int64_t n);
// The deterministic round-to-nearest reference quantizer of each type (what ggml's
// quantize_row_*_ref produces, so Q8_0/Q4_0/Q4_1 output is byte-identical).
void quantize_row(DType t, const float* src, void* dst, int64_t n);
// Quantizes nrows rows of n_per_row elements; returns the bytes written.
size_t quantize_rows(DType t, const float* src, void* dst, int64_t nrows, int64_t n_per_row);

}  // namespace xent
