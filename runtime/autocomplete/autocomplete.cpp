#include "runtime/autocomplete/autocomplete.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "formats/error.h"

namespace xent {
namespace {

// What a token can do in a suggestion (by its bytes).
enum : uint8_t {
  kind_skip = 0,      // no bytes (control, unused): never part of a suggestion
  kind_word = 1,      // continues the current word
  kind_boundary = 2,  // starts with a space or punctuation: ends a word, may start the next
  kind_line = 3,      // holds a newline: ends a word; suggestions never cross a line
  kind_end = 4,       // end of generation: ends a word and the text
};

constexpr int32_t kPrefixChunk = 64;  // prefix tokens per decode, so cancellation is prompt
// Summaries kept between keystrokes: about 16 bytes each, so at most ~16 MiB.
constexpr size_t kMaxDistEntries = size_t{1} << 20;
// Most context tokens a word's first keystroke evaluates inside its first tree step.
constexpr int32_t kMaxPending = 16;

double log_sum_exp(const float* x, int64_t n) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(x[i] - mx));
  return mx + std::log(s);
}

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool blocked(std::string_view text, const std::vector<std::string>& blocklist) {
  if (blocklist.empty()) return false;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_word_boundary_byte(static_cast<unsigned char>(text[i]))) ++i;
    size_t j = i;
    while (j < text.size() && !is_word_boundary_byte(static_cast<unsigned char>(text[j]))) ++j;
    if (j > i) {
      const std::string w = lower_ascii(text.substr(i, j - i));
      for (const std::string& b : blocklist)
        if (!b.empty() && lower_ascii(b) == w) return true;
    }
    i = j;
  }
  return false;
}

std::string_view trim_leading_space(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

}  // namespace

bool is_word_boundary_byte(unsigned char c) {
  if (c >= 0x80) return false;  // part of a UTF-8 letter
  const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  return !alnum;
}

bool has_word_char(std::string_view s) {
  for (char c : s)
    if (!is_word_boundary_byte(static_cast<unsigned char>(c))) return true;
  return false;
}

size_t last_word_start(std::string_view text) {
  size_t i = text.size();
  while (i > 0 && !is_word_boundary_byte(static_cast<unsigned char>(text[i - 1]))) --i;
  // Byte-level BPE and SentencePiece both glue a word's leading space to its first token.
  if (i > 0 && text[i - 1] == ' ') --i;
  return i;
}

Autocompleter::Autocompleter(const Model& model, Context& ctx) : model_(model), ctx_(ctx) {
  const Tokenizer& tok = model.tokenizer();
  const int32_t n_vocab = static_cast<int32_t>(ctx.n_vocab());
  pieces_.resize(static_cast<size_t>(n_vocab));
  kind_.assign(static_cast<size_t>(n_vocab), kind_skip);
  for (int32_t t = 0; t < n_vocab && t < tok.n_vocab(); ++t) {
    if (tok.is_end_of_generation(t)) {
      kind_[t] = kind_end;
      continue;
    }
    const TokenType type = tok.token_type(t);
    if (type == TokenType::Control || type == TokenType::Unused || type == TokenType::Unknown) continue;
    pieces_[t] = tok.token_to_piece(t, false);
    const std::string& p = pieces_[t];
    if (p.empty()) continue;
    if (p.find('\n') != std::string::npos || p.find('\r') != std::string::npos) kind_[t] = kind_line;
    else if (is_word_boundary_byte(static_cast<unsigned char>(p[0]))) kind_[t] = kind_boundary;
    else kind_[t] = kind_word;
  }
  cached_.clear();
  ctx_.truncate(0);
}

void Autocompleter::split(std::string_view text, std::vector<int32_t>* context_tokens, std::string* partial) const {
  const size_t ws = last_word_start(text);
  *partial = std::string(text.substr(ws));
  std::string_view before = text.substr(0, ws);

  const Tokenizer& tok = model_.tokenizer();
  const int64_t n_ctx = ctx_.n_ctx();
  // Room kept free after the context for the candidate tree.
  const int64_t reserve = std::clamp<int64_t>(n_ctx / 4, 8, 128);
  const bool add_bos = tok.adds_bos() && tok.bos() >= 0;
  const int64_t max_ctx = std::max<int64_t>(1, n_ctx - reserve - (add_bos ? 1 : 0));

  // A very long text: only its tail can reach the window, and tokenizing all of it on
  // every keystroke would dominate. Cut at offsets that move in big steps (so the cache
  // stays valid between cuts) and at a space (so no word is split).
  const size_t tail_bytes = static_cast<size_t>(max_ctx) * 16;
  if (before.size() > 2 * tail_bytes) {
    size_t cut = (before.size() - tail_bytes) / tail_bytes * tail_bytes;
    while (cut < before.size() && before[cut] != ' ' && before[cut] != '\n') ++cut;
    before.remove_prefix(cut);
  }
  std::vector<int32_t> full = tok.encode(before, false, false);
  // Slide the window in steps of half its size: the cached tokens stay a prefix of the
  // window between steps, and a step re-evaluates at most one window.
  size_t start = 0;
  if (static_cast<int64_t>(full.size()) > max_ctx) {
    const size_t chunk = static_cast<size_t>(std::max<int64_t>(1, max_ctx / 2));
    const size_t over = full.size() - static_cast<size_t>(max_ctx);
    start = (over + chunk - 1) / chunk * chunk;
  }
  context_tokens->clear();
  if (add_bos) context_tokens->push_back(tok.bos());
  context_tokens->insert(context_tokens->end(), full.begin() + static_cast<std::ptrdiff_t>(start), full.end());
  // The first word of a text needs something to condition on: the start-of-text token
  // (GPT-2 style models use their end-of-text token for it).
  if (context_tokens->empty()) {
    const int32_t start_tok = tok.bos() >= 0 ? tok.bos() : tok.eos();
    if (start_tok >= 0) context_tokens->push_back(start_tok);
  }
}

bool Autocompleter::sync_prefix(const std::vector<int32_t>& tokens, uint64_t generation, AutocompleteResult& r) {
  size_t common = 0;
  while (common < cached_.size() && common < tokens.size() && cached_[common] == tokens[common]) ++common;
  if (common == tokens.size() && common == cached_.size() && !root_logits_.empty()) {
    r.n_prefix_reused = static_cast<int32_t>(common);
    return true;
  }
  if (common == tokens.size()) --common;  // the last token is evaluated again for its logits
  ctx_.truncate(static_cast<int32_t>(common));
  cached_.resize(common);
  root_logits_.clear();
  dists_.clear();
  dists_entries_ = 0;
  r.n_prefix_reused = static_cast<int32_t>(common);
  for (size_t done = common; done < tokens.size();) {
    if (stale(generation)) return false;
    const size_t n = std::min<size_t>(kPrefixChunk, tokens.size() - done);
    ctx_.decode(tokens.data() + done, n, false);
    cached_.insert(cached_.end(), tokens.begin() + static_cast<std::ptrdiff_t>(done),
                   tokens.begin() + static_cast<std::ptrdiff_t>(done + n));
    r.n_prefix_evaluated += static_cast<int32_t>(n);
    done += n;
  }
  const float* l = ctx_.logits();
  root_logits_.assign(l, l + ctx_.n_vocab());
  return true;
}

// The rules (mirrored by the brute-force reference in tests/runtime/autocomplete/test-autocomplete.cpp):
// - while the path's bytes are shorter than the partial word, a token must agree with it;
// - then a word token extends the current word; a boundary token ends it when the current
//   segment has a word character (finishing the suggestion after max_words words, or
//   starting the next word), and otherwise just extends the segment (" room" + " air");
// - a suggestion's probability = path probability x the probability that a word ends
//   right after it (all boundary, line and end tokens together).
Autocompleter::Dist Autocompleter::summarize(const float* logits, double log_min) const {
  const int64_t n_vocab = ctx_.n_vocab();
  const double lse = log_sum_exp(logits, n_vocab);
  Dist d;
  for (int64_t t = 0; t < n_vocab; ++t) {
    const uint8_t k = kind_[t];
    if (k == kind_skip) continue;
    const double lp = logits[t] - lse;
    if (k == kind_boundary) d.boundary_mass += std::exp(lp);
    else if (k == kind_line || k == kind_end) d.stop_mass += std::exp(lp);
    if (k != kind_end && lp >= log_min) d.likely.emplace_back(static_cast<int32_t>(t), lp);
  }
  return d;
}

void Autocompleter::expand(int32_t node, const Dist& d, const std::string& partial,
                           const AutocompleteParams& p, std::vector<Node>& children,
                           std::vector<std::pair<std::string, double>>& finished) {
  const Node* parent = node >= 0 ? &nodes_[static_cast<size_t>(node)] : nullptr;
  const double base = parent ? parent->logp : 0.0;
  const std::string bytes = parent ? parent->bytes : std::string();
  const int depth = parent ? parent->depth : 0;
  const int words_done = parent ? parent->words_done : 0;
  const double log_min = p.min_probability > 0 ? std::log(static_cast<double>(p.min_probability))
                                               : -std::numeric_limits<double>::infinity();
  const bool may_grow = depth < p.max_tokens;
  const size_t first_child = children.size();
  auto add_child = [&](int32_t t, double lp, int wd) {
    Node c;
    c.parent = node;
    c.token = t;
    if (parent) c.path = parent->path;
    c.path.push_back(t);
    c.depth = depth + 1;
    c.logp = lp;
    c.bytes = bytes + pieces_[t];
    c.words_done = wd;
    children.push_back(std::move(c));
  };

  if (bytes.size() < partial.size()) {
    if (!may_grow) return;
    const std::string_view need = std::string_view(partial).substr(bytes.size());
    for (const auto& [t, lpt] : d.likely) {
      const std::string& piece = pieces_[t];
      if (piece.empty()) continue;
      const size_t m = std::min(piece.size(), need.size());
      if (piece.compare(0, m, need.substr(0, m)) != 0) continue;
      const double lp = base + lpt;
      if (lp >= log_min) add_child(t, lp, words_done);
    }
  } else {
    // The current segment: what follows the partial word, or the last word started.
    const size_t seg_start = parent ? parent->seg_start : partial.size();
    const bool content = has_word_char(std::string_view(bytes).substr(seg_start));
    const bool last_word = words_done + 1 >= p.max_words;
    if (may_grow) {
      for (const auto& [t, lpt] : d.likely) {
        const uint8_t k = kind_[t];
        const double lp = base + lpt;
        if (lp < log_min) continue;
        if (k == kind_word) {
          add_child(t, lp, words_done);
        } else if (k == kind_boundary && content && !last_word) {
          add_child(t, lp, words_done + 1);
          children.back().seg_start = bytes.size();
        } else if (k == kind_boundary && !content) {
          add_child(t, lp, words_done);
        }
      }
    }
    const double end_mass = d.stop_mass + (last_word ? d.boundary_mass : 0.0);
    if (content && end_mass > 0) finished.emplace_back(bytes.substr(partial.size()), std::exp(base) * end_mass);
  }
  // Children inherit the segment start unless they began a new word above.
  for (size_t i = first_child; i < children.size(); ++i)
    if (children[i].seg_start == std::string::npos)
      children[i].seg_start = parent ? parent->seg_start : partial.size();
  // The beam keeps beam_width nodes in all; no node needs more children than that.
  const size_t width = static_cast<size_t>(std::max(1, p.beam_width));
  if (children.size() - first_child > width) {
    auto first = children.begin() + static_cast<std::ptrdiff_t>(first_child);
    std::nth_element(first, first + static_cast<std::ptrdiff_t>(width), children.end(),
                     [](const Node& a, const Node& b) { return a.logp > b.logp; });
    children.resize(first_child + width);
  }
}

AutocompleteResult Autocompleter::complete(std::string_view text, const AutocompleteParams& params,
                                           std::vector<int32_t>* cache_tokens) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const uint64_t generation = generation_.fetch_add(1) + 1;  // a newer call makes older ones stale
  std::lock_guard<std::mutex> lock(run_mutex_);
  AutocompleteResult r;
  auto finish = [&](bool cancelled) {
    r.cancelled = cancelled;
    if (cancelled) r.suggestions.clear();
    r.ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
    return r;
  };
  if (stale(generation)) return finish(true);
  if (cache_tokens && *cache_tokens != cached_) adopt(*cache_tokens);
  // Whatever happens below, the cache ends holding exactly cached_ (and says so).
  struct Restore {
    Autocompleter& self;
    std::vector<int32_t>* shared;
    ~Restore() {
      self.ctx_.truncate(static_cast<int32_t>(self.cached_.size()));
      if (shared) *shared = self.cached_;
    }
  } restore{*this, cache_tokens};

  AutocompleteParams p = params;
  p.n_suggestions = std::clamp(p.n_suggestions, 0, 64);
  p.max_words = std::clamp(p.max_words, 1, 8);
  p.beam_width = std::clamp(p.beam_width, 1, 256);
  p.max_tokens = std::clamp(p.max_tokens, 1, 32);
  if (!(p.min_probability >= 0.0f)) p.min_probability = 0.0f;  // also catches NaN

  // While a word is typed the text before it stays the same: its tokens are kept rather than
  // encoded again on every keystroke (up to ~28 KB of text: a quarter of the time of a 24 KB
  // replay on the demo model).
  const size_t ws = last_word_start(text);
  if (!split_valid_ || text.substr(0, ws) != split_before_) {
    std::string unused;
    split(text, &split_context_, &unused);
    split_before_ = std::string(text.substr(0, ws));
    split_valid_ = true;
  }
  const std::vector<int32_t>& context = split_context_;
  const std::string partial(text.substr(ws));
  if (context.empty() || p.n_suggestions == 0) return finish(false);

  const double log_min = p.min_probability > 0 ? std::log(static_cast<double>(p.min_probability))
                                               : -std::numeric_limits<double>::infinity();
  // A word just finished: the context grew by tokens that an earlier keystroke's tree
  // evaluated as a path (the word as a suggestion), so the distribution after them is
  // known. They are then evaluated as the first rows of the first tree step, which keeps
  // them, instead of in a decode of their own: one evaluation, not two, on the keystroke
  // that starts a word (the one that sets the latency's tail).
  std::vector<int32_t> pending;
  if (!root_logits_.empty() && log_min == dists_log_min_ && context.size() > cached_.size() &&
      context.size() - cached_.size() <= static_cast<size_t>(kMaxPending) &&
      ctx_.n_past() == static_cast<int32_t>(cached_.size()) &&
      std::equal(cached_.begin(), cached_.end(), context.begin())) {
    std::vector<int32_t> suffix(context.begin() + static_cast<std::ptrdiff_t>(cached_.size()), context.end());
    auto it = dists_.find(suffix);
    if (it != dists_.end()) {
      Dist root = std::move(it->second);
      dists_.clear();
      dists_entries_ = root.likely.size() + 1;
      dists_.emplace(std::vector<int32_t>{}, std::move(root));
      root_logits_.clear();  // set from the first tree step's row of the last pending token
      r.n_prefix_reused = static_cast<int32_t>(cached_.size());
      pending = std::move(suffix);
    }
  }
  if (pending.empty() && !sync_prefix(context, generation, r)) return finish(true);
  int32_t n_past = ctx_.n_past();
  // Moves the pending tokens into the cache after the step that evaluated them as rows
  // [0, k); with no tree step to carry them, they are decoded on their own.
  auto commit_pending = [&](bool evaluated) {
    const auto k = static_cast<int32_t>(pending.size());
    if (evaluated) {
      r.prefix_in_tree = true;
      ctx_.truncate(n_past + k);
      root_logits_.assign(ctx_.logits_at(static_cast<size_t>(k - 1)), ctx_.logits_at(static_cast<size_t>(k - 1)) + ctx_.n_vocab());
    } else {
      ctx_.truncate(n_past);
      ctx_.decode(pending.data(), pending.size(), false);
      root_logits_.assign(ctx_.logits(), ctx_.logits() + ctx_.n_vocab());
    }
    cached_.insert(cached_.end(), pending.begin(), pending.end());
    r.n_prefix_evaluated += k;
    n_past += k;
    pending.clear();
  };

  if (log_min != dists_log_min_ || dists_entries_ > kMaxDistEntries) {
    dists_.clear();
    dists_entries_ = 0;
    dists_log_min_ = log_min;
  }
  auto remember = [&](const std::vector<int32_t>& path, const float* logits) -> const Dist& {
    auto [it, inserted] = dists_.try_emplace(path);
    if (inserted) {
      it->second = summarize(logits, log_min);
      dists_entries_ += it->second.likely.size() + 1;
    }
    return it->second;
  };

  nodes_.clear();
  std::vector<Node> children;
  std::vector<std::pair<std::string, double>> finished;
  {
    auto it = dists_.find({});
    const Dist& root = it != dists_.end() ? it->second : remember({}, root_logits_.data());
    expand(-1, root, partial, p, children, finished);
  }

  std::vector<int32_t> tree_tokens, tree_pos, frontier;
  std::vector<float> mask;
  std::vector<int32_t> mark;
  while (!children.empty()) {
    if (stale(generation)) return finish(true);
    std::sort(children.begin(), children.end(), [](const Node& a, const Node& b) {
      return a.logp > b.logp || (a.logp == b.logp && a.bytes < b.bytes);
    });
    if (children.size() > static_cast<size_t>(p.beam_width)) children.resize(static_cast<size_t>(p.beam_width));

    // The tree to evaluate: the frontier nodes whose distribution is not known yet and all
    // their ancestors, as long as it fits the free context and one batch.
    const auto k = static_cast<int64_t>(pending.size());
    const int64_t cap = std::min<int64_t>(ctx_.n_ctx() - n_past, 512) - k;
    mark.assign(nodes_.size() + children.size(), 0);
    int64_t n_rows = 0;
    frontier.clear();
    for (Node& c : children) {
      const bool known = dists_.count(c.path) != 0;
      int64_t extra = 0;
      if (!known) {
        extra = 1;
        for (int32_t a = c.parent; a >= 0 && !mark[a]; a = nodes_[a].parent) ++extra;
        if (n_rows + extra > cap) break;
        for (int32_t a = c.parent; a >= 0 && !mark[a]; a = nodes_[a].parent) mark[a] = 1;
      }
      n_rows += extra;
      const int32_t idx = static_cast<int32_t>(nodes_.size());
      nodes_.push_back(std::move(c));
      if (!known) mark[idx] = 1;
      frontier.push_back(idx);
    }
    children.clear();
    if (frontier.empty()) break;

    if (n_rows > 0) {
      // Rows [0, k): the pending context tokens, a causal chain; then the tree, above them.
      tree_tokens.assign(pending.begin(), pending.end());
      tree_pos.clear();
      for (int64_t i = 0; i < k; ++i) tree_pos.push_back(n_past + static_cast<int32_t>(i));
      for (size_t i = 0; i < nodes_.size(); ++i) {
        nodes_[i].row = -1;
        if (!mark[i]) continue;
        nodes_[i].row = static_cast<int32_t>(tree_tokens.size());
        tree_tokens.push_back(nodes_[i].token);
        tree_pos.push_back(n_past + static_cast<int32_t>(k) + nodes_[i].depth - 1);
      }
      const size_t n = tree_tokens.size();
      const auto ku = static_cast<size_t>(k);
      mask.assign(n * n, -std::numeric_limits<float>::infinity());
      for (size_t i = 0; i < ku; ++i) std::fill_n(mask.begin() + static_cast<std::ptrdiff_t>(i * n), i + 1, 0.0f);
      for (size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i].row < 0) continue;
        const auto row = static_cast<size_t>(nodes_[i].row);
        std::fill_n(mask.begin() + static_cast<std::ptrdiff_t>(row * n), ku, 0.0f);
        // Ancestors precede descendants in nodes_, so their rows are set already.
        for (int32_t a = static_cast<int32_t>(i); a >= 0; a = nodes_[a].parent)
          mask[row * n + static_cast<size_t>(nodes_[a].row)] = 0.0f;
      }
      ctx_.decode_tree(tree_tokens.data(), tree_pos.data(), mask.data(), n);
      if (!pending.empty()) commit_pending(true);
      else ctx_.truncate(n_past);
      r.n_tree_evaluated += static_cast<int32_t>(n - ku);
      ++r.n_steps;
      for (size_t i = 0; i < nodes_.size(); ++i)
        if (nodes_[i].row >= 0) remember(nodes_[i].path, ctx_.logits_at(static_cast<size_t>(nodes_[i].row)));
    }
    for (int32_t f : frontier) {
      const Node& node = nodes_[static_cast<size_t>(f)];
      if (node.row < 0) ++r.n_tree_reused;
      expand(f, dists_.at(node.path), partial, p, children, finished);
    }
  }

  if (!pending.empty()) commit_pending(false);

  // The same text reached by different token paths is one suggestion.
  std::unordered_map<std::string, double> by_insert;
  for (const auto& [ins, prob] : finished) by_insert[ins] += prob;
  const std::string_view word = trim_leading_space(partial);
  for (const auto& [ins, prob] : by_insert) {
    if (prob < p.min_probability) continue;
    Suggestion s;
    s.insert = ins;
    const bool continues = !ins.empty() && !is_word_boundary_byte(static_cast<unsigned char>(ins[0]));
    s.text = std::string(trim_leading_space(continues ? std::string(word) + ins : ins));
    while (!s.text.empty() && (s.text.back() == ' ' || s.text.back() == '\t')) s.text.pop_back();
    s.probability = prob;
    if (s.text.empty() || blocked(s.text, p.blocklist)) continue;
    r.suggestions.push_back(std::move(s));
  }
  std::sort(r.suggestions.begin(), r.suggestions.end(), [](const Suggestion& a, const Suggestion& b) {
    return a.probability > b.probability || (a.probability == b.probability && a.insert < b.insert);
  });
  if (r.suggestions.size() > static_cast<size_t>(p.n_suggestions))
    r.suggestions.resize(static_cast<size_t>(p.n_suggestions));
  return finish(false);
}

}  // namespace xent
