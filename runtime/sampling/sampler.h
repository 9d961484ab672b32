// Choosing the next token from logits: repetition penalties, top-k, top-p, min-p,
// temperature, then a seeded draw (reproducible) or greedy argmax; optionally only among
// the tokens a grammar allows (runtime/sampling/grammar.h).
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "runtime/sampling/grammar.h"

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
  // Picks a token from logits[n_vocab]. Does not record it: call accept(). With a grammar,
  // returns -1 when no token of the vocabulary can continue it (grammar_error() says why).
  int32_t sample(const float* logits, int32_t n_vocab);
  // Records the token; with a grammar, also advances it (a token the grammar rejects
  // leaves it dead: the next sample() returns -1).
  void accept(int32_t token);
  void reset();  // forgets history and restarts the grammar; the random stream restarts from the seed

  // Constrains sampling to grammar (null: no constraint) over vocab, the model's tokens.
  void set_grammar(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const GrammarVocab> vocab);
  const GrammarMatcher* grammar() const { return matcher_.get(); }
  const std::string& grammar_error() const { return grammar_error_; }
  // How many sample() calls had to mask the vocabulary because kMaxTries draws broke the
  // grammar (the rest cost a check per draw).
  uint64_t n_grammar_masks() const { return n_masks_; }
  const SamplerParams& params() const { return params_; }

  static int32_t argmax(const float* logits, int32_t n_vocab);

 private:
  struct Candidate {
    int32_t id;
    float logit;
  };
  static constexpr size_t kMaxTries = 32;  // draws the grammar may refuse before a mask
  void fill(const float* logits, int32_t n_vocab);
  void prepare();
  int32_t draw();

  SamplerParams params_;
  std::mt19937_64 rng_;
  std::shared_ptr<const GrammarVocab> vocab_;
  std::unique_ptr<GrammarMatcher> matcher_;
  std::vector<uint8_t> allowed_;
  std::string grammar_error_;
  uint64_t n_masks_ = 0;
  std::deque<int32_t> history_;
  std::vector<Candidate> cand_;
  size_t n_kept_ = 0;         // cand_[0, n_kept_) may be drawn
  std::vector<double> w_, cum_;  // their weights and cumulative weights
};

}  // namespace xent
