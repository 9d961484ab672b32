// The oracle check of issue 20: wherever the model's own greedy decode writes a whole word,
// likely enough to pass the suggestion threshold, the suggestions at default settings hold it.
// The greedy word is found with plain Context::decode, one token at a time, no tree.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/autocomplete/autocomplete.h"
#include "runtime/inference/context.h"
#include "runtime/inference/model.h"

namespace {

using xent::AutocompleteParams;
using xent::Autocompleter;
using xent::Context;
using xent::Model;

const std::string kClinical = std::string(XENT_SHARED_DIR) + "/models/clinical-gpt2-q8_0.gguf";
const std::string kNotes = std::string(XENT_SHARED_DIR) + "/data/clinical-notes-sample.txt";

bool word_char(char c) {
  const unsigned char u = static_cast<unsigned char>(c);
  return u >= 0x80 || (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z');
}

// One thread: on a busy machine a second one mostly waits at the barrier after each op of
// this small model's one-token steps (a third of the time, by perf).
xent::ContextParams one_thread() {
  xent::ContextParams p;
  p.n_threads = 1;
  return p;
}

// The notes of the sample file, separated by blank lines; each is typed as its own text.
std::vector<std::string> read_notes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> notes;
  size_t i = 0;
  while (i < all.size()) {
    size_t j = all.find("\n\n", i);
    if (j == std::string::npos) j = all.size();
    if (j > i) notes.push_back(all.substr(i, j - i));
    i = j + 2;
  }
  return notes;
}

// The greedy word: from `context`, take the most likely token again and again — while the
// path is shorter than `partial` (the word as typed so far, with its leading space), the most
// likely token that agrees with it — and stop where, after a letter or digit past `partial`,
// the most likely token is a space, punctuation, newline or end of text. The word may open
// with punctuation. Its probability is the product of its tokens' (from the word's start, the
// typed letters included) times the probability that it ends there (that the next token is
// any boundary): the probability that the model writes exactly this word, the quantity the
// suggestion threshold applies to.
struct GreedyWord {
  bool complete = false;
  std::string insert;  // the bytes after partial
  int n_tokens = 0;    // from the word's start
  double probability = 0;
};

class Greedy {
 public:
  explicit Greedy(const Model& model) : ctx_(model, one_thread()) {
    const xent::Tokenizer& tok = model.tokenizer();
    const int32_t n = static_cast<int32_t>(model.hparams().n_vocab);
    pieces_.resize(static_cast<size_t>(n));
    ends_.assign(static_cast<size_t>(n), 0);
    for (int32_t t = 0; t < n; ++t) {
      if (tok.is_end_of_generation(t)) {
        ends_[t] = 2;
        continue;
      }
      const auto type = tok.token_type(t);
      if (type == xent::TokenType::Control || type == xent::TokenType::Unused || type == xent::TokenType::Unknown)
        continue;
      pieces_[t] = tok.token_to_piece(t, false);
      const std::string& s = pieces_[t];
      if (s.empty()) continue;
      if (s.find_first_of("\r\n") != std::string::npos) ends_[t] = 2;
      else if (!word_char(s[0])) ends_[t] = 1;
    }
  }

  GreedyWord run(const std::vector<int32_t>& context, const std::string& partial, int max_tokens) {
    set_context(context);
    GreedyWord g;
    std::vector<int32_t> path;
    std::string bytes;
    double logp = 0;
    for (int step = 0; step <= max_tokens; ++step) {
      const std::vector<float>& logits = logits_after(path);
      const int64_t n_vocab = static_cast<int64_t>(logits.size());
      double mx = logits[0], s = 0;
      for (int64_t t = 1; t < n_vocab; ++t) mx = std::max(mx, static_cast<double>(logits[t]));
      for (int64_t t = 0; t < n_vocab; ++t) s += std::exp(static_cast<double>(logits[t]) - mx);
      const double lse = mx + std::log(s);
      // While the typed letters are not all matched, only tokens that agree with them count.
      const std::string_view need =
          bytes.size() < partial.size() ? std::string_view(partial).substr(bytes.size()) : std::string_view();
      int32_t best = -1;
      for (int64_t t = 0; t < n_vocab; ++t) {
        if (!need.empty()) {
          const std::string& piece = pieces_[t];
          const size_t m = std::min(piece.size(), need.size());
          if (piece.empty() || piece.compare(0, m, need.substr(0, m)) != 0) continue;
        }
        if (best < 0 || logits[t] > logits[best]) best = static_cast<int32_t>(t);
      }
      if (best < 0) break;
      const bool content = bytes.size() > partial.size() && [&] {
        for (size_t i = partial.size(); i < bytes.size(); ++i)
          if (word_char(bytes[i])) return true;
        return false;
      }();
      if (content && ends_[best] != 0) {
        double end_mass = 0;
        for (int64_t t = 0; t < n_vocab; ++t)
          if (ends_[t] != 0) end_mass += std::exp(static_cast<double>(logits[t]) - lse);
        g.complete = true;
        g.insert = bytes.substr(partial.size());
        g.probability = std::exp(logp) * end_mass;
        break;
      }
      if (step == max_tokens || ends_[best] == 2 || pieces_[best].empty()) break;
      bytes += pieces_[best];
      logp += logits[best] - lse;
      path.push_back(best);
      ++g.n_tokens;
    }
    return g;
  }

 private:
  // Keeps the common prefix with the last call's context in the cache; the distributions
  // known after it are those of the same context.
  void set_context(const std::vector<int32_t>& context) {
    if (context == context_) return;
    size_t common = 0;
    while (common < context_.size() && common < context.size() && context_[common] == context[common]) ++common;
    if (common == context.size()) --common;
    ctx_.truncate(static_cast<int32_t>(common));
    ctx_.decode(context.data() + common, context.size() - common);
    context_ = context;
    n_past_ = ctx_.n_past();
    path_.clear();
    known_.clear();
    known_[{}].assign(ctx_.logits(), ctx_.logits() + ctx_.n_vocab());
  }

  // The distribution after context + path, by plain one-token decodes; the word's positions
  // (at 0, 1, 2 ... letters typed) walk mostly the same paths, so each is decoded once.
  const std::vector<float>& logits_after(const std::vector<int32_t>& path) {
    if (auto it = known_.find(path); it != known_.end()) return it->second;
    size_t common = 0;
    while (common < path_.size() && common < path.size() && path_[common] == path[common]) ++common;
    ctx_.truncate(n_past_ + static_cast<int32_t>(common));
    path_.resize(common);
    for (size_t i = common; i < path.size(); ++i) {
      ctx_.decode(&path[i], 1);
      path_.push_back(path[i]);
      known_[path_].assign(ctx_.logits(), ctx_.logits() + ctx_.n_vocab());
    }
    return known_.at(path);
  }

  Context ctx_;
  std::vector<int32_t> context_;
  int32_t n_past_ = 0;
  std::vector<int32_t> path_;  // what the cache holds after the context
  std::map<std::vector<int32_t>, std::vector<float>> known_;
  std::vector<std::string> pieces_;
  std::vector<uint8_t> ends_;  // 1: space or punctuation first, 2: newline or end of text
};

}  // namespace

// At each word's start and after its first 1, 2 and 3 letters (while letters are left to
// type): with the typed letters, the greedy word is the most likely path that agrees with them.
TEST_CASE("suggestions hold every greedy word above the threshold", "[runtime][autocomplete][model]") {
  std::unique_ptr<Model> model = Model::load(kClinical);
  Context ctx(*model, one_thread());
  Autocompleter ac(*model, ctx);
  Greedy greedy(*model);
  const AutocompleteParams p;  // the defaults
  constexpr size_t kMaxTyped = 3;  // letters typed into a word, at most
  // Every 4th note (the 1st, 5th, ...: about 1,900 words). The whole file, 7,457 words, takes
  // four times as long; at word starts alone it had no miss either (2026-12-07: 7,068 greedy
  // words above the threshold, 1,133 of 4+ tokens).
  std::vector<std::string> notes;
  {
    const std::vector<std::string> all = read_notes(kNotes);
    REQUIRE(all.size() > 10);
    for (size_t i = 0; i < all.size(); i += 4) notes.push_back(all[i]);
  }

  // By letters typed into the word (0: before its first letter).
  size_t n_positions[kMaxTyped + 1] = {}, n_oracle[kMaxTyped + 1] = {}, n_missed[kMaxTyped + 1] = {};
  size_t n_long = 0;
  std::vector<std::string> misses;
  for (const std::string& note : notes) {
    for (size_t i = 0; i < note.size(); ++i) {
      if (!word_char(note[i]) || (i > 0 && word_char(note[i - 1]))) continue;
      size_t end = i;
      while (end < note.size() && word_char(note[end])) ++end;
      for (size_t k = 0; k <= kMaxTyped && i + k < end; ++k) {
        // A keystroke is a whole UTF-8 character.
        if ((static_cast<unsigned char>(note[i + k]) & 0xC0) == 0x80) continue;
        const std::string text = note.substr(0, i + k);
        ++n_positions[k];
        std::vector<int32_t> context;
        std::string partial;
        ac.split(text, &context, &partial);
        const GreedyWord g = greedy.run(context, partial, p.max_tokens);
        if (!g.complete || g.probability < p.min_probability) continue;
        ++n_oracle[k];
        if (k == 0 && g.n_tokens >= 4) ++n_long;
        const xent::AutocompleteResult r = ac.complete(text, p);
        bool found = false;
        for (const auto& s : r.suggestions) found |= s.insert == g.insert;
        // A full list of words at least as likely as the greedy one is no miss: the greedy
        // word is the most likely token path, not always the most likely word.
        const bool crowded = static_cast<int>(r.suggestions.size()) >= p.n_suggestions &&
                             r.suggestions.back().probability >= g.probability * (1 - 1e-4);
        if (!found && !crowded) {
          ++n_missed[k];
          std::ostringstream m;
          m << "'" << text.substr(text.size() > 40 ? text.size() - 40 : 0) << "' -> '" << g.insert << "' ("
            << g.n_tokens << " tokens, p " << g.probability << "); offered:";
          for (const auto& s : r.suggestions) m << " '" << s.insert << "' " << s.probability;
          misses.push_back(m.str());
        }
      }
    }
  }
  for (const std::string& m : misses) UNSCOPED_INFO(m);
  std::ostringstream summary;
  for (size_t k = 0; k <= kMaxTyped; ++k)
    summary << (k ? "; " : "") << k << " letter(s) typed: " << n_positions[k] << " positions, " << n_oracle[k]
            << " greedy words above the threshold, " << n_missed[k] << " missed";
  WARN(summary.str() << " (" << n_long << " words of 4+ tokens at word starts)");
  for (size_t k = 0; k <= kMaxTyped; ++k) {
    INFO(k << " letter(s) typed");
    CHECK(n_oracle[k] > n_positions[k] / 4);  // the check is never vacuous
  }
  CHECK(n_long > 0);
  CHECK(misses.empty());
}
