// AArch64 NEON matmul kernels with the dot-product extension (SDOT: 16 int8 products into
// four int32 lanes in one instruction). Compiled with +dotprod; only called when
// getauxval(AT_HWCAP) reports ASIMDDP (Cortex-A55/A76 and later, Apple, Neoverse).
#include "backends/cpu/quant-kernels-neon-sdot-impl.h"

namespace xent::cpu {

const QuantKernels* kernels_neon_dotprod(DType weight_type) { return find_neon_kernels(weight_type); }

}  // namespace xent::cpu
