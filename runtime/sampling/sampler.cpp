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

// Fills cand_ with the logits after the repetition penalties, which act on raw logits
// before any truncation.
void Sampler::fill(const float* logits, int32_t n_vocab) {
  cand_.resize(static_cast<size_t>(n_vocab));
  for (int32_t i = 0; i < n_vocab; ++i) cand_[static_cast<size_t>(i)] = {i, logits[i]};
  const bool penalize = params_.repeat_penalty != 1.0f || params_.frequency_penalty != 0.0f ||
                        params_.presence_penalty != 0.0f;
  if (!penalize || history_.empty()) return;
  std::unordered_map<int32_t, int> count;
  for (int32_t t : history_) ++count[t];
  for (const auto& [id, n] : count) {
    if (id < 0 || id >= n_vocab) continue;
    float& l = cand_[static_cast<size_t>(id)].logit;
    if (params_.repeat_penalty != 1.0f) l = l > 0 ? l / params_.repeat_penalty : l * params_.repeat_penalty;
    l -= static_cast<float>(n) * params_.frequency_penalty + params_.presence_penalty;
  }
}

int32_t Sampler::sample(const float* logits, int32_t n_vocab) {
  fill(logits, n_vocab);
  if (!matcher_) {
    prepare();
    return draw();
  }
  if (matcher_->is_dead()) {
    if (grammar_error_.empty()) grammar_error_ = "grammar: the output so far cannot be continued";
    return -1;
  }
  if (n_vocab != vocab_->n_vocab()) {
    grammar_error_ = "grammar: the sampler's vocabulary has " + std::to_string(vocab_->n_vocab()) +
                     " tokens, the logits " + std::to_string(n_vocab);
    return -1;
  }
  // The common case costs a few checks: draw as usual and keep the token if the grammar
  // takes it, else draw again (for a greedy sampler: the next best). Drawing until the
  // grammar takes one gives the masked distribution exactly (before truncation), and
  // masking after kMaxTries refusals keeps that; the mask walks the vocabulary's trie, which
  // costs milliseconds where the grammar allows most tokens (inside a string), so it is
  // kept for the states where few are allowed.
  prepare();
  const bool greedy = params_.temperature <= 0.0f;
  const size_t tries = greedy ? std::min(kMaxTries, n_kept_) : kMaxTries;
  for (size_t i = 0; i < tries; ++i) {
    const int32_t id = greedy ? cand_[i].id : draw();
    if (matcher_->allows(*vocab_, id)) return id;
  }
  ++n_masks_;
  const int32_t n_allowed = matcher_->allowed_tokens(*vocab_, allowed_);
  if (n_allowed == 0) {
    grammar_error_ = matcher_->is_accepting()
                         ? "grammar: the output is complete but the model has no end-of-generation token"
                         : "grammar: no token of the vocabulary can continue the output";
    return -1;
  }
  fill(logits, n_vocab);
  size_t kept = 0;
  for (const Candidate& c : cand_)
    if (allowed_[static_cast<size_t>(c.id)]) cand_[kept++] = c;
  cand_.resize(kept);
  prepare();
  return draw();
}

// Truncates cand_ to the candidates a draw may pick, in cand_[0, n_kept_), with their
// cumulative weights in cum_. Sorts only as much as a truncation needs: top-k and greedy a
// partial sort, min-p a threshold, top-p a sorted prefix grown until it holds the mass.
void Sampler::prepare() {
  auto by_logit = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  const size_t n_all = cand_.size();
  if (params_.temperature <= 0.0f) {
    const size_t k = std::min(kMaxTries, n_all);
    std::partial_sort(cand_.begin(), cand_.begin() + static_cast<std::ptrdiff_t>(k), cand_.end(), by_logit);
    n_kept_ = k;
    return;
  }
  size_t n = n_all;
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < n) {
    n = static_cast<size_t>(params_.top_k);
    std::partial_sort(cand_.begin(), cand_.begin() + static_cast<std::ptrdiff_t>(n), cand_.end(), by_logit);
  }
  float max_l = cand_[0].logit;
  for (size_t i = 1; i < n; ++i) max_l = std::max(max_l, cand_[i].logit);
  // Weights relative to the largest (so p_i / p_max); sum: the normalizer before min-p.
  w_.resize(n);
  double sum = 0;
  const float inv_t = 1.0f / params_.temperature;
  for (size_t i = 0; i < n; ++i) sum += w_[i] = std::exp((cand_[i].logit - max_l) * inv_t);
  if (params_.min_p > 0.0f) {
    size_t keep = 0;
    for (size_t i = 0; i < n; ++i)
      if (w_[i] >= params_.min_p) cand_[keep] = cand_[i], w_[keep++] = w_[i];
    if (keep == 0) {  // min_p > 1: keep the most likely
      size_t best = 0;
      for (size_t i = 1; i < n; ++i)
        if (by_logit(cand_[i], cand_[best])) best = i;
      cand_[0] = cand_[best], w_[0] = 1.0, keep = 1;
    }
    n = keep;
  }
  if (params_.top_p < 1.0f) {
    // The smallest prefix by logit whose mass reaches top_p, sorting more only if needed.
    const double target = params_.top_p * sum;
    for (size_t m = std::min<size_t>(64, n);; m = std::min(m * 4, n)) {
      std::partial_sort(cand_.begin(), cand_.begin() + static_cast<std::ptrdiff_t>(m),
                        cand_.begin() + static_cast<std::ptrdiff_t>(n), by_logit);
      double cum = 0;
      size_t keep = 0;
      while (keep < m) {
        cum += std::exp((cand_[keep++].logit - max_l) * inv_t);
        if (cum >= target) break;
      }
      if (cum >= target || m == n) {
        n = std::max<size_t>(keep, 1);
        for (size_t i = 0; i < n; ++i) w_[i] = std::exp((cand_[i].logit - max_l) * inv_t);
        break;
      }
    }
  }
  n_kept_ = n;
  cum_.resize(n);
  double c = 0;
  for (size_t i = 0; i < n; ++i) cum_[i] = c += w_[i];
}

int32_t Sampler::draw() {
  if (params_.temperature <= 0.0f) return cand_[0].id;
  std::uniform_real_distribution<double> uni(0.0, cum_[n_kept_ - 1]);
  const double r = uni(rng_);
  const size_t i = static_cast<size_t>(std::upper_bound(cum_.begin(), cum_.begin() + static_cast<std::ptrdiff_t>(n_kept_), r) - cum_.begin());
  return cand_[std::min(i, n_kept_ - 1)].id;
}

}  // namespace xent
