// Sampling: greedy is argmax, the seed makes draws reproducible, truncations keep only
// what they should, and the penalties move the logits they should.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <vector>

#include "runtime/sampling/sampler.h"

using namespace xent;

TEST_CASE("greedy picks the argmax", "[runtime][sampler]") {
  SamplerParams p;
  p.temperature = 0;
  Sampler s(p);
  const std::vector<float> logits = {0.1f, 3.0f, -1.0f, 2.9f};
  CHECK(s.sample(logits.data(), 4) == 1);
}

TEST_CASE("same seed, same draws; another seed, other draws", "[runtime][sampler]") {
  std::vector<float> logits(100);
  for (int i = 0; i < 100; ++i) logits[i] = std::sin(i * 0.7f);
  SamplerParams p;
  p.temperature = 1.5f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  auto draws = [&](uint64_t seed) {
    p.seed = seed;
    Sampler s(p);
    std::vector<int32_t> out;
    for (int i = 0; i < 50; ++i) out.push_back(s.sample(logits.data(), 100));
    return out;
  };
  CHECK(draws(42) == draws(42));
  CHECK(draws(42) != draws(43));
}

TEST_CASE("top-k and min-p keep only the allowed tokens", "[runtime][sampler]") {
  std::vector<float> logits = {5.0f, 4.9f, 4.8f, 0.0f, -3.0f};
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 2;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  Sampler s(p);
  std::map<int32_t, int> seen;
  for (int i = 0; i < 2000; ++i) ++seen[s.sample(logits.data(), 5)];
  CHECK(seen.size() == 2);
  CHECK(seen.count(0) == 1);
  CHECK(seen.count(1) == 1);

  p.top_k = 0;
  p.min_p = 0.5f;  // tokens with p < 0.5 * p_max: only ids 0..2 survive (e^-0.2 > 0.5 > e^-5)
  Sampler m(p);
  seen.clear();
  for (int i = 0; i < 2000; ++i) ++seen[m.sample(logits.data(), 5)];
  CHECK(seen.size() == 3);
  CHECK(seen.count(3) == 0);
}

TEST_CASE("top-p keeps the smallest set reaching p", "[runtime][sampler]") {
  // Probabilities at T=1: softmax of log(0.5), log(0.3), log(0.2) = 0.5, 0.3, 0.2.
  std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.min_p = 0.0f;
  p.top_p = 0.75f;  // 0.5 + 0.3 reaches it: id 2 is cut
  Sampler s(p);
  std::map<int32_t, int> seen;
  for (int i = 0; i < 3000; ++i) ++seen[s.sample(logits.data(), 3)];
  CHECK(seen.count(2) == 0);
  CHECK(seen[0] > seen[1]);
}

TEST_CASE("repetition penalty lowers recent tokens", "[runtime][sampler]") {
  std::vector<float> logits = {2.0f, 1.9f};
  SamplerParams p;
  p.temperature = 0;
  p.repeat_penalty = 1.5f;  // 2.0 / 1.5 = 1.33 < 1.9
  Sampler s(p);
  CHECK(s.sample(logits.data(), 2) == 0);
  s.accept(0);
  CHECK(s.sample(logits.data(), 2) == 1);
  s.reset();
  CHECK(s.sample(logits.data(), 2) == 0);
}
