// AArch64 NEON matmul kernels for every ARMv8.0 core (Cortex-A53 and up): int8 dots by
// widening multiplies. Compiled with the baseline flags; chosen when the CPU lacks SDOT.
#include <arm_neon.h>

namespace xent::cpu {
namespace {

// 16 int8 products, summed in pairs into int16 (|w*a| <= 128*127 fits) and in pairs
// again into the four int32 lanes.
inline int32x4_t dot16(int32x4_t acc, int8x16_t w, int8x16_t a) {
  acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(w), vget_low_s8(a)));
  return vpadalq_s16(acc, vmull_high_s8(w, a));
}

}  // namespace
}  // namespace xent::cpu

#define XENT_NEON_DOT16_DEFINED 1
#include "backends/cpu/quant-kernels-neon-impl.h"

namespace xent::cpu {

const QuantKernels* kernels_neon(DType weight_type) { return find_neon_kernels(weight_type); }

}  // namespace xent::cpu
