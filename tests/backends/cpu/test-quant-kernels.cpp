// Tests of the CPU matmul kernels: the scalar references against an f64 dot of what
// formats/quants.cpp dequantizes, the SIMD kernels against the references, and the
// activation quantizers against their definition and against formats' Q8_0/Q8_K quantizer.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/quant-kernels-internal.h"
#include "backends/cpu/quant-kernels.h"
#include "formats/quant-blocks.h"
#include "formats/quants.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

using namespace xent;
using namespace xent::cpu;

namespace {

const DType kWeightTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0, DType::Q4_1,
                              DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K, DType::Q3_K,
                              DType::Q4_K, DType::Q5_K, DType::Q6_K};

// Row lengths per type: one block, several blocks, and a model-sized row. Plain types
// also get lengths that exercise the SIMD tail loops.
std::vector<int64_t> lengths(DType t) {
  const int64_t blk = dtype_block_elems(t);
  if (blk == 1) return {1, 7, 32, 100, 4096};
  return {blk, blk * 5, 4096};
}

// Activations with a different magnitude per 32 values (log-uniform 1e-2 .. 1e1), an
// all-zero block and a few outliers, so scales and the zero-scale path all get used.
std::vector<float> random_activations(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.f, 1.f);
  std::uniform_real_distribution<float> expo(-2.f, 1.f);
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t b = 0; b < n; b += 32) {
    const float scale = std::pow(10.f, expo(rng));
    const bool zero = n >= 512 && b == 256;  // a whole zero Q8_K super-block when n allows
    for (int64_t i = b; i < b + 32 && i < n; ++i) x[i] = zero ? 0.f : scale * normal(rng);
  }
  if (n >= 64) x[static_cast<size_t>(n / 3)] *= 50.f;
  return x;
}

// Random bits for everything but the f16 scale fields, which get finite values, so every
// quant value and every packed-scale bit pattern appears.
std::vector<uint8_t> random_weight_bytes(DType t, int64_t n, std::mt19937& rng) {
  std::vector<uint8_t> w(dtype_row_bytes(t, n));
  std::uniform_int_distribution<int> byte(0, 255);
  for (uint8_t& v : w) v = static_cast<uint8_t>(byte(rng));
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  auto half = [&](float scale) { return f32_to_fp16(scale * u(rng)); };
  const int64_t nb = n / dtype_block_elems(t);
  uint8_t* p = w.data();
  for (int64_t b = 0; b < nb; ++b) {
    switch (t) {
      case DType::F32: {
        float* f = reinterpret_cast<float*>(p);
        for (int64_t i = 0; i < n; ++i) f[i] = u(rng);
        return w;
      }
      case DType::F16: {
        uint16_t* h = reinterpret_cast<uint16_t*>(p);
        for (int64_t i = 0; i < n; ++i) h[i] = half(2.f);
        return w;
      }
      case DType::BF16: {
        uint16_t* h = reinterpret_cast<uint16_t*>(p);
        for (int64_t i = 0; i < n; ++i) h[i] = f32_to_bf16(2.f * u(rng));
        return w;
      }
      case DType::Q4_0: reinterpret_cast<BlockQ4_0*>(p)[b].d = half(0.1f); break;
      case DType::Q5_0: reinterpret_cast<BlockQ5_0*>(p)[b].d = half(0.1f); break;
      case DType::Q8_0: reinterpret_cast<BlockQ8_0*>(p)[b].d = half(0.01f); break;
      case DType::Q4_1: {
        auto& blk = reinterpret_cast<BlockQ4_1*>(p)[b];
        blk.d = half(0.1f);
        blk.m = half(0.5f);
        break;
      }
      case DType::Q5_1: {
        auto& blk = reinterpret_cast<BlockQ5_1*>(p)[b];
        blk.d = half(0.1f);
        blk.m = half(1.f);
        break;
      }
      case DType::Q2_K: {
        auto& blk = reinterpret_cast<BlockQ2_K*>(p)[b];
        blk.d = half(0.1f);
        blk.dmin = half(0.1f);
        break;
      }
      case DType::Q3_K: reinterpret_cast<BlockQ3_K*>(p)[b].d = half(0.05f); break;
      case DType::Q4_K: {
        auto& blk = reinterpret_cast<BlockQ4_K*>(p)[b];
        blk.d = half(0.01f);
        blk.dmin = half(0.01f);
        break;
      }
      case DType::Q5_K: {
        auto& blk = reinterpret_cast<BlockQ5_K*>(p)[b];
        blk.d = half(0.005f);
        blk.dmin = half(0.01f);
        break;
      }
      case DType::Q6_K: reinterpret_cast<BlockQ6_K*>(p)[b].d = half(0.001f); break;
      default: FAIL("no generator for " << dtype_name(t));
    }
  }
  return w;
}

// What the kernels see after formats' reference quantizer, from Gaussian weights.
std::vector<uint8_t> quantized_weights(DType t, int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.f, 0.05f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = normal(rng);
  std::vector<uint8_t> w(dtype_row_bytes(t, n));
  quantize_row(t, x.data(), w.data(), n);
  return w;
}

// The activation each kernel multiplies by, decoded from our activation formats.
std::vector<float> decode_act(DType act_type, const std::vector<uint8_t>& a, int64_t n) {
  std::vector<float> x(static_cast<size_t>(n));
  switch (act_type) {
    case DType::F32:
      std::memcpy(x.data(), a.data(), x.size() * sizeof(float));
      break;
    case DType::Q8_0: {
      const auto* b = reinterpret_cast<const ActQ8_0*>(a.data());
      for (int64_t i = 0; i < n; ++i) x[i] = fp16_to_f32(b[i / 32].d) * b[i / 32].qs[i % 32];
      break;
    }
    case DType::Q8_1: {
      const auto* b = reinterpret_cast<const ActQ8_1*>(a.data());
      for (int64_t i = 0; i < n; ++i) x[i] = fp16_to_f32(b[i / 32].d) * b[i / 32].qs[i % 32];
      break;
    }
    case DType::Q8_K: {
      const auto* b = reinterpret_cast<const ActQ8_K*>(a.data());
      for (int64_t i = 0; i < n; ++i) x[i] = b[i / 256].d * b[i / 256].qs[i % 256];
      break;
    }
    default:
      FAIL("unknown activation type " << dtype_name(act_type));
  }
  return x;
}

// Largest |x - decoded x| the activation format allows for each element: half a step
// of the block scale, plus (for the f16 scale of Q8_0/Q8_1) the scale's own rounding,
// at most 2^-11 relative or 2^-25 absolute in the subnormal range, times |q| <= 127.
std::vector<double> act_error_bound(DType act_type, const std::vector<uint8_t>& a, int64_t n) {
  std::vector<double> e(static_cast<size_t>(n), 0.0);
  if (act_type == DType::Q8_0 || act_type == DType::Q8_1) {
    const size_t stride = act_type == DType::Q8_0 ? sizeof(ActQ8_0) : sizeof(ActQ8_1);
    for (int64_t i = 0; i < n; ++i) {
      uint16_t d16;
      std::memcpy(&d16, a.data() + (i / 32) * stride, 2);
      const double d = std::fabs(fp16_to_f32(d16));
      e[i] = (0.5 * d + 127.0 * (d * std::ldexp(1.0, -11) + std::ldexp(1.0, -25))) * (1 + 1e-6);
    }
  } else if (act_type == DType::Q8_K) {
    const auto* b = reinterpret_cast<const ActQ8_K*>(a.data());
    for (int64_t i = 0; i < n; ++i) e[i] = 0.5 * std::fabs(b[i / 256].d) * (1 + 1e-5);
  }
  return e;
}

std::vector<uint8_t> quantize_act(const QuantKernels& k, const std::vector<float>& x) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> a(k.act_row_bytes(n));
  k.quantize_act(x.data(), a.data(), n);
  return a;
}

}  // namespace

TEST_CASE("kernel tables cover the matmul weight types and nothing else", "[cpu][kernels]") {
  for (DType t : kWeightTypes) {
    INFO(dtype_name(t));
    const QuantKernels* r = kernels_ref(t);
    const QuantKernels* b = kernels_best(t);
    REQUIRE(r != nullptr);
    REQUIRE(b != nullptr);
    CHECK(r->weight_type == t);
    CHECK(b->weight_type == t);
    // work_bytes sizes the scratch from the reference table, mul_mat may use the best one.
    CHECK(r->act_type == b->act_type);
    for (int64_t n : lengths(t)) CHECK(r->act_row_bytes(n) == b->act_row_bytes(n));
    REQUIRE(r->quantize_act != nullptr);
    REQUIRE(b->quantize_act != nullptr);
  }
  for (DType t : {DType::Q8_1, DType::Q8_K, DType::I8, DType::I32, DType::F64}) {
    INFO(dtype_name(t));
    CHECK(kernels_ref(t) == nullptr);
    CHECK(kernels_best(t) == nullptr);
  }
  const std::string level = simd_level();
  CHECK((level == "avx2" || level == "scalar" || level == "neon" || level == "neon-dotprod" ||
         level == "neon-i8mm" || level == "avxvnni" || level == "avx512"));
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)) != 0;
  const bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
  const bool has_avx512 = has_avx2 && __builtin_cpu_supports("avx512f") &&
                          __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                          __builtin_cpu_supports("avx512vnni");
  const bool has_avxvnni = has_avx2 && __builtin_cpu_supports("avxvnni");
  if (!std::getenv("XENT_CPU_LEVEL"))  // (which caps the level)
    CHECK(level == (has_avx512 ? "avx512" : has_avxvnni ? "avxvnni" : has_avx2 ? "avx2" : "scalar"));
#endif
#if defined(__aarch64__) && defined(__linux__)
  // HWCAP_ASIMDDP (bit 20): SDOT present. Under qemu-user, -cpu max has it and
  // -cpu cortex-a53 does not, so CI runs this file once on each path.
  // HWCAP2_I8MM (bit 13): SMMLA, which qemu's -cpu max also has.
  const bool has_dotprod = (getauxval(AT_HWCAP) & (1ul << 20)) != 0;
  const bool has_i8mm = has_dotprod && (getauxval(AT_HWCAP2) & (1ul << 13)) != 0;
  if (!std::getenv("XENT_CPU_LEVEL"))  // (which caps the level)
    CHECK(level == (has_i8mm ? "neon-i8mm" : has_dotprod ? "neon-dotprod" : "neon"));
  for (DType t : kWeightTypes) {  // every type has a NEON kernel, so "best" is not the reference
    INFO(dtype_name(t));
    CHECK(kernels_best(t) != kernels_ref(t));
  }
#endif
}

TEST_CASE("activation quantizers: SIMD bytes equal the reference's and follow the definition",
          "[cpu][kernels]") {
  std::mt19937 rng(7);
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q2_K}) {  // one per activation format
    const QuantKernels& r = *kernels_ref(t);
    const QuantKernels& b = *kernels_best(t);
    INFO(dtype_name(t) << " act " << dtype_name(r.act_type));
    for (int64_t n : {int64_t{256}, int64_t{4096}}) {
      for (int rep = 0; rep < 4; ++rep) {
        std::vector<float> x = random_activations(n, rng);
        if (rep == 1) x[5] = -x[5] * 1000.f;  // the signed extreme decides Q8_K's scale sign
        if (rep == 2)                         // ties of magnitude: the first one wins
          for (int64_t i = 0; i < n; i += 17) x[i] = (i % 2 ? -1.f : 1.f) * 100.f;
        const std::vector<uint8_t> ar = quantize_act(r, x), ab = quantize_act(b, x);
        REQUIRE(ar.size() == ab.size());
        CHECK(std::memcmp(ar.data(), ab.data(), ar.size()) == 0);

        // Against formats' quantizer (ggml's reference): Q8_K must match exactly, Q8_0
        // except exact .5 ties (ggml's Q8_0 reference rounds them away from zero, we
        // round them to even like its SIMD path).
        const DType ref_fmt = r.act_type == DType::Q8_K ? DType::Q8_K : DType::Q8_0;
        std::vector<uint8_t> fq(dtype_row_bytes(ref_fmt, n));
        quantize_row(ref_fmt, x.data(), fq.data(), n);
        const int64_t bs = dtype_block_elems(ref_fmt);
        for (int64_t blk = 0; blk < n / bs; ++blk) {
          if (ref_fmt == DType::Q8_K) {
            const auto& ours = reinterpret_cast<const ActQ8_K*>(ar.data())[blk];
            const auto& theirs = reinterpret_cast<const BlockQ8_K*>(fq.data())[blk];
            REQUIRE(std::memcmp(&ours, &theirs, sizeof ours) == 0);
            continue;
          }
          const auto& theirs = reinterpret_cast<const BlockQ8_0*>(fq.data())[blk];
          uint16_t d;
          const int8_t* qs;
          int sum_stored = 0;
          if (r.act_type == DType::Q8_0) {
            const auto& ours = reinterpret_cast<const ActQ8_0*>(ar.data())[blk];
            d = ours.d;
            qs = ours.qs;
          } else {
            const auto& ours = reinterpret_cast<const ActQ8_1*>(ar.data())[blk];
            d = ours.d;
            qs = ours.qs;
            sum_stored = ours.sum;
          }
          REQUIRE(d == theirs.d);
          float amax = 0;
          for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[blk * 32 + j]));
          const float id = amax != 0 ? 127.f / amax : 0.f;
          int sum = 0;
          for (int j = 0; j < 32; ++j) {
            sum += qs[j];
            if (qs[j] == theirs.qs[j]) continue;
            // Only an exact tie may differ, and then by one step.
            const float v = x[blk * 32 + j] * (1.f / (amax / 127.f));
            INFO("block " << blk << " elem " << j << " x*id " << v << " id~" << id);
            CHECK(std::fabs(v - std::trunc(v)) == 0.5f);
            CHECK(std::abs(qs[j] - theirs.qs[j]) == 1);
          }
          if (r.act_type == DType::Q8_1) CHECK(sum_stored == sum);
        }
      }
    }
  }
}

TEST_CASE("vec_dot: reference vs f64 oracle, SIMD vs reference, error vs f32 activations",
          "[cpu][kernels]") {
  std::mt19937 rng(1234);
  for (DType t : kWeightTypes) {
    const QuantKernels& r = *kernels_ref(t);
    const QuantKernels& best = *kernels_best(t);
    // Reported: how far quantized activations move the dot, and the worst (a)/(b) errors.
    double worst_rel_to_f32 = 0, worst_a = 0, worst_b = 0;
    for (int64_t n : lengths(t)) {
      for (int src = 0; src < 2; ++src) {
        for (int rep = 0; rep < 3; ++rep) {
          INFO(dtype_name(t) << " n=" << n << (src ? " quantized" : " random bytes")
                             << " rep " << rep);
          const std::vector<uint8_t> w =
              src ? quantized_weights(t, n, rng) : random_weight_bytes(t, n, rng);
          const std::vector<float> x = random_activations(n, rng);
          const std::vector<uint8_t> a = quantize_act(r, x);
          const std::vector<float> aq = decode_act(r.act_type, a, n);
          std::vector<float> wf(static_cast<size_t>(n));
          dequantize_row(t, w.data(), wf.data(), n);

          double exact = 0, mag = 0, exact_f32 = 0, mag_f32 = 0, bound_f32 = 0;
          const std::vector<double> e = act_error_bound(r.act_type, a, n);
          for (int64_t i = 0; i < n; ++i) {
            exact += static_cast<double>(wf[i]) * aq[i];
            mag += std::fabs(static_cast<double>(wf[i]) * aq[i]);
            exact_f32 += static_cast<double>(wf[i]) * x[i];
            mag_f32 += std::fabs(static_cast<double>(wf[i]) * x[i]);
            bound_f32 += std::fabs(static_cast<double>(wf[i])) * e[i];
          }
          const double tiny = 1e-30;
          auto rel = [&](double err) { return mag > 0 ? err / mag : 0.0; };

          // (a) the reference is exact integer math up to float rounding of the scales and
          // of the per-block accumulation.
          float s_ref = NAN;
          r.vec_dot(n, &s_ref, w.data(), a.data());
          INFO("ref " << s_ref << " exact " << exact << " sum|terms| " << mag);
          CHECK(std::fabs(s_ref - exact) <= 2e-6 * mag + tiny);
          worst_a = std::fmax(worst_a, rel(std::fabs(s_ref - exact)));

          // (b) SIMD: same math, different summation order.
          float s_best = NAN;
          best.vec_dot(n, &s_best, w.data(), a.data());
          INFO("best " << s_best);
          CHECK(std::fabs(s_best - s_ref) <= 2e-6 * mag + tiny);
          worst_b = std::fmax(worst_b, rel(std::fabs(s_best - s_ref)));

          // (c) against the original f32 activations: within the activation format's
          // worst-case rounding (zero for F32 activations), plus float rounding.
          INFO("f32-activation dot " << exact_f32 << " bound " << bound_f32);
          CHECK(std::fabs(s_ref - exact_f32) <= bound_f32 + 1e-5 * mag_f32 + tiny);
          if (mag_f32 > 0)
            worst_rel_to_f32 =
                std::fmax(worst_rel_to_f32, std::fabs(s_ref - exact_f32) / mag_f32);
        }
      }
    }
    // Reported for the record (run with -s); with F32 activations it must stay at float
    // rounding. For the int8 formats the per-element bound above is the check: a single
    // Q8_K scale over 256 values with a 50x outlier can cost a percent of sum|w*x|.
    INFO(dtype_name(t) << " worst |ref - f32 dot| / sum|w*x| = " << worst_rel_to_f32);
    if (r.act_type == DType::F32) CHECK(worst_rel_to_f32 <= 1e-6);
    else
      SUCCEED(dtype_name(t) << " worst relative error vs f32 activations " << worst_rel_to_f32);
    SUCCEED(dtype_name(t) << " worst (a) " << worst_a << " (b) " << worst_b);
  }
}

TEST_CASE("vec_dot_tile: every tile shape equals vec_dot per pair", "[cpu][kernels]") {
  std::mt19937 rng(99);
  for (DType t : kWeightTypes) {
    for (const QuantKernels* k : {kernels_ref(t), kernels_best(t)}) {
      if (!k->vec_dot_tile) continue;
      for (int64_t n : lengths(t)) {
        INFO(dtype_name(t) << " n=" << n);
        // Rows padded past their length so the strides, not the lengths, place them.
        const size_t w_row = dtype_row_bytes(t, n), a_row = k->act_row_bytes(n);
        const size_t w_stride = w_row + 64, a_stride = a_row + 32;
        std::vector<uint8_t> w(w_stride * kTileRows), a(a_stride * kTileCols);
        std::vector<double> mag(kTileRows * kTileCols, 0.0);
        std::vector<std::vector<float>> wf(kTileRows, std::vector<float>(n));
        for (int r = 0; r < kTileRows; ++r) {
          const std::vector<uint8_t> wr =
              r % 2 ? quantized_weights(t, n, rng) : random_weight_bytes(t, n, rng);
          std::memcpy(w.data() + r * w_stride, wr.data(), w_row);
          dequantize_row(t, wr.data(), wf[r].data(), n);
        }
        for (int c = 0; c < kTileCols; ++c) {
          const std::vector<uint8_t> ac = quantize_act(*k, random_activations(n, rng));
          std::memcpy(a.data() + c * a_stride, ac.data(), a_row);
          const std::vector<float> aq = decode_act(k->act_type, ac, n);
          for (int r = 0; r < kTileRows; ++r)
            for (int64_t i = 0; i < n; ++i) mag[r * kTileCols + c] += std::fabs(double(wf[r][i]) * aq[i]);
        }
        for (int nr = 1; nr <= kTileRows; ++nr) {
          for (int nc = 1; nc <= kTileCols; ++nc) {
            INFO("tile " << nr << "x" << nc);
            const size_t s_stride = kTileRows + 3;
            std::vector<float> s(s_stride * kTileCols, -12345.f);
            k->vec_dot_tile(n, s.data(), s_stride, w.data(), w_stride, a.data(), a_stride, nr, nc);
            for (int c = 0; c < kTileCols; ++c) {
              for (int r = 0; r < static_cast<int>(s_stride); ++r) {
                const float got = s[c * s_stride + r];
                if (r >= nr || c >= nc) {  // outside the tile nothing is written
                  CHECK(got == -12345.f);
                  continue;
                }
                float want = NAN;
                k->vec_dot(n, &want, w.data() + r * w_stride, a.data() + c * a_stride);
                // A table's vec_dot may itself be its 1x1 tile, so the reference checks too.
                float want_ref = NAN;
                kernels_ref(t)->vec_dot(n, &want_ref, w.data() + r * w_stride, a.data() + c * a_stride);
                INFO("r " << r << " c " << c << " tile " << got << " vec_dot " << want << " ref "
                          << want_ref);
                CHECK(std::fabs(got - want) <= 1e-6 * mag[r * kTileCols + c] + 1e-30);
                CHECK(std::fabs(got - want_ref) <= 2e-6 * mag[r * kTileCols + c] + 1e-30);
              }
            }
          }
        }
      }
    }
  }
}

TEST_CASE("vec_dot_tile: the SIMD tables have tiles for the common weight types", "[cpu][kernels]") {
  // Without a tile the fast driver falls back to vec_dot per pair: correct but slow.
#if defined(__x86_64__)
  const std::string level = simd_level();
  if (level == "scalar") {
    SUCCEED("no SIMD kernels on this CPU");
    return;
  }
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q5_0, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    INFO(dtype_name(t));
    CHECK(kernels_best(t)->vec_dot_tile != nullptr);
  }
#elif defined(__aarch64__)
  // SMMLA tiles for the 32-block types where the CPU has I8MM; the other tiers have none yet.
  if (std::string(simd_level()) != "neon-i8mm") {
    SUCCEED("no tiles at NEON tier " << simd_level());
    return;
  }
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q5_0}) {
    INFO(dtype_name(t));
    CHECK(kernels_best(t)->vec_dot_tile != nullptr);
  }
#else
  SUCCEED("tiles not yet written for this architecture");
#endif
}

TEST_CASE("f16 multi-row attention kernels equal their one-row forms per row", "[cpu][kernels]") {
  // dot_rows_multi / weighted_sum_multi (a tree step's or a prompt's rows over the same keys)
  // against dot_rows / weighted_sum of the same table, row by row, and the definitions.
  const QuantKernels* k = kernels_best(DType::F16);
  if (!k->dot_rows_multi || !k->weighted_sum_multi) {
    SUCCEED("no multi-row forms at this SIMD level (" << simd_level() << ")");
    return;
  }
  std::mt19937 rng(12);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::uniform_real_distribution<float> unit(0.f, 1.f);
  for (int64_t n : {8, 17, 40, 64, 80, 128}) {
    for (int64_t n_rows : {1, 3, 4, 9, 33}) {
      for (int m = 1; m <= kAttnRows; ++m) {
        INFO("n " << n << ", rows " << n_rows << ", m " << m);
        const size_t stride = static_cast<size_t>(n + 5) * 2;
        std::vector<uint16_t> rows(static_cast<size_t>(n_rows) * (stride / 2));
        for (uint16_t& v : rows) v = f32_to_fp16(normal(rng));
        const size_t ld = static_cast<size_t>(n_rows) + 3;
        std::vector<std::vector<float>> x(static_cast<size_t>(m), std::vector<float>(static_cast<size_t>(n)));
        std::vector<float> p(static_cast<size_t>(m) * ld, -7.f);  // past n_rows: never read
        std::vector<const float*> xp;
        for (auto& r : x) {
          for (float& v : r) v = normal(rng);
          xp.push_back(r.data());
        }
        for (int r = 0; r < m; ++r)
          for (int64_t j = 0; j < n_rows; ++j) p[r * ld + j] = unit(rng) < 0.3f ? 0.0f : unit(rng);
        std::vector<float> s(static_cast<size_t>(m) * ld, -1.f);
        k->dot_rows_multi(n, s.data(), ld, xp.data(), m, rows.data(), stride, n_rows);
        std::vector<std::vector<float>> y(static_cast<size_t>(m), std::vector<float>(static_cast<size_t>(n), 99.f));
        std::vector<float*> yp;
        for (auto& r : y) yp.push_back(r.data());
        k->weighted_sum_multi(n, yp.data(), p.data(), ld, m, rows.data(), stride, n_rows);
        for (int r = 0; r < m; ++r) {
          std::vector<float> s1(static_cast<size_t>(n_rows)), y1(static_cast<size_t>(n));
          k->dot_rows(n, s1.data(), x[r].data(), rows.data(), stride, n_rows);
          k->weighted_sum(n, y1.data(), p.data() + r * ld, rows.data(), stride, n_rows);
          for (int64_t j = 0; j < n_rows; ++j) {
            double mag = 0;
            for (int64_t i = 0; i < n; ++i) mag += std::abs(double(x[r][i]) * fp16_to_f32(rows[j * (stride / 2) + i]));
            CHECK(std::abs(s[r * ld + j] - s1[j]) <= 1e-6 * mag + 1e-30);
          }
          CHECK(s[r * ld + n_rows] == -1.f);  // nothing written past the rows
          for (int64_t i = 0; i < n; ++i) {
            double mag = 0;
            for (int64_t j = 0; j < n_rows; ++j) mag += std::abs(double(p[r * ld + j]) * fp16_to_f32(rows[j * (stride / 2) + i]));
            CHECK(std::abs(y[r][i] - y1[i]) <= 1e-6 * mag + 1e-30);
          }
        }
      }
    }
  }
}

TEST_CASE("f16 row kernels of attention: SIMD vs reference, reference vs its definition", "[cpu][kernels]") {
  // Attention scores keys with dot_rows and sums values with weighted_sum; every table
  // that has F16 must have both.
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::uniform_real_distribution<float> unit(0.f, 1.f);
  for (const QuantKernels* k : {kernels_ref(DType::F16), kernels_best(DType::F16)}) {
    REQUIRE(k->dot_rows != nullptr);
    REQUIRE(k->weighted_sum != nullptr);
    for (int64_t n : {1, 7, 8, 17, 64, 72, 100, 128}) {
      for (int64_t n_rows : {1, 3, 4, 9, 33}) {
        INFO("n " << n << ", rows " << n_rows << (k == kernels_ref(DType::F16) ? " (reference)" : " (best)"));
        const size_t stride = static_cast<size_t>(n + 5) * 2;  // rows farther apart than n, as in the cache
        std::vector<uint16_t> rows(static_cast<size_t>(n_rows) * (stride / 2));
        for (uint16_t& v : rows) v = f32_to_fp16(normal(rng));
        std::vector<float> x(static_cast<size_t>(n)), p(static_cast<size_t>(n_rows));
        for (float& v : x) v = normal(rng);
        for (float& v : p) v = unit(rng) < 0.2f ? 0.0f : unit(rng);  // some weights exactly 0
        auto at = [&](int64_t j, int64_t i) { return fp16_to_f32(rows[static_cast<size_t>(j) * (stride / 2) + i]); };

        std::vector<float> s(static_cast<size_t>(n_rows), -1.f);
        k->dot_rows(n, s.data(), x.data(), rows.data(), stride, n_rows);
        for (int64_t j = 0; j < n_rows; ++j) {
          double want = 0, mag = 0;
          for (int64_t i = 0; i < n; ++i) {
            want += static_cast<double>(x[i]) * at(j, i);
            mag += std::abs(static_cast<double>(x[i]) * at(j, i));
          }
          CHECK(std::abs(s[j] - want) <= 1e-6 * mag + 1e-30);
        }

        std::vector<float> y(static_cast<size_t>(n), 123.f);
        k->weighted_sum(n, y.data(), p.data(), rows.data(), stride, n_rows);
        for (int64_t i = 0; i < n; ++i) {
          double want = 0, mag = 0;
          for (int64_t j = 0; j < n_rows; ++j) {
            want += static_cast<double>(p[j]) * at(j, i);
            mag += std::abs(static_cast<double>(p[j]) * at(j, i));
          }
          CHECK(std::abs(y[i] - want) <= 1e-6 * mag + 1e-30);
        }
      }
    }
  }
}

TEST_CASE("q8_0 row kernels of attention (q8_0 KV cache): SIMD and reference vs the definition",
          "[cpu][kernels]") {
  // The cache rows are quantized by quantize_row; the definition dequantizes them and sums in
  // double, so the only error left is the kernels' float accumulation.
  std::mt19937 rng(12);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::uniform_real_distribution<float> unit(0.f, 1.f);
  for (const QuantKernels* k : {kernels_ref(DType::Q8_0), kernels_best(DType::Q8_0)}) {
    REQUIRE(k->dot_rows != nullptr);
    REQUIRE(k->weighted_sum != nullptr);
    for (int64_t n : {32, 64, 96, 128, 256}) {
      for (int64_t n_rows : {1, 3, 4, 9, 33}) {
        INFO("n " << n << ", rows " << n_rows << (k == kernels_ref(DType::Q8_0) ? " (reference)" : " (best)"));
        const size_t row_bytes = dtype_row_bytes(DType::Q8_0, n);
        const size_t stride = row_bytes + 34 * 3;  // rows farther apart than one row, as in the cache
        std::vector<uint8_t> rows(static_cast<size_t>(n_rows) * stride);
        std::vector<float> deq(static_cast<size_t>(n_rows * n)), src(static_cast<size_t>(n));
        for (int64_t j = 0; j < n_rows; ++j) {
          for (float& v : src) v = normal(rng);
          quantize_row(DType::Q8_0, src.data(), rows.data() + j * stride, n);
          dequantize_row(DType::Q8_0, rows.data() + j * stride, deq.data() + j * n, n);
        }
        std::vector<float> x(static_cast<size_t>(n)), p(static_cast<size_t>(n_rows));
        for (float& v : x) v = normal(rng);
        for (float& v : p) v = unit(rng) < 0.2f ? 0.0f : unit(rng);

        std::vector<float> s(static_cast<size_t>(n_rows), -1.f);
        k->dot_rows(n, s.data(), x.data(), rows.data(), stride, n_rows);
        for (int64_t j = 0; j < n_rows; ++j) {
          double want = 0, mag = 0;
          for (int64_t i = 0; i < n; ++i) {
            want += static_cast<double>(x[i]) * deq[j * n + i];
            mag += std::abs(static_cast<double>(x[i]) * deq[j * n + i]);
          }
          CHECK(std::abs(s[j] - want) <= 1e-6 * mag + 1e-30);
        }

        std::vector<float> y(static_cast<size_t>(n), 123.f);
        k->weighted_sum(n, y.data(), p.data(), rows.data(), stride, n_rows);
        for (int64_t i = 0; i < n; ++i) {
          double want = 0, mag = 0;
          for (int64_t j = 0; j < n_rows; ++j) {
            want += static_cast<double>(p[j]) * deq[j * n + i];
            mag += std::abs(static_cast<double>(p[j]) * deq[j * n + i]);
          }
          CHECK(std::abs(y[i] - want) <= 1e-6 * mag + 1e-30);
        }
      }
    }
  }
}

TEST_CASE("repacked Q4_0 / Q5_0 rows: the packed dot equals vec_dot per row, for every column count",
          "[cpu][kernels]") {
  struct Packing {
    DType type;
    void (*pack)(int64_t, const void*, size_t, void*);
    void (*ref)(int64_t, float*, size_t, const void*, const void*, size_t, int);
  };
  const Packing packings[] = {{DType::Q8_0, pack4_q8_0, vec_dot_packed4_q8_0_ref},
                              {DType::Q4_0, pack4_q4_0, vec_dot_packed4_q4_0_ref},
                              {DType::Q5_0, pack4_q5_0, vec_dot_packed4_q5_0_ref}};
  std::mt19937 rng(77);
  for (const Packing& pk : packings) {
    const QuantKernels& ref = *kernels_ref(pk.type);
    const QuantKernels& best = *kernels_best(pk.type);
    for (int64_t n : {32, 64, 96, 576, 1536}) {
      const size_t row = dtype_row_bytes(pk.type, n);
      std::vector<uint8_t> w;
      for (int r = 0; r < 4; ++r) {
        const std::vector<uint8_t> one = random_weight_bytes(pk.type, n, rng);
        w.insert(w.end(), one.begin(), one.end());
      }
      std::vector<uint8_t> packed(w.size());
      pk.pack(n, w.data(), row, packed.data());
      REQUIRE(packed != w);  // the layout did change
      std::vector<std::vector<uint8_t>> acts;
      for (int c = 0; c < kPackedCols; ++c) acts.push_back(quantize_act(ref, random_activations(n, rng)));
      // Packed activation rows: the blocks, then their sums.
      const size_t act_row = packed_act_row_bytes(n);
      std::vector<uint8_t> act_rows;
      for (const auto& a : acts) {
        act_rows.insert(act_rows.end(), a.begin(), a.end());
        act_rows.resize(act_rows.size() + act_row - a.size());
        pack_act_row(act_rows.data() + act_rows.size() - act_row, n);
      }
      // The packed reference follows the definition; the table's kernel (where this CPU has
      // one) must agree with both it and vec_dot.
      std::vector<const QuantKernels*> tables = {nullptr};
      if (best.vec_dot_packed4) tables.push_back(&best);
#if defined(__x86_64__)
      // The AVX2 table too where the CPU has AVX2, also when best is the AVX-512 one.
      if (std::string(simd_level()) != "scalar" && &best != kernels_avx2(pk.type) && kernels_avx2(pk.type)->vec_dot_packed4)
        tables.push_back(kernels_avx2(pk.type));
      // And the AVX-VNNI one where the CPU has that instruction.
      if (std::string(simd_level()) != "scalar" && __builtin_cpu_supports("avxvnni") &&
          &best != kernels_avxvnni(pk.type) && kernels_avxvnni(pk.type)->vec_dot_packed4)
        tables.push_back(kernels_avxvnni(pk.type));
#endif
      for (const QuantKernels* k : tables) {
        for (int nc = 1; nc <= kPackedCols; ++nc) {
          INFO(dtype_name(pk.type) << " n " << n << ", columns " << nc << (k ? " (SIMD)" : " (reference)"));
          const size_t ss = 7;  // output rows farther apart than 4
          std::vector<float> s(ss * kPackedCols, NAN);
          if (k) k->vec_dot_packed4(n, s.data(), ss, packed.data(), act_rows.data(), act_row, nc);
          else pk.ref(n, s.data(), ss, packed.data(), act_rows.data(), act_row, nc);
          for (int c = 0; c < nc; ++c)
            for (int r = 0; r < 4; ++r) {
              float want = NAN;
              ref.vec_dot(n, &want, w.data() + r * row, acts[c].data());
              CHECK(std::fabs(s[c * ss + r] - want) <= 1e-5f * std::fabs(want) + 1e-4f);
            }
          for (int c = nc; c < kPackedCols; ++c) CHECK(std::isnan(s[c * ss]));  // nothing past nc written
        }
      }
    }
#if defined(__x86_64__)
    const std::string lvl = simd_level();
    if (lvl == "avx512" || lvl == "avxvnni") CHECK(best.vec_dot_packed4 != nullptr);
#endif
  }
}
