// quant-kernels-neon-impl.h over SDOT (16 int8 products into four int32 lanes in one
// instruction), for the files compiled with +dotprod: quant-kernels-neon-dotprod.cpp and
// quant-kernels-neon-i8mm.cpp.
#pragma once
#include <arm_neon.h>

namespace xent::cpu {
namespace {

inline int32x4_t dot16(int32x4_t acc, int8x16_t w, int8x16_t a) { return vdotq_s32(acc, w, a); }

}  // namespace
}  // namespace xent::cpu

#define XENT_NEON_DOT16_DEFINED 1
#include "backends/cpu/quant-kernels-neon-impl.h"
