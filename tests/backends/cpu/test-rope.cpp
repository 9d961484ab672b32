// Op::Rope's scaled forms on the CPU (the only backend that has them): Llama 3 frequency
// factors and YaRN, checked against what they must reduce to, computed here in double
// precision: factors f on every pair equal linear scaling by 1/f; YaRN rotates the pairs
// below its low correction dimension by the unscaled angle and those above its high one
// by the interpolated angle, both with cos/sin multiplied by 1 + 0.1 ln(1 / freq_scale).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backends/cpu/cpu-backend.h"
#include "runtime/graph/graph.h"
#include "runtime/graph/scheduler.h"

using namespace xent;

namespace {

constexpr int64_t kHd = 32, kHeads = 3;
const std::vector<int32_t> kPos = {0, 1, 5, 17, 63, 64, 150, 1000};

Tensor* leaf(Graph& g, DType type, int64_t ne0, int64_t ne1, int64_t ne2, const void* data) {
  Tensor* t = g.input(type, ne0, ne1 * ne2, "leaf");
  t->ne[1] = ne1;
  t->ne[2] = ne2;
  t->set_contiguous_strides();
  t->data = const_cast<void*>(data);
  return t;
}

std::vector<float> run_rope(const std::vector<float>& x, int32_t mode, float base, float scale,
                            const Graph::RopeExtra& extra, const std::vector<float>* factors, bool reference) {
  cpu::CpuBackend cpu(2, reference);
  Graph g;
  const int64_t n_tok = static_cast<int64_t>(kPos.size());
  Graph::RopeExtra e = extra;
  if (factors) e.freq_factors = leaf(g, DType::F32, kHd / 2, 1, 1, factors->data());
  Tensor* out = g.rope(leaf(g, DType::F32, kHd, kHeads, n_tok, x.data()), leaf(g, DType::I32, n_tok, 1, 1, kPos.data()),
                       kHd, mode, base, scale, e);
  g.set_output(out);
  Scheduler sched({&cpu}, [](size_t, int) { return true; });
  sched.run(g);
  std::vector<float> r(static_cast<size_t>(out->n_elements()));
  std::memcpy(r.data(), out->data, r.size() * sizeof(float));
  return r;
}

// The rotation of pair i of every row by p * base^(-2i/n) * angle_scale, times m.
void expect_pair(const std::vector<float>& got, const std::vector<float>& x, int32_t mode, int i, double base,
                 double angle_scale, double m) {
  const int64_t n_tok = static_cast<int64_t>(kPos.size());
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int64_t h = 0; h < kHeads; ++h) {
      const size_t row = static_cast<size_t>((t * kHeads + h) * kHd);
      const size_t a = row + (mode == kRopeModeNeox ? i : 2 * i), b = row + (mode == kRopeModeNeox ? i + kHd / 2 : 2 * i + 1);
      const double theta = kPos[t] * std::pow(base, -2.0 * i / kHd) * angle_scale;
      const double want_a = m * (x[a] * std::cos(theta) - x[b] * std::sin(theta));
      const double want_b = m * (x[a] * std::sin(theta) + x[b] * std::cos(theta));
      INFO("pair " << i << " position " << kPos[t]);
      // float angles at position 1000 carry ~1e-4 of rounding
      CHECK(std::fabs(got[a] - want_a) < 2e-3);
      CHECK(std::fabs(got[b] - want_b) < 2e-3);
    }
  }
}

}  // namespace

TEST_CASE("rope: Llama 3 frequency factors divide each pair's frequency", "[cpu][rope]") {
  std::mt19937 rng(3);
  std::normal_distribution<float> d;
  std::vector<float> x(static_cast<size_t>(kHd * kHeads * kPos.size()));
  for (float& v : x) v = d(rng);
  for (bool reference : {true, false}) {
    for (int32_t mode : {kRopeModeNormal, kRopeModeNeox}) {
      // Uniform factors are linear scaling.
      const std::vector<float> fours(kHd / 2, 4.0f);
      const std::vector<float> a = run_rope(x, mode, 10000.0f, 1.0f, {}, &fours, reference);
      const std::vector<float> b = run_rope(x, mode, 10000.0f, 0.25f, {}, nullptr, reference);
      for (size_t i = 0; i < a.size(); ++i) REQUIRE(std::fabs(a[i] - b[i]) < 1e-4);
      // Per-pair factors: each pair by its own.
      std::vector<float> f(kHd / 2);
      for (int i = 0; i < kHd / 2; ++i) f[i] = 1.0f + static_cast<float>(i) * 0.7f;
      const std::vector<float> c = run_rope(x, mode, 500000.0f, 1.0f, {}, &f, reference);
      for (int i = 0; i < kHd / 2; ++i) expect_pair(c, x, mode, i, 500000.0, 1.0 / f[i], 1.0);
    }
  }
}

TEST_CASE("rope: YaRN extrapolates high frequencies, interpolates low ones, scales magnitude", "[cpu][rope]") {
  std::mt19937 rng(4);
  std::normal_distribution<float> d;
  std::vector<float> x(static_cast<size_t>(kHd * kHeads * kPos.size()));
  for (float& v : x) v = d(rng);
  const double base = 10000.0, scale = 0.25;
  const int n_ctx_orig = 64;
  // Correction dimensions from the YaRN paper: the pair whose wavelength turns beta times
  // in the original context. beta_fast 32 gives < 0 here (-> 0), beta_slow 1 gives 4.03 (-> 5).
  const auto corr = [&](double beta) { return kHd * std::log(n_ctx_orig / (beta * 2 * M_PI)) / (2 * std::log(base)); };
  const int lo = static_cast<int>(std::max(0.0, std::floor(corr(32)))), hi = static_cast<int>(std::ceil(corr(1)));
  REQUIRE(lo == 0);
  REQUIRE(hi == 5);
  const double mscale = 1.0 + 0.1 * std::log(1.0 / scale);
  Graph::RopeExtra yarn;
  yarn.ext_factor = 1.0f;
  yarn.n_ctx_orig = n_ctx_orig;
  for (bool reference : {true, false}) {
    for (int32_t mode : {kRopeModeNormal, kRopeModeNeox}) {
      const std::vector<float> y = run_rope(x, mode, static_cast<float>(base), static_cast<float>(scale), yarn, nullptr,
                                            reference);
      expect_pair(y, x, mode, lo, base, 1.0, mscale);
      for (int i = hi; i < kHd / 2; ++i) expect_pair(y, x, mode, i, base, scale, mscale);
      // attn_factor multiplies on top.
      Graph::RopeExtra twice = yarn;
      twice.attn_factor = 2.0f;
      const std::vector<float> z = run_rope(x, mode, static_cast<float>(base), static_cast<float>(scale), twice,
                                            nullptr, reference);
      for (size_t i = 0; i < z.size(); ++i) REQUIRE(std::fabs(z[i] - 2.0f * y[i]) < 1e-4);
    }
  }
}
