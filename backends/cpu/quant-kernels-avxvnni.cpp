// AVX-VNNI (the VEX-encoded 256-bit vpdpbusd of Alder Lake and later cores, and of CPUs
// without AVX-512): the repacked Q4_0 / Q5_0 / Q8_0 kernels with one dpbusd per row pair
// instead of maddubs + madd, which also makes packed Q8_0 possible (no int16 pair sums to
// saturate). Compiled with -mavx2 -mfma -mf16c -mavxvnni; every other entry is AVX2's.
#include <immintrin.h>

#include "backends/cpu/quant-kernels-internal.h"
#include "backends/cpu/quant-kernels-packed256-impl.h"

namespace xent::cpu {
namespace {

struct DotVnni {
  static __m256i run(__m256i init, __m256i lo, __m256i alo, __m256i hi, __m256i ahi) {
    return _mm256_dpbusd_avx_epi32(_mm256_dpbusd_avx_epi32(init, lo, alo), hi, ahi);
  }
};

struct Table {
  QuantKernels q8_0, q4_0, q5_0;
};

Table make_table() {
  Table t = {*kernels_avx2(DType::Q8_0), *kernels_avx2(DType::Q4_0), *kernels_avx2(DType::Q5_0)};
  t.q8_0.pack4 = pack4_q8_0;
  t.q8_0.vec_dot_packed4 = vec_dot_packed256<Packed256Q8_0, DotVnni>;
  t.q4_0.vec_dot_packed4 = vec_dot_packed256<Packed256Q4_0, DotVnni>;
  t.q5_0.vec_dot_packed4 = vec_dot_packed256<Packed256Q5_0, DotVnni>;
  return t;
}

}  // namespace

const QuantKernels* kernels_avxvnni(DType weight_type) {
  static const Table t = make_table();
  switch (weight_type) {
    case DType::Q8_0: return &t.q8_0;
    case DType::Q4_0: return &t.q4_0;
    case DType::Q5_0: return &t.q5_0;
    default: return nullptr;
  }
}

}  // namespace xent::cpu
