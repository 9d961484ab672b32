// Word and phrase autocomplete over a Model + Context: keeps the text before the last word
// in the KV cache between keystrokes and expands the last word with a token-tree beam.
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/inference/context.h"
#include "runtime/inference/model.h"

namespace xent {

struct AutocompleteParams {
  int n_suggestions = 3;
  // Words each suggestion completes: 1 finishes the word being typed (or, when it is already
  // complete, gives the next word); 2-3 continue into a short phrase.
  int max_words = 1;
  // Suggestions and beam nodes less likely than this are dropped. Because a path's joint
  // probability only falls as it grows, pruning at this bound loses no suggestion above it.
  float min_probability = 0.02f;
  int beam_width = 16;  // frontier nodes kept after each expansion step
  int max_tokens = 8;   // tokens per suggestion, counted from the start of the last word
  std::vector<std::string> blocklist;  // words (case-insensitive) never suggested
};

struct Suggestion {
  std::string text;    // as shown: "daily", "twice", "room air" (no leading space)
  std::string insert;  // the bytes to append at the cursor: " daily", "ce", " air"
  double probability = 0;
};

struct AutocompleteResult {
  std::vector<Suggestion> suggestions;  // most likely first
  double ms = 0;
  int32_t n_prefix_evaluated = 0;  // context tokens evaluated (the cache reuse misses)
  int32_t n_prefix_reused = 0;     // context tokens found in the cache
  int32_t n_tree_evaluated = 0;    // candidate-tree tokens evaluated (all steps)
  int32_t n_tree_reused = 0;       // tree nodes expanded from an earlier keystroke's evaluation
  int32_t n_steps = 0;             // decode_tree calls
  // The context tokens were evaluated as the first rows of the first tree step (a word
  // just finished whose distribution an earlier keystroke knew), not by a decode of their own.
  bool prefix_in_tree = false;
  bool cancelled = false;
};

// Why a token ends a word: its first byte is whitespace or ASCII punctuation, or it
// ends the text. Exposed for the tests' independent reference search.
bool is_word_boundary_byte(unsigned char c);
bool has_word_char(std::string_view s);  // letters, digits or any non-ASCII byte

// Where the last (partial) word of text begins: the text before it is the context kept in
// the cache; the word itself, with its leading space, is matched by the candidate tokens
// (BPE merges change while a word grows, so its own tokens are never cached).
size_t last_word_start(std::string_view text);

class Autocompleter {
 public:
  // Borrows both; the context's cache belongs to this object while it is used.
  Autocompleter(const Model& model, Context& ctx);

  // Suggestions for what follows text. Thread-safe in one sense only: calls from several
  // threads are serialised, and a call that is waiting or running when a newer one starts
  // returns early with result.cancelled (checked between evaluation steps). Throws
  // xent::Error on evaluation failures. cache_tokens (optional): a list of what the
  // Context's cache holds that others sharing the Context keep too; it is read and
  // updated under the same lock.
  AutocompleteResult complete(std::string_view text, const AutocompleteParams& params,
                              std::vector<int32_t>* cache_tokens = nullptr);
  // Makes the call in flight (if any) return cancelled. Any thread.
  void cancel() { generation_.fetch_add(1); }

  // The context tokens now cached (for callers that share the Context).
  const std::vector<int32_t>& cached_tokens() const { return cached_; }
  // Forget the cache (after someone else used the Context).
  void invalidate() { adopt({}); }
  // The context's cache holds these tokens (someone else evaluated them); reuse them.
  void adopt(std::vector<int32_t> tokens) {
    cached_ = std::move(tokens);
    root_logits_.clear();
    dists_.clear();
  }

  // The tokens the context part of text is evaluated as (window applied), and the
  // partial last word. Public so the tests can rebuild the same search from scratch.
  void split(std::string_view text, std::vector<int32_t>* context_tokens, std::string* partial) const;

 private:
  // What expansion needs of a node's next-token distribution. A child's joint probability
  // never exceeds its own conditional one, so tokens below min_probability can never make a
  // kept child; only their total masses matter.
  struct Dist {
    std::vector<std::pair<int32_t, double>> likely;  // (token, log p) for log p >= log_min
    double boundary_mass = 0;  // p of all tokens that start with a space or punctuation
    double stop_mass = 0;      // p of all newline and end-of-generation tokens
  };
  struct Node {
    int32_t parent;   // index into nodes_, -1 for the root's children
    int32_t token;
    std::vector<int32_t> path;  // tokens from the root (the key of dists_)
    int32_t depth;    // 1 for a child of the root
    double logp;      // joint log-probability of the path
    std::string bytes;  // the path's text (starts with the partial word)
    int words_done;     // words with content finished before the current one
    size_t seg_start = std::string::npos;  // where the current word begins in bytes
    int32_t row = -1;   // batch row in the current tree evaluation
  };
  bool stale(uint64_t generation) const { return generation_.load() != generation; }
  // Brings the cache to `tokens` reusing the longest common prefix; root_logits_ ends up
  // as the distribution after the last token. Returns false when cancelled.
  bool sync_prefix(const std::vector<int32_t>& tokens, uint64_t generation, AutocompleteResult& r);
  Dist summarize(const float* logits, double log_min) const;
  // Children of a node (or of the root when node < 0) from its distribution.
  void expand(int32_t node, const Dist& d, const std::string& partial, const AutocompleteParams& p,
              std::vector<Node>& children, std::vector<std::pair<std::string, double>>& finished);

  const Model& model_;
  Context& ctx_;
  std::mutex run_mutex_;
  std::atomic<uint64_t> generation_{0};
  std::vector<int32_t> cached_;     // context tokens in the cache, row by row
  std::vector<float> root_logits_;  // distribution after cached_.back()
  std::vector<std::string> pieces_; // token id -> bytes
  std::vector<uint8_t> kind_;       // per token: see kind_* in the .cpp
  std::vector<Node> nodes_;
  // split() of the last text's part before its last word (which depends on nothing else).
  std::string split_before_;
  std::vector<int32_t> split_context_;
  bool split_valid_ = false;
  // Distributions of evaluated tree nodes by token path from the word start, valid for the
  // cached context and dists_log_min_. While a word is typed, each keystroke's tree is a
  // subset of the previous keystroke's paths, so most of it is known already.
  std::map<std::vector<int32_t>, Dist> dists_;
  double dists_log_min_ = 0;
  size_t dists_entries_ = 0;  // likely-token entries held, bounded by kMaxDistEntries
};

}  // namespace xent
