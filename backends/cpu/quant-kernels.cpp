// Tables of matmul kernels per weight type and the one-time choice of SIMD level.
// The reference table is always there; SIMD tables share its activation formats.
#include "backends/cpu/quant-kernels.h"

#include "backends/cpu/quant-kernels-internal.h"

#include <cstdlib>
#include <string>

#if defined(XENT_CPU_HAVE_AVX2_KERNELS) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif
#if defined(XENT_CPU_HAVE_NEON_KERNELS) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace xent::cpu {
namespace {

constexpr QuantKernels kRef[] = {
    {DType::F32, DType::F32, act_row_bytes_f32, quantize_act_f32, vec_dot_f32_ref},
    {DType::F16, DType::F32, act_row_bytes_f32, quantize_act_f32, vec_dot_f16_ref, nullptr,
     dot_rows_f16_ref, weighted_sum_f16_ref},
    {DType::BF16, DType::F32, act_row_bytes_f32, quantize_act_f32, vec_dot_bf16_ref},
    {DType::Q4_0, DType::Q8_0, act_row_bytes_q8_0, quantize_act_q8_0_ref, vec_dot_q4_0_ref},
    {DType::Q4_1, DType::Q8_1, act_row_bytes_q8_1, quantize_act_q8_1_ref, vec_dot_q4_1_ref},
    {DType::Q5_0, DType::Q8_0, act_row_bytes_q8_0, quantize_act_q8_0_ref, vec_dot_q5_0_ref},
    {DType::Q5_1, DType::Q8_1, act_row_bytes_q8_1, quantize_act_q8_1_ref, vec_dot_q5_1_ref},
    {DType::Q8_0, DType::Q8_0, act_row_bytes_q8_0, quantize_act_q8_0_ref, vec_dot_q8_0_ref, nullptr,
     dot_rows_q8_0_ref, weighted_sum_q8_0_ref},
    {DType::Q2_K, DType::Q8_K, act_row_bytes_q8_k, quantize_act_q8_k_ref, vec_dot_q2_k_ref},
    {DType::Q3_K, DType::Q8_K, act_row_bytes_q8_k, quantize_act_q8_k_ref, vec_dot_q3_k_ref},
    {DType::Q4_K, DType::Q8_K, act_row_bytes_q8_k, quantize_act_q8_k_ref, vec_dot_q4_k_ref},
    {DType::Q5_K, DType::Q8_K, act_row_bytes_q8_k, quantize_act_q8_k_ref, vec_dot_q5_k_ref},
    {DType::Q6_K, DType::Q8_K, act_row_bytes_q8_k, quantize_act_q8_k_ref, vec_dot_q6_k_ref},
};

enum class Level { scalar, avx2, avxvnni, avx512, neon, neon_dotprod, neon_i8mm };

#if defined(XENT_CPU_HAVE_NEON_KERNELS)
// The kernel's HWCAP bits (asm/hwcap.h; spelled out so older headers and bionic build).
constexpr unsigned long kHwcapAsimd = 1ul << 1;
constexpr unsigned long kHwcapAsimdDp = 1ul << 20;
constexpr unsigned long kHwcap2I8mm = 1ul << 13;
#endif

// Called once AVX2 is known to be usable (the OS saves the YMM registers). CPUID leaf 7
// subleaf 1, EAX bit 4: clang 14's __builtin_cpu_supports does not know "avxvnni".
[[maybe_unused]] bool has_avxvnni() {
#if defined(XENT_CPU_HAVE_AVX2_KERNELS) && (defined(__GNUC__) || defined(__clang__))
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && (eax & (1u << 4)) != 0;
#else
  return false;
#endif
}

Level detect_level() {
#if defined(XENT_CPU_HAVE_AVX2_KERNELS) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  // clang's __builtin_cpu_supports has no "f16c": read CPUID leaf 1, ECX bit 29.
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)) != 0;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c) {
    // The VNNI kernels also need 512-bit registers (libgcc checks the OS saves them).
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"))
      return Level::avx512;
    if (has_avxvnni()) return Level::avxvnni;
    return Level::avx2;
  }
#endif
#if defined(XENT_CPU_HAVE_NEON_KERNELS)
  // Advanced SIMD is part of every AArch64 Linux/Android target; SDOT is optional
  // (Cortex-A53/A72 lack it) and the dotprod file must never run without it.
#if defined(__linux__)
  const unsigned long hwcap = getauxval(AT_HWCAP);
#else
  const unsigned long hwcap = kHwcapAsimd;
#endif
  if (!(hwcap & kHwcapAsimd)) return Level::scalar;
#if defined(__linux__)
  if ((hwcap & kHwcapAsimdDp) && (getauxval(AT_HWCAP2) & kHwcap2I8mm)) return Level::neon_i8mm;
#endif
  if (hwcap & kHwcapAsimdDp) return Level::neon_dotprod;
  return Level::neon;
#endif
  return Level::scalar;
}

// XENT_CPU_LEVEL=avxvnni|avx2|scalar|neon-dotprod|neon caps the level (never raises it): to measure or
// test a lower tier on a machine that has more. (A CPU with AVX-512 VNNI has AVX-VNNI's
// instruction too, in its EVEX form, but may lack the VEX one: capping to avxvnni needs it.)
Level capped(Level detected) {
  const char* e = std::getenv("XENT_CPU_LEVEL");
  if (!e || !*e) return detected;
  const std::string want = e;
  if (want == "scalar") return Level::scalar;
  if (want == "avx2" && (detected == Level::avx512 || detected == Level::avxvnni)) return Level::avx2;
  if (want == "avxvnni" && detected == Level::avx512 && has_avxvnni()) return Level::avxvnni;
  if (want == "neon" && (detected == Level::neon_dotprod || detected == Level::neon_i8mm)) return Level::neon;
  if (want == "neon-dotprod" && detected == Level::neon_i8mm) return Level::neon_dotprod;
  return detected;
}

Level level() {
  static const Level l = capped(detect_level());
  return l;
}

}  // namespace

const QuantKernels* kernels_ref(DType weight_type) {
  for (const QuantKernels& k : kRef)
    if (k.weight_type == weight_type) return &k;
  return nullptr;
}

const QuantKernels* kernels_best(DType weight_type) {
#if defined(XENT_CPU_HAVE_AVX2_KERNELS)
  if (level() == Level::avx512)
    if (const QuantKernels* k = kernels_avx512(weight_type)) return k;
  if (level() == Level::avxvnni)
    if (const QuantKernels* k = kernels_avxvnni(weight_type)) return k;
  if (level() == Level::avx2 || level() == Level::avxvnni || level() == Level::avx512)
    if (const QuantKernels* k = kernels_avx2(weight_type)) return k;
#endif
#if defined(XENT_CPU_HAVE_NEON_KERNELS)
  if (level() == Level::neon_i8mm)
    if (const QuantKernels* k = kernels_neon_i8mm(weight_type)) return k;
  if (level() == Level::neon_dotprod)
    if (const QuantKernels* k = kernels_neon_dotprod(weight_type)) return k;
  if (level() == Level::neon)
    if (const QuantKernels* k = kernels_neon(weight_type)) return k;
#endif
  return kernels_ref(weight_type);
}

const char* simd_level() {
  switch (level()) {
    case Level::avx2:
      return "avx2";
    case Level::avxvnni:
      return "avxvnni";
    case Level::avx512:
      return "avx512";
    case Level::neon:
      return "neon";
    case Level::neon_dotprod:
      return "neon-dotprod";
    case Level::neon_i8mm:
      return "neon-i8mm";
    case Level::scalar:
      break;
  }
  return "scalar";
}

}  // namespace xent::cpu
