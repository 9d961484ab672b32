// Choosing the next token from logits: repetition penalties, top-k, top-p, min-p,
// temperature, then a seeded draw (reproducible) or greedy argmax.
#pragma once
#include <cstdint>
#include <deque>
#include <random>
#include <vector>

namespace xent {

struct SamplerParams {
  float temperature = 0.8f;  // <= 0: greedy
  int32_t top_k = 40;        // <= 0: off
  float top_p = 0.95f;       // >= 1: off
  float min_p = 0.05f;       // <= 0: off
  float repeat_penalty = 1.0f;   // 1: off; divides positive logits, multiplies negative
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  int32_t repeat_last_n = 64;    // how many recent tokens the penalties look at
  uint64_t seed = 0xC0FFEE;
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& params);
  // Picks a token from logits[n_vocab]. Does not record it: call accept().
  int32_t sample(const float* logits, int32_t n_vocab);
  void accept(int32_t token);
  void reset();  // forgets history; the random stream restarts from the seed
  const SamplerParams& params() const { return params_; }

  static int32_t argmax(const float* logits, int32_t n_vocab);

 private:
  struct Candidate {
    int32_t id;
    float logit;
  };
  SamplerParams params_;
  std::mt19937_64 rng_;
  std::deque<int32_t> history_;
  std::vector<Candidate> cand_;
};

}  // namespace xent
