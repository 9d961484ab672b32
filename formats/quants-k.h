// The K-quant block (de)quantizers (formats/quants-k.cpp), one 256-element super-block per
// call; formats/quants.cpp dispatches rows to them. Internal to formats/.
#pragma once
#include "formats/quant-blocks.h"

namespace xent {

void quantize_q2_k(const float* x, BlockQ2_K* y);
void quantize_q3_k(const float* x, BlockQ3_K* y);
void quantize_q4_k(const float* x, BlockQ4_K* y);
void quantize_q5_k(const float* x, BlockQ5_K* y);
void quantize_q6_k(const float* x, BlockQ6_K* y);
void quantize_q8_k(const float* x, BlockQ8_K* y);

void dequantize_q2_k(const BlockQ2_K* b, float* y);
void dequantize_q3_k(const BlockQ3_K* b, float* y);
void dequantize_q4_k(const BlockQ4_K* b, float* y);
void dequantize_q5_k(const BlockQ5_K* b, float* y);
void dequantize_q6_k(const BlockQ6_K* b, float* y);
void dequantize_q8_k(const BlockQ8_K* b, float* y);

}  // namespace xent
