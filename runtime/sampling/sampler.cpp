#include "runtime/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace xent {

Sampler::Sampler(const SamplerParams& params) : params_(params), rng_(params.seed) {}

void Sampler::reset() {
  history_.clear();
  rng_.seed(params_.seed);
  if (matcher_) matcher_->reset();
  grammar_error_.clear();
}

void Sampler::set_grammar(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const GrammarVocab> vocab) {
  if (!grammar || !vocab) {
    matcher_.reset();
    vocab_.reset();
  } else {
    matcher_ = std::make_unique<GrammarMatcher>(std::move(grammar));
    vocab_ = std::move(vocab);
  }
  grammar_error_.clear();
}

void Sampler::accept(int32_t token) {
  if (matcher_ && token >= 0 && token < vocab_->n_vocab() && !vocab_->is_end_of_generation(token) &&
      !matcher_->accept(vocab_->piece(token)))
    grammar_error_ = "grammar: token " + std::to_string(token) + " was accepted although the grammar rejects it";
  history_.push_back(token);
  while (static_cast<int32_t>(history_.size()) > std::max(0, params_.repeat_last_n))
    history_.pop_front();
}

int32_t Sampler::argmax(const float* logits, int32_t n_vocab) {
  int32_t best = 0;
  for (int32_t i = 1; i < n_vocab; ++i)
    if (logits[i] > logits[best]) best = i;
  return best;
}

int32_t Sampler::sample(const float* logits, int32_t n_vocab) {
  cand_.resize(n_vocab);
  for (int32_t i = 0; i < n_vocab; ++i) cand_[i] = {i, logits[i]};

  // Penalties act on raw logits, before any truncation.
  const bool penalize = params_.repeat_penalty != 1.0f || params_.frequency_penalty != 0.0f ||
                        params_.presence_penalty != 0.0f;
  if (penalize && !history_.empty()) {
    std::unordered_map<int32_t, int> count;
    for (int32_t t : history_) ++count[t];
    for (const auto& [id, n] : count) {
      if (id < 0 || id >= n_vocab) continue;
      float& l = cand_[id].logit;
      if (params_.repeat_penalty != 1.0f)
        l = l > 0 ? l / params_.repeat_penalty : l * params_.repeat_penalty;
      l -= static_cast<float>(n) * params_.frequency_penalty + params_.presence_penalty;
    }
  }

  if (!matcher_) return pick();
  if (matcher_->is_dead()) {
    if (grammar_error_.empty()) grammar_error_ = "grammar: the output so far cannot be continued";
    return -1;
  }
  if (n_vocab != vocab_->n_vocab()) {
    grammar_error_ = "grammar: the sampler's vocabulary has " + std::to_string(vocab_->n_vocab()) +
                     " tokens, the logits " + std::to_string(n_vocab);
    return -1;
  }
  // The common case costs one check: draw as usual, keep the token if the grammar takes
  // it. Otherwise draw again among the allowed tokens only; for a greedy sampler that is
  // the allowed argmax, and for a random one the two draws together have the masked
  // distribution (before truncation).
  const std::vector<Candidate> penalized = cand_;
  const int32_t first = pick();
  if (matcher_->allows(*vocab_, first)) return first;
  ++n_masks_;
  const int32_t n_allowed = matcher_->allowed_tokens(*vocab_, allowed_);
  if (n_allowed == 0) {
    grammar_error_ = matcher_->is_accepting()
                         ? "grammar: the output is complete but the model has no end-of-generation token"
                         : "grammar: no token of the vocabulary can continue the output";
    return -1;
  }
  cand_.clear();
  for (const Candidate& c : penalized)
    if (allowed_[static_cast<size_t>(c.id)]) cand_.push_back(c);
  return pick();
}

int32_t Sampler::pick() {
  if (params_.temperature <= 0.0f) {
    auto best = std::max_element(cand_.begin(), cand_.end(),
                                 [](const Candidate& a, const Candidate& b) { return a.logit < b.logit; });
    return best->id;
  }

  auto by_logit = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  size_t n = cand_.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < n) {
    std::partial_sort(cand_.begin(), cand_.begin() + params_.top_k, cand_.end(), by_logit);
    n = static_cast<size_t>(params_.top_k);
  } else {
    std::sort(cand_.begin(), cand_.end(), by_logit);
  }

  // Probabilities at temperature; top-p and min-p cut the sorted list.
  std::vector<double> p(n);
  const double max_l = cand_[0].logit;
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    p[i] = std::exp((cand_[i].logit - max_l) / params_.temperature);
    sum += p[i];
  }
  for (double& v : p) v /= sum;
  if (params_.min_p > 0.0f) {
    const double floor = p[0] * params_.min_p;
    size_t keep = 1;
    while (keep < n && p[keep] >= floor) ++keep;
    n = keep;
  }
  if (params_.top_p < 1.0f) {
    double cum = 0;
    size_t keep = 0;
    while (keep < n) {
      cum += p[keep++];
      if (cum >= params_.top_p) break;
    }
    n = std::max<size_t>(keep, 1);
  }
  double total = 0;
  for (size_t i = 0; i < n; ++i) total += p[i];
  std::uniform_real_distribution<double> uni(0.0, total);
  double r = uni(rng_);
  for (size_t i = 0; i < n; ++i) {
    r -= p[i];
    if (r <= 0) return cand_[i].id;
  }
  return cand_[n - 1].id;
}

}  // namespace xent
