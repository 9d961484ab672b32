// AArch64 NEON matmul kernels with the dot-product extension (SDOT: 16 int8 products into
// four int32 lanes in one instruction). Compiled with +dotprod; only called when
// getauxval(AT_HWCAP) reports ASIMDDP (Cortex-A55/A76 and later, Apple, Neoverse).
#include <arm_neon.h>

namespace xent::cpu {
namespace {

inline int32x4_t dot16(int32x4_t acc, int8x16_t w, int8x16_t a) { return vdotq_s32(acc, w, a); }

}  // namespace
}  // namespace xent::cpu

#define XENT_NEON_DOT16_DEFINED 1
#include "backends/cpu/quant-kernels-neon-impl.h"

namespace xent::cpu {

const QuantKernels* kernels_neon_dotprod(DType weight_type) { return find_neon_kernels(weight_type); }

}  // namespace xent::cpu
