// The element-wise kernels (softmax and its exponentials, SiLU/SwiGLU, GELU, sum of squares,
// f16 rounding): every table against the formulas in double precision (f16 rounding
// against formats/quants' converter, bit for bit) over the whole range the ops see,
// including -inf, huge and tiny inputs and lengths with SIMD tails.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/quant-kernels.h"
#include "backends/cpu/vec-kernels.h"
#include "formats/quants.h"

using namespace xent::cpu;

namespace {

// Inputs spread over [-lim, lim] plus the special values.
std::vector<float> inputs(int64_t n, float lim, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-lim, lim);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = u(rng);
  const float specials[] = {0.0f, -0.0f, 1e-30f, -1e-30f, lim, -lim, 3.0f, -3.0f};
  for (size_t i = 0; i < x.size() && i < std::size(specials); ++i) x[i * 3 % x.size()] = specials[i];
  return x;
}

double silu_d(double g) { return g / (1.0 + std::exp(-g)); }
double gelu_d(double x) { return 0.5 * x * (1.0 + std::tanh(0.79788456080286535588 * x * (1.0 + 0.044715 * x * x))); }

}  // namespace

TEST_CASE("element-wise kernels: every table against the formulas", "[cpu][kernels]") {
  INFO("SIMD level " << simd_level());
  std::mt19937 rng(5);
  for (const VecKernels* k : {vec_kernels_ref(), vec_kernels_best()}) {
    INFO((k == vec_kernels_ref() ? "reference" : "best"));
    for (int64_t n : {1, 3, 8, 13, 64, 1000}) {
      INFO("n " << n);
      // Softmax: inputs at or below the shift (as attention passes them), some -inf (masked).
      std::vector<float> x = inputs(n, 100.0f, rng);
      for (size_t i = 0; i < x.size(); i += 5) x[i] = -std::numeric_limits<float>::infinity();
      const float shift = 100.0f;
      std::vector<double> want(x.size());
      double want_sum = 0;
      // The kernels subtract in float (as attention does); the exponential is what is checked.
      for (size_t i = 0; i < x.size(); ++i) want_sum += want[i] = std::exp(static_cast<double>(x[i] - shift));
      std::vector<float> e = x;
      const double sum = k->exp_sum(e.data(), n, shift);
      for (size_t i = 0; i < x.size(); ++i) {
        INFO("exp(" << x[i] << " - " << shift << ")");
        // Relative 1e-6; below e^-87 (1.65e-38) the SIMD exp flushes to 0.
        CHECK(std::abs(e[i] - want[i]) <= 1e-6 * want[i] + 1.7e-38);
      }
      CHECK(std::abs(sum - want_sum) <= 1e-6 * want_sum + 1e-37);

      const std::vector<float> g = inputs(n, 40.0f, rng), u = inputs(n, 4.0f, rng);
      std::vector<float> y(x.size()), y1(x.size());
      k->swiglu(n, y.data(), g.data(), u.data());
      k->swiglu(n, y1.data(), g.data(), nullptr);
      for (size_t i = 0; i < x.size(); ++i) {
        INFO("silu(" << g[i] << ") * " << u[i]);
        const double s = silu_d(g[i]);
        CHECK(std::abs(y1[i] - s) <= 1e-6 * std::abs(s) + 1e-37);
        CHECK(std::abs(y[i] - s * u[i]) <= 1e-6 * std::abs(s * u[i]) + 1e-37);
      }

      const std::vector<float> gx = inputs(n, 12.0f, rng);
      k->gelu(n, y.data(), gx.data());
      for (size_t i = 0; i < x.size(); ++i) {
        INFO("gelu(" << gx[i] << ")");
        const double want_g = gelu_d(gx[i]);
        // 1 - 2/(e^2z + 1) and x / (1 + e^-2z) lose a few ulp of x where GELU(x) nears 0.
        CHECK(std::abs(y[i] - want_g) <= 1e-6 * std::abs(want_g) + 2e-7 * std::abs(gx[i]) + 1e-37);
      }

      // Softmax of scaled scores, some masked (-inf), as attention calls it.
      std::vector<float> sc = inputs(n, 30.0f, rng);
      for (size_t i = 1; i < sc.size(); i += 4) sc[i] = -std::numeric_limits<float>::infinity();
      const float scale = 0.125f;
      double s_max = -INFINITY, s_sum = 0;
      for (float v : sc) s_max = std::max(s_max, double(v) * scale);
      for (float v : sc) s_sum += std::exp(double(v) * scale - s_max);
      std::vector<float> p = sc;
      k->softmax(p.data(), n, scale);
      double total = 0;
      for (size_t i = 0; i < sc.size(); ++i) {
        INFO("softmax entry " << i << " of score " << sc[i]);
        const double want_p = std::exp(double(sc[i]) * scale - s_max) / s_sum;
        CHECK(std::abs(p[i] - want_p) <= 2e-6 * want_p + 1e-37);
        total += p[i];
      }
      CHECK(std::abs(total - 1.0) < 1e-5);

      // Sum of squares, against double arithmetic.
      const std::vector<float> q = inputs(n, 50.0f, rng);
      double want_sq = 0;
      for (float v : q) want_sq += double(v) * v;
      CHECK(std::abs(k->sum_sq(q.data(), n) - want_sq) <= 1e-12 * want_sq);

      // f16 rounding: the same bits as the converter every file reader uses, including
      // ties, subnormals, overflow to infinity and infinities.
      std::vector<float> h = inputs(n, 70000.0f, rng);
      const float hs[] = {1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, 65504.0f, 65520.0f, 1e-6f, -3e-8f,
                          std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
      for (size_t i = 0; i < h.size() && i < std::size(hs); ++i) h[(i * 7 + 1) % h.size()] = hs[i];
      for (size_t i = 0; i < h.size(); i += 3) h[i] *= 1e-4f;
      std::vector<uint16_t> bits(h.size());
      k->to_f16(n, bits.data(), h.data());
      for (size_t i = 0; i < h.size(); ++i) {
        INFO("to_f16(" << h[i] << ")");
        CHECK(bits[i] == xent::f32_to_fp16(h[i]));
      }
    }
  }
}

TEST_CASE("element-wise kernels: a SIMD table is used where the CPU has one", "[cpu][kernels]") {
  const std::string level = simd_level();
  if (level == "scalar") CHECK(vec_kernels_best() == vec_kernels_ref());
  else CHECK(vec_kernels_best() != vec_kernels_ref());
}
