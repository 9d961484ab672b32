// fp16/bf16 conversions against an independent nearest-value oracle; quantizers: hand-built
// blocks, error bounds, and byte identity with ggml's tensors in the tiny-llama-spm-* models.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "formats/error.h"
#include "formats/gguf.h"
#include "formats/quant-blocks.h"
#include "formats/quants.h"

namespace fs = std::filesystem;
using namespace xent;

namespace {

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Value of a non-negative fp16 pattern computed in double from the IEEE definition; the
// pattern 0x7c00 is given the value 2^16, where an unbounded exponent would put it, so
// "nearest" also decides overflow correctly.
double half_value(uint32_t h) {
  const int e = static_cast<int>((h >> 10) & 0x1f);
  const int m = static_cast<int>(h & 0x3ff);
  if (e == 0) return std::ldexp(static_cast<double>(m), -24);
  return std::ldexp(static_cast<double>(1024 + m), e - 25);
}

// Same for bf16 (8-bit exponent, 7-bit mantissa); 0x7f80 gets the value 2^128.
double bf16_value(uint32_t h) {
  const int e = static_cast<int>((h >> 7) & 0xff);
  const int m = static_cast<int>(h & 0x7f);
  if (e == 0) return std::ldexp(static_cast<double>(m), -133);
  return std::ldexp(static_cast<double>(128 + m), e - 134);
}

// Independent oracle: the representable value nearest to |f|, ties to the even pattern.
// lo is a pattern whose value is <= |f| and lo + 1 one whose value is >= |f|.
uint16_t nearest_of(double a, uint32_t lo, double (*value)(uint32_t)) {
  const double dlo = a - value(lo), dhi = value(lo + 1) - a;
  if (dlo < dhi) return static_cast<uint16_t>(lo);
  if (dhi < dlo) return static_cast<uint16_t>(lo + 1);
  return static_cast<uint16_t>((lo & 1) ? lo + 1 : lo);
}

uint16_t oracle_fp16(float f) {
  const uint16_t sign = (bits_of(f) >> 31) ? 0x8000 : 0;
  const double a = std::fabs(static_cast<double>(f));
  if (a >= 65520.0) return sign | 0x7c00;  // std::isinf included
  // Largest pattern whose value is <= a, by bisection over the monotone positive patterns.
  uint32_t lo = 0, hi = 0x7c00;
  while (hi - lo > 1) {
    const uint32_t mid = (lo + hi) / 2;
    (half_value(mid) <= a ? lo : hi) = mid;
  }
  return static_cast<uint16_t>(sign | nearest_of(a, lo, half_value));
}

uint16_t oracle_bf16(float f) {
  const uint32_t u = bits_of(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
  const uint32_t a_bits = u & 0x7fffffff;
  if (a_bits == 0x7f800000) return sign | 0x7f80;
  // Truncation is the pattern just below; one above it is the other candidate.
  return static_cast<uint16_t>(sign | nearest_of(std::fabs(static_cast<double>(f)), a_bits >> 16, bf16_value));
}

bool is_half_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }
bool is_bf16_nan(uint16_t h) { return (h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0; }

const DType kQuantTypes[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,
                             DType::Q8_1, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K,
                             DType::Q6_K, DType::Q8_K};

std::vector<uint8_t> quantize(DType t, const std::vector<float>& x) {
  std::vector<uint8_t> q(dtype_row_bytes(t, static_cast<int64_t>(x.size())));
  quantize_row(t, x.data(), q.data(), static_cast<int64_t>(x.size()));
  return q;
}

std::vector<float> dequantize(DType t, const std::vector<uint8_t>& q, size_t n) {
  std::vector<float> y(n);
  dequantize_row(t, q.data(), y.data(), static_cast<int64_t>(n));
  return y;
}

// sum (x - y)^2 / sum x^2
double nmse(const std::vector<float>& x, const std::vector<float>& y) {
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    num += (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
    den += static_cast<double>(x[i]) * x[i];
  }
  return den > 0 ? num / den : num;
}

// Upper bounds on the NMSE of a standard-normal row, about 2x what this quantizer measures
// (gaussian: Q8_0 2.9e-5, Q8_K 4.7e-5, Q6_K 3.2e-4, Q5_1 1.4e-3, Q5_K 1.3e-3, Q5_0 1.9e-3,
// Q4_K 5.1e-3, Q4_1 6.2e-3, Q4_0 7.5e-3, Q3_K 2.3e-2, Q2_K 8.9e-2): a wrong level, scale or
// packing lands far above.
double nmse_bound_gaussian(DType t) {
  switch (t) {
    case DType::Q8_0: case DType::Q8_1: return 6e-5;
    case DType::Q8_K: return 1e-4;
    case DType::Q6_K: return 7e-4;
    case DType::Q5_1: case DType::Q5_K: return 3e-3;
    case DType::Q5_0: return 4e-3;
    case DType::Q4_K: return 1e-2;
    case DType::Q4_1: return 1.3e-2;
    case DType::Q4_0: return 1.5e-2;
    case DType::Q3_K: return 4.5e-2;
    case DType::Q2_K: return 0.15;
    default: return 0;
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------
// fp16
// ---------------------------------------------------------------------------------------

TEST_CASE("fp16: every pattern decodes to its IEEE value and encodes back", "[formats][quants][cpu]") {
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint16_t hb = static_cast<uint16_t>(h);
    const float f = fp16_to_f32(hb);
    const bool neg = (h & 0x8000) != 0;
    if (is_half_nan(hb)) {
      REQUIRE(std::isnan(f));
      const uint16_t back = f32_to_fp16(f);
      REQUIRE(is_half_nan(back));
      REQUIRE((back & 0x8000) == (h & 0x8000));
      if (h & 0x0200) REQUIRE(back == hb);  // quiet NaNs keep their payload exactly
      continue;
    }
    const uint32_t mag = h & 0x7fff;
    const double expect = mag == 0x7c00 ? INFINITY : half_value(mag);
    REQUIRE(static_cast<double>(f) == (neg ? -expect : expect));
    REQUIRE(std::signbit(f) == neg);
    REQUIRE(f32_to_fp16(f) == hb);
  }
}

TEST_CASE("fp16: rounding to nearest even, subnormals, overflow", "[formats][quants][cpu]") {
  // Hand-derived: the fp16 step at 1.0 is 2^-10, so 1 + 2^-11 is a tie between 0x3c00 (even)
  // and 0x3c01; 1 + 3*2^-11 is a tie between 0x3c01 and 0x3c02 (even).
  CHECK(f32_to_fp16(1.0f + 0x1p-11f) == 0x3c00);
  CHECK(f32_to_fp16(1.0f + 3 * 0x1p-11f) == 0x3c02);
  CHECK(f32_to_fp16(std::nextafter(1.0f + 0x1p-11f, 2.0f)) == 0x3c01);  // just above the tie
  CHECK(f32_to_fp16(-(1.0f + 3 * 0x1p-11f)) == 0xbc02);
  CHECK(f32_to_fp16(1.0f) == 0x3c00);
  CHECK(f32_to_fp16(-2.0f) == 0xc000);
  CHECK(f32_to_fp16(0.0f) == 0x0000);
  CHECK(f32_to_fp16(-0.0f) == 0x8000);
  // Largest half 65504 = 0x7bff; 65520 is the tie with 2^16 and goes to infinity (even).
  CHECK(f32_to_fp16(65504.0f) == 0x7bff);
  CHECK(f32_to_fp16(std::nextafter(65520.0f, 0.0f)) == 0x7bff);
  CHECK(f32_to_fp16(65520.0f) == 0x7c00);
  CHECK(f32_to_fp16(1e10f) == 0x7c00);
  CHECK(f32_to_fp16(-1e10f) == 0xfc00);
  CHECK(f32_to_fp16(INFINITY) == 0x7c00);
  CHECK(f32_to_fp16(-INFINITY) == 0xfc00);
  // Subnormals: unit 2^-24. 2^-25 ties between 0 and 1 -> 0; 3*2^-25 ties 1 and 2 -> 2.
  CHECK(f32_to_fp16(0x1p-14f) == 0x0400);  // smallest normal
  CHECK(f32_to_fp16(0x1p-24f) == 0x0001);
  CHECK(f32_to_fp16(0x1p-25f) == 0x0000);
  CHECK(f32_to_fp16(std::nextafter(0x1p-25f, 1.0f)) == 0x0001);
  CHECK(f32_to_fp16(3 * 0x1p-25f) == 0x0002);
  CHECK(f32_to_fp16(5 * 0x1p-25f) == 0x0002);
  CHECK(f32_to_fp16(1023 * 0x1p-24f) == 0x03ff);
  CHECK(f32_to_fp16(2047 * 0x1p-25f) == 0x0400);  // rounds up into the normal range
  CHECK(f32_to_fp16(-0x1p-24f) == 0x8001);
  CHECK(f32_to_fp16(1e-40f) == 0x0000);  // f32 subnormal
  CHECK(f32_to_fp16(-1e-40f) == 0x8000);
  // NaN: quiet, never infinity, sign kept (as vcvtps2ph).
  CHECK(f32_to_fp16(float_of(0x7fc00000)) == 0x7e00);
  CHECK(f32_to_fp16(float_of(0xffc00000)) == 0xfe00);
  CHECK(is_half_nan(f32_to_fp16(float_of(0x7f800001))));  // signalling, payload below bit 13
  CHECK(f32_to_fp16(float_of(0x7f800001)) == 0x7e00);
}

TEST_CASE("fp16: ties and neighbours of every half, random floats, vs the oracle", "[formats][quants][cpu]") {
  // Midpoints of consecutive halves are exact in f32: the tie and one f32 step either side.
  for (uint32_t h = 0; h < 0x7bff; ++h) {
    const float mid = static_cast<float>((half_value(h) + half_value(h + 1)) / 2);
    REQUIRE(static_cast<double>(mid) == (half_value(h) + half_value(h + 1)) / 2);
    const uint16_t even = static_cast<uint16_t>((h & 1) ? h + 1 : h);
    REQUIRE(f32_to_fp16(mid) == even);
    REQUIRE(f32_to_fp16(-mid) == (even | 0x8000));
    REQUIRE(f32_to_fp16(std::nextafter(mid, 0.0f)) == h);
    REQUIRE(f32_to_fp16(std::nextafter(mid, 1e9f)) == h + 1);
  }
  std::mt19937 rng(1234);
  std::uniform_int_distribution<uint32_t> any_bits;
  std::uniform_real_distribution<float> exp_range(-30.0f, 17.0f);
  for (int i = 0; i < 200000; ++i) {
    // Half of the draws uniform in the exponents fp16 covers, half arbitrary bit patterns.
    float f = (i & 1) ? float_of(any_bits(rng)) : std::ldexp(1.0f + (any_bits(rng) >> 9) * 0x1p-23f,
                                                            static_cast<int>(exp_range(rng))) * ((i & 2) ? -1.f : 1.f);
    if (std::isnan(f)) continue;
    REQUIRE(f32_to_fp16(f) == oracle_fp16(f));
  }
#ifdef __FLT16_MANT_DIG__
  // The compiler's own IEEE conversion (F16C or soft-float) as a second opinion.
  for (int i = 0; i < 200000; ++i) {
    const float f = float_of(any_bits(rng));
    if (std::isnan(f)) continue;
    const _Float16 h = static_cast<_Float16>(f);
    uint16_t hb;
    std::memcpy(&hb, &h, 2);
    REQUIRE(f32_to_fp16(f) == hb);
  }
#endif
}

// ---------------------------------------------------------------------------------------
// bf16
// ---------------------------------------------------------------------------------------

TEST_CASE("bf16: every pattern round-trips, ties to even, NaN stays NaN", "[formats][quants][cpu]") {
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint16_t hb = static_cast<uint16_t>(h);
    const float f = bf16_to_f32(hb);
    REQUIRE(bits_of(f) == (h << 16));
    if (is_bf16_nan(hb)) {
      REQUIRE(std::isnan(f));
      REQUIRE(is_bf16_nan(f32_to_bf16(f)));
      continue;
    }
    REQUIRE(f32_to_bf16(f) == hb);
  }
  // Step at 1.0 is 2^-7: 1 + 2^-8 ties 0x3f80 (even) / 0x3f81; 1 + 3*2^-8 ties 0x3f81 / 0x3f82.
  CHECK(f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80);
  CHECK(f32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82);
  CHECK(f32_to_bf16(std::nextafter(1.0f + 0x1p-8f, 2.0f)) == 0x3f81);
  CHECK(f32_to_bf16(-(1.0f + 3 * 0x1p-8f)) == 0xbf82);
  CHECK(f32_to_bf16(float_of(0x7f7fffff)) == 0x7f80);  // FLT_MAX rounds to infinity
  CHECK(f32_to_bf16(float_of(0x7f7f7fff)) == 0x7f7f);
  CHECK(f32_to_bf16(float_of(0x00008000)) == 0x0000);  // subnormal tie -> even 0
  CHECK(f32_to_bf16(float_of(0x00018000)) == 0x0002);  // subnormal tie -> even 2
  // A NaN whose payload lives only in the low 16 bits must not become infinity.
  CHECK(is_bf16_nan(f32_to_bf16(float_of(0x7f800001))));
  CHECK(is_bf16_nan(f32_to_bf16(float_of(0xff800001))));
  CHECK((f32_to_bf16(float_of(0xff800001)) & 0x8000) != 0);
  CHECK(f32_to_bf16(float_of(0x7fc00000)) == 0x7fc0);

  std::mt19937 rng(99);
  std::uniform_int_distribution<uint32_t> any_bits;
  for (int i = 0; i < 300000; ++i) {
    const float f = float_of(any_bits(rng));
    if (std::isnan(f)) continue;
    REQUIRE(f32_to_bf16(f) == oracle_bf16(f));
  }
}

// ---------------------------------------------------------------------------------------
// Block types: hand-built blocks
// ---------------------------------------------------------------------------------------

TEST_CASE("quants: hand-built blocks dequantize to hand-computed values", "[formats][quants][cpu]") {
  // fp16 constants used below: 0x3c00 = 1, 0x3800 = 0.5, 0x3400 = 0.25, 0xbc00 = -1, 0x4000 = 2.
  SECTION("q4_0") {
    BlockQ4_0 b{};
    b.d = 0x3800;
    for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
    float y[32];
    dequantize_row(DType::Q4_0, &b, y, 32);
    for (int j = 0; j < 16; ++j) {
      CHECK(y[j] == (j - 8) * 0.5f);
      CHECK(y[j + 16] == (7 - j) * 0.5f);
    }
  }
  SECTION("q4_1") {
    BlockQ4_1 b{};
    b.d = 0x3400;
    b.m = 0xbc00;
    for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | (3 << 4));
    float y[32];
    dequantize_row(DType::Q4_1, &b, y, 32);
    for (int j = 0; j < 16; ++j) {
      CHECK(y[j] == j * 0.25f - 1.0f);
      CHECK(y[j + 16] == 3 * 0.25f - 1.0f);
    }
  }
  SECTION("q5_0 and q5_1") {
    // Element j: low nibble j % 16, bit 4 set for odd j -> q = j % 16 + 16 * (j odd).
    BlockQ5_0 b0{};
    BlockQ5_1 b1{};
    b0.d = 0x3c00;
    b1.d = 0x3800;
    b1.m = 0x4000;
    uint32_t qh = 0;
    for (int j = 0; j < 32; ++j)
      if (j & 1) qh |= 1u << j;
    for (int k = 0; k < 4; ++k) b0.qh[k] = b1.qh[k] = static_cast<uint8_t>(qh >> (8 * k));
    for (int j = 0; j < 16; ++j) b0.qs[j] = b1.qs[j] = static_cast<uint8_t>(j | (j << 4));
    float y0[32], y1[32];
    dequantize_row(DType::Q5_0, &b0, y0, 32);
    dequantize_row(DType::Q5_1, &b1, y1, 32);
    for (int j = 0; j < 32; ++j) {
      const int q = j % 16 + ((j & 1) ? 16 : 0);
      CHECK(y0[j] == static_cast<float>(q - 16));
      CHECK(y1[j] == q * 0.5f + 2.0f);
    }
  }
  SECTION("q8_0 and q8_1") {
    BlockQ8_0 b{};
    b.d = 0x4000;
    for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>(j - 16);
    float y[32];
    dequantize_row(DType::Q8_0, &b, y, 32);
    for (int j = 0; j < 32; ++j) CHECK(y[j] == 2.0f * (j - 16));
    // Q8_1 also stores s = d * sum(q). For x = 2 * (j - 16): amax 32, d = 32/127, levels
    // round((j - 16) * 127/16); the +-k pairs cancel, leaving -127 (j = 0) -> s = -32 (0xd000).
    std::vector<float> x(32);
    for (int j = 0; j < 32; ++j) x[j] = 2.0f * (j - 16);
    BlockQ8_1 q{};
    quantize_row(DType::Q8_1, x.data(), &q, 32);
    CHECK(q.s == 0xd000);
    CHECK(q.qs[0] == -127);
    CHECK(q.qs[16] == 0);
  }
  SECTION("q2_k") {
    // Sub-block k: scale k % 16, min 15 - k; element i has level i % 4.
    BlockQ2_K b{};
    b.d = 0x3c00;
    b.dmin = 0x3800;
    for (int k = 0; k < 16; ++k) b.scales[k] = static_cast<uint8_t>((k % 16) | ((15 - k) << 4));
    for (int i = 0; i < 256; ++i) {
      const int half = i / 128, slot = (i % 128) / 32, lane = i % 32;
      b.qs[32 * half + lane] = static_cast<uint8_t>(b.qs[32 * half + lane] | ((i % 4) << (2 * slot)));
    }
    std::vector<float> y(256);
    dequantize_row(DType::Q2_K, &b, y.data(), 256);
    for (int i = 0; i < 256; ++i) {
      const int k = i / 16;
      CHECK(y[i] == 1.0f * k * (i % 4) - 0.5f * (15 - k));
    }
  }
  SECTION("q3_k") {
    // 6-bit scales s_k = 4k + 2 (2..62, stored offset by 32 -> effective 4k - 30); element i
    // has level (i * 5) % 8 in -4..3 after subtracting 4.
    BlockQ3_K b{};
    b.d = 0x3800;
    for (int k = 0; k < 16; ++k) {
      const int s = 4 * k + 2;
      if (k < 8)
        b.scales[k] = static_cast<uint8_t>(b.scales[k] | (s & 0xF));
      else
        b.scales[k - 8] = static_cast<uint8_t>(b.scales[k - 8] | ((s & 0xF) << 4));
      b.scales[8 + k % 4] = static_cast<uint8_t>(b.scales[8 + k % 4] | ((s >> 4) << (2 * (k / 4))));
    }
    for (int i = 0; i < 256; ++i) {
      const int q = (i * 5) % 8;
      const int half = i / 128, slot = (i % 128) / 32, lane = i % 32;
      b.qs[32 * half + lane] = static_cast<uint8_t>(b.qs[32 * half + lane] | ((q & 3) << (2 * slot)));
      if (q & 4) b.hmask[lane] = static_cast<uint8_t>(b.hmask[lane] | (1 << (i / 32)));
    }
    std::vector<float> y(256);
    dequantize_row(DType::Q3_K, &b, y.data(), 256);
    for (int i = 0; i < 256; ++i) CHECK(y[i] == 0.5f * (4 * (i / 16) + 2 - 32) * ((i * 5) % 8 - 4));
  }
  SECTION("q4_k and q5_k") {
    // Sub-block k (32 elements): scale 7k + 5 (5..54), min 63 - 8k (63..7): both use all 6
    // bits. Element i has level i % 16 (Q4_K) or (i * 7) % 32 (Q5_K).
    BlockQ4_K b4{};
    BlockQ5_K b5{};
    b4.d = b5.d = 0x3400;
    b4.dmin = b5.dmin = 0x3800;
    uint8_t packed[12] = {};
    for (int k = 0; k < 8; ++k) {
      const int sc = 7 * k + 5, m = 63 - 8 * k;
      if (k < 4) {
        packed[k] = static_cast<uint8_t>(packed[k] | sc);
        packed[k + 4] = static_cast<uint8_t>(packed[k + 4] | m);
      } else {
        packed[k + 4] = static_cast<uint8_t>((sc & 0xF) | ((m & 0xF) << 4));
        packed[k - 4] = static_cast<uint8_t>(packed[k - 4] | ((sc >> 4) << 6));
        packed[k] = static_cast<uint8_t>(packed[k] | ((m >> 4) << 6));
      }
    }
    std::memcpy(b4.scales, packed, 12);
    std::memcpy(b5.scales, packed, 12);
    for (int i = 0; i < 256; ++i) {
      const int chunk = i / 64, hi = (i % 64) / 32, lane = i % 32;
      const int q4 = i % 16, q5 = (i * 7) % 32;
      b4.qs[32 * chunk + lane] = static_cast<uint8_t>(b4.qs[32 * chunk + lane] | (q4 << (4 * hi)));
      b5.qs[32 * chunk + lane] = static_cast<uint8_t>(b5.qs[32 * chunk + lane] | ((q5 & 0xF) << (4 * hi)));
      if (q5 & 16) b5.qh[lane] = static_cast<uint8_t>(b5.qh[lane] | (1 << (2 * chunk + hi)));
    }
    std::vector<float> y4(256), y5(256);
    dequantize_row(DType::Q4_K, &b4, y4.data(), 256);
    dequantize_row(DType::Q5_K, &b5, y5.data(), 256);
    for (int i = 0; i < 256; ++i) {
      const int k = i / 32;
      CHECK(y4[i] == 0.25f * (7 * k + 5) * (i % 16) - 0.5f * (63 - 8 * k));
      CHECK(y5[i] == 0.25f * (7 * k + 5) * ((i * 7) % 32) - 0.5f * (63 - 8 * k));
    }
  }
  SECTION("q6_k") {
    // Scales 8k - 60 (signed), element i has level (i * 11) % 64 - 32.
    BlockQ6_K b{};
    b.d = 0x3400;
    for (int k = 0; k < 16; ++k) b.scales[k] = static_cast<int8_t>(8 * k - 60);
    for (int i = 0; i < 256; ++i) {
      const int q = (i * 11) % 64;
      const int half = i / 128, quarter = (i % 128) / 32, lane = i % 32;
      uint8_t& low = b.ql[64 * half + 32 * (quarter % 2) + lane];
      low = static_cast<uint8_t>(low | ((q & 0xF) << (quarter >= 2 ? 4 : 0)));
      b.qh[32 * half + lane] = static_cast<uint8_t>(b.qh[32 * half + lane] | ((q >> 4) << (2 * quarter)));
    }
    std::vector<float> y(256);
    dequantize_row(DType::Q6_K, &b, y.data(), 256);
    for (int i = 0; i < 256; ++i) CHECK(y[i] == 0.25f * (8 * (i / 16) - 60) * ((i * 11) % 64 - 32));
  }
  SECTION("q8_k") {
    BlockQ8_K b{};
    b.d = 0.125f;
    for (int j = 0; j < 256; ++j) b.qs[j] = static_cast<int8_t>(j - 128);
    std::vector<float> y(256);
    dequantize_row(DType::Q8_K, &b, y.data(), 256);
    for (int j = 0; j < 256; ++j) CHECK(y[j] == 0.125f * (j - 128));
    // bsums are the sums of 16 consecutive levels.
    std::vector<float> x(y);
    BlockQ8_K q{};
    quantize_row(DType::Q8_K, x.data(), &q, 256);
    for (int k = 0; k < 16; ++k) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += q.qs[16 * k + l];
      CHECK(q.bsums[k] == sum);
    }
  }
}

TEST_CASE("quants: exactly representable blocks survive quantization", "[formats][quants][cpu]") {
  // x = 0.5 * (q - 8), q in 0..15: the signed extreme -4 maps to level -8 (Q4_0: d = 0.5) or
  // -16 (Q5_0: d = 0.25), and Q4_1 gets d = 7.5 / 15 = 0.5, m = -4: all exact in fp16, so
  // every value must come back unchanged.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = 0.5f * static_cast<float>(j % 16 - 8);
  for (DType t : {DType::Q4_0, DType::Q5_0, DType::Q4_1}) {
    INFO(dtype_name(t));
    const std::vector<float> y = dequantize(t, quantize(t, x), 32);
    for (int j = 0; j < 32; ++j) CHECK(y[j] == x[j]);
  }
}

// ---------------------------------------------------------------------------------------
// Block types: error bounds over distributions
// ---------------------------------------------------------------------------------------

TEST_CASE("quants: error bounds, zero blocks, outliers, re-quantization", "[formats][quants][cpu]") {
  constexpr size_t kN = 256 * 64;
  std::mt19937 rng(42);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);

  std::vector<float> g(kN), u(kN), pos(kN), outl(kN), mixed(kN);
  for (size_t i = 0; i < kN; ++i) {
    g[i] = gauss(rng);
    u[i] = uni(rng);
    pos[i] = 1.5f + 0.5f * uni(rng);  // all positive: exercises the min/offset paths
    outl[i] = 0.02f * gauss(rng);
    // Blocks of 256 alternate: zeros, weight-sized values (0.02), large values, gaussian.
    // (Much smaller values lose precision by design: d and dmin are fp16 and go subnormal.)
    const size_t blk = i / 256;
    mixed[i] = blk % 4 == 0 ? 0.0f : blk % 4 == 1 ? 0.02f * gauss(rng) : blk % 4 == 2 ? 1e3f * gauss(rng) : gauss(rng);
  }
  for (size_t b = 0; b < kN; b += 32) outl[b + (b / 32) % 32] = (b % 64 ? 1.0f : -1.0f);  // one outlier per 32

  for (DType t : kQuantTypes) {
    INFO(dtype_name(t));
    const double bound = nmse_bound_gaussian(t);
    const double e_g = nmse(g, dequantize(t, quantize(t, g), kN));
    const double e_u = nmse(u, dequantize(t, quantize(t, u), kN));
    const double e_pos = nmse(pos, dequantize(t, quantize(t, pos), kN));
    const double e_mixed = nmse(mixed, dequantize(t, quantize(t, mixed), kN));
    INFO("nmse gaussian " << e_g << " uniform " << e_u << " positive " << e_pos << " mixed " << e_mixed);
    CHECK(e_g < bound);
    CHECK(e_u < bound);
    CHECK(e_pos < bound);  // a 0.5-wide band at 1.5: relative error is smaller than gaussian
    CHECK(e_mixed < bound);

    // The outliers themselves must come back accurately: each sets its block's scale.
    const std::vector<float> yo = dequantize(t, quantize(t, outl), kN);
    for (size_t b = 0; b < kN; b += 32) {
      const size_t i = b + (b / 32) % 32;
      CHECK(std::fabs(yo[i] - outl[i]) < 0.15f);
    }

    // All-zero input -> exactly zero output; the weight-sized blocks of `mixed` get their own
    // scale despite the large neighbours.
    std::vector<float> zeros(512, 0.0f);
    for (float v : dequantize(t, quantize(t, zeros), 512)) REQUIRE(v == 0.0f);
    const std::vector<float> ym = dequantize(t, quantize(t, mixed), kN);
    double e_small = 0, s_small = 0;
    for (size_t i = 256; i < kN; i += 1024)
      for (size_t j = i; j < i + 256; ++j) {
        e_small += (mixed[j] - ym[j]) * static_cast<double>(mixed[j] - ym[j]);
        s_small += mixed[j] * static_cast<double>(mixed[j]);
      }
    INFO("small-block nmse " << e_small / s_small);
    CHECK(e_small / s_small < bound);

    // Quantizing the dequantized values again: the grid is (nearly) reproduced, so the
    // second round adds far less error than the first (measured: 0 for the 32-blocks,
    // Q4_K and Q6_K; 2e-3, 6e-2, 2e-4 of the first round's error for Q2_K, Q3_K, Q5_K).
    const std::vector<float> y1 = dequantize(t, quantize(t, g), kN);
    const std::vector<uint8_t> q2 = quantize(t, y1);
    const std::vector<float> y2 = dequantize(t, q2, kN);
    const double e_re = nmse(y1, y2);
    INFO("re-quantization nmse " << e_re);
    CHECK(e_re < 0.1 * e_g);
  }
}

TEST_CASE("quants: Q8_0 / Q4_0 / Q5_0 / Q4_1 re-quantization is a fixed point", "[formats][quants][cpu]") {
  // For the plain block types the dequantized values lie on the grid of their own block, so
  // quantizing them again gives the same bytes (measured: every block; float rounding of
  // the rescaled extreme could in principle move one, hence not exactly 1).
  constexpr size_t kN = 32 * 4096;
  std::mt19937 rng(7);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::vector<float> x(kN);
  for (float& v : x) v = gauss(rng);
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q5_0, DType::Q4_1, DType::Q5_1}) {
    const std::vector<uint8_t> q1 = quantize(t, x);
    const std::vector<uint8_t> q2 = quantize(t, dequantize(t, q1, kN));
    const size_t bb = dtype_block_bytes(t);
    size_t same = 0;
    for (size_t b = 0; b < q1.size() / bb; ++b) same += std::memcmp(&q1[b * bb], &q2[b * bb], bb) == 0;
    const double frac = static_cast<double>(same) / static_cast<double>(q1.size() / bb);
    INFO(dtype_name(t) << " identical blocks after re-quantization: " << frac);
    CHECK(frac > 0.999);
  }
}

TEST_CASE("quants: types and sizes are validated", "[formats][quants][cpu]") {
  std::vector<float> x(512, 1.0f);
  std::vector<uint8_t> buf(4096);
  CHECK_THROWS_AS(quantize_row(DType::Q4_0, x.data(), buf.data(), 33), Error);
  CHECK_THROWS_AS(quantize_row(DType::Q4_K, x.data(), buf.data(), 128), Error);
  CHECK_THROWS_AS(dequantize_row(DType::Q6_K, buf.data(), x.data(), 100), Error);
  CHECK_THROWS_AS(quantize_row(DType::I32, x.data(), buf.data(), 32), Error);
  CHECK_THROWS_AS(dequantize_row(DType::F64, buf.data(), x.data(), 32), Error);
  CHECK_THROWS_AS(quantize_rows(DType::Q8_0, x.data(), buf.data(), 2, 48), Error);
  CHECK(!dtype_can_quantize(DType::I8));
  CHECK(!dtype_can_dequantize(DType::I64));
  for (DType t : kQuantTypes) CHECK((dtype_can_quantize(t) && dtype_can_dequantize(t)));
  CHECK(quantize_rows(DType::Q4_K, x.data(), buf.data(), 2, 256) == 2 * 144);
  CHECK(quantize_rows(DType::BF16, x.data(), buf.data(), 4, 128) == 4 * 128 * 2);
  // Rows are independent: row 1 of a 2-row call equals a 1-row call on its data.
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i));
  std::vector<uint8_t> one(144);
  quantize_row(DType::Q4_K, x.data() + 256, one.data(), 256);
  quantize_rows(DType::Q4_K, x.data(), buf.data(), 2, 256);
  CHECK(std::memcmp(one.data(), buf.data() + 144, 144) == 0);
  // F16 / BF16 / F32 rows go through the scalar conversions.
  std::vector<float> back(512);
  for (DType t : {DType::F32, DType::F16, DType::BF16}) {
    quantize_row(t, x.data(), buf.data(), 512);
    dequantize_row(t, buf.data(), back.data(), 512);
    for (size_t i = 0; i < 512; ++i) {
      const float expect = t == DType::F32 ? x[i]
                           : t == DType::F16 ? fp16_to_f32(f32_to_fp16(x[i]))
                                             : bf16_to_f32(f32_to_bf16(x[i]));
      REQUIRE(back[i] == expect);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Byte identity with ggml's output
// ---------------------------------------------------------------------------------------

TEST_CASE("quants: byte-identical to the peer's quantized tiny-llama files", "[formats][quants][cpu][model]") {
  const fs::path models = fs::path(XENT_SHARED_DIR) / "models";
  const fs::path f32_path = models / "tiny-llama-spm-f32.gguf";
  REQUIRE(fs::exists(f32_path));
  auto f32 = gguf::Reader::open(f32_path.string());

  // Per type over all files: identical blocks / blocks.
  std::map<std::string, std::pair<size_t, size_t>> totals;
  for (const char* variant : {"q8_0", "q4_0", "q5_0", "q6_k", "q2_k", "q4_k_m", "q5_k_m"}) {
    const fs::path path = models / (std::string("tiny-llama-spm-") + variant + ".gguf");
    REQUIRE(fs::exists(path));
    auto peer = gguf::Reader::open(path.string());
    size_t n_quantized = 0;
    for (const gguf::TensorInfo& t : peer->tensors()) {
      if (!dtype_info(t.type).quantized) continue;
      ++n_quantized;
      const gguf::TensorInfo* src = f32->find_tensor(t.name);
      INFO(variant << " " << t.name << " " << dtype_name(t.type));
      REQUIRE(src);
      REQUIRE(src->type == DType::F32);
      REQUIRE(src->n_elements() == t.n_elements());
      const int64_t n = t.n_elements(), rows = n / t.ne[0];
      std::vector<uint8_t> ours(t.size_bytes);
      REQUIRE(quantize_rows(t.type, reinterpret_cast<const float*>(src->data), ours.data(), rows, t.ne[0]) ==
              t.size_bytes);
      const size_t bb = dtype_block_bytes(t.type), nb = t.size_bytes / bb;
      size_t same = 0;
      for (size_t b = 0; b < nb; ++b) same += std::memcmp(&ours[b * bb], t.data + b * bb, bb) == 0;
      auto& tot = totals[std::string(variant) + " " + dtype_name(t.type)];
      tot.first += same;
      tot.second += nb;

      // Dequantizing the peer's blocks must reproduce the weights within the type's error.
      std::vector<float> w(reinterpret_cast<const float*>(src->data), reinterpret_cast<const float*>(src->data) + n);
      std::vector<float> back(static_cast<size_t>(n));
      dequantize_row(t.type, t.data, back.data(), n);
      CHECK(nmse(w, back) < nmse_bound_gaussian(t.type));
    }
    CHECK(n_quantized > 0);
  }
  std::string report;
  for (const auto& [key, v] : totals) {
    const double pct = 100.0 * static_cast<double>(v.first) / static_cast<double>(v.second);
    report += key + ": " + std::to_string(v.first) + "/" + std::to_string(v.second) + " (" + std::to_string(pct) + "%)\n";
  }
  WARN("identical blocks per file and type:\n" << report);
  for (const auto& [key, v] : totals) {
    INFO(key);
    CHECK(v.first == v.second);
  }
  // Every block type the mixes use was seen.
  for (const char* key : {"q8_0 q8_0", "q4_0 q4_0", "q5_0 q5_0", "q6_k q6_k", "q2_k q2_k", "q2_k q3_k",
                          "q4_k_m q4_k", "q5_k_m q5_k"})
    CHECK(totals.count(key) == 1);
}
