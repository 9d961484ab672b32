// Grammar-constrained sampling: GBNF (the grammar syntax llama.cpp reads) compiled once into
// a pushdown recogniser over Unicode code points, and the per-token checks the sampler makes.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace xent {

// A compiled grammar: immutable, shared by every matcher (one per sampler). Each rule is a
// list of alternatives; an alternative is a run of elements in one flat array ending with
// End. Repetitions and groups are rewritten into extra rules when parsing, so the only
// elements are character classes and rule references.
class Grammar {
 public:
  // Parses GBNF text. Throws xent::Error ("grammar: line L, column C: ...") on a syntax
  // error, an undefined rule, a missing root rule or left recursion (which a pushdown
  // recogniser would loop on).
  static std::shared_ptr<const Grammar> parse(std::string_view gbnf, std::string_view root = "root");

  struct CharClass {
    bool negated = false;
    std::vector<std::pair<uint32_t, uint32_t>> ranges;  // sorted, merged, inclusive
    bool matches(uint32_t cp) const;
    bool intersects(uint32_t lo, uint32_t hi) const;  // some code point in [lo, hi] matches
  };
  enum class Kind : uint8_t { End, Chars, Ref };
  struct Element {
    Kind kind;
    uint32_t value;  // Chars: index into classes(); Ref: rule index
  };

  const std::vector<Element>& elements() const { return elements_; }
  const std::vector<CharClass>& classes() const { return classes_; }
  // Positions in elements() where each alternative of rule r starts.
  const std::vector<uint32_t>& alternatives(uint32_t rule) const { return rules_[rule]; }
  const std::string& rule_name(uint32_t rule) const { return names_[rule]; }
  size_t n_rules() const { return rules_.size(); }
  uint32_t root() const { return root_; }

  // Whether text (UTF-8) is a complete sentence of the grammar; for tests and tools.
  bool accepts(std::string_view text) const;

 private:
  friend class GrammarBuilder;
  std::vector<Element> elements_;
  std::vector<CharClass> classes_;
  std::vector<std::vector<uint32_t>> rules_;
  std::vector<std::string> names_;
  uint32_t root_ = 0;
};

// The vocabulary as the grammar sees it: each token's output bytes, which tokens end the
// generation, and a byte trie over the pieces so that masking walks shared prefixes once.
class GrammarVocab {
 public:
  // pieces[id]: the bytes token id adds to the output ("" for control tokens);
  // end_of_generation[id] != 0 for EOS/EOT-like tokens.
  GrammarVocab(std::vector<std::string> pieces, std::vector<uint8_t> end_of_generation);

  int32_t n_vocab() const { return static_cast<int32_t>(pieces_.size()); }
  const std::string& piece(int32_t id) const { return pieces_[static_cast<size_t>(id)]; }
  bool is_end_of_generation(int32_t id) const { return eog_[static_cast<size_t>(id)] != 0; }

  struct Node {
    uint32_t first_child = 0, n_children = 0;  // into child_byte / child_node
    uint32_t first_token = 0, n_tokens = 0;    // into node_tokens: tokens whose piece ends here
  };
  const std::vector<Node>& nodes() const { return nodes_; }  // nodes_[0]: the empty prefix
  const std::vector<uint8_t>& child_byte() const { return child_byte_; }
  const std::vector<uint32_t>& child_node() const { return child_node_; }
  const std::vector<int32_t>& node_tokens() const { return node_tokens_; }
  const std::vector<int32_t>& end_tokens() const { return end_tokens_; }
  size_t max_piece_bytes() const { return max_piece_bytes_; }

 private:
  std::vector<std::string> pieces_;
  std::vector<uint8_t> eog_;
  std::vector<Node> nodes_;
  std::vector<uint8_t> child_byte_;
  std::vector<uint32_t> child_node_;
  std::vector<int32_t> node_tokens_;
  std::vector<int32_t> end_tokens_;
  size_t max_piece_bytes_ = 0;
};

// Where a generation stands in the grammar: the set of parse stacks that the output so far
// leaves open, plus the bytes of a code point that a token split.
class GrammarMatcher {
 public:
  explicit GrammarMatcher(std::shared_ptr<const Grammar> grammar);
  ~GrammarMatcher();
  GrammarMatcher(const GrammarMatcher&) = delete;
  GrammarMatcher& operator=(const GrammarMatcher&) = delete;

  void reset();  // back to the start of the root rule
  const Grammar& grammar() const { return *grammar_; }

  // Whether appending bytes keeps the output a prefix of some sentence.
  bool can_accept(std::string_view bytes) const;
  // Appends bytes; returns false (and leaves the matcher dead) if they break the grammar.
  bool accept(std::string_view bytes);

  bool is_accepting() const;  // the output is a complete sentence
  bool is_done() const;       // complete, and nothing may follow
  bool is_dead() const;       // no continuation is possible (a rejected accept())

  // The bytes the grammar forces next: while every open stack wants the same one code
  // point and the output cannot end, that code point (at most max_bytes in all; "" while a
  // token has split a code point). Emitting them costs no sampling.
  std::string forced_bytes(size_t max_bytes) const;

  // The token rules the sampler uses: a token with a non-empty piece is allowed when the
  // grammar can take its bytes; an end-of-generation token when the output is complete;
  // other tokens with empty pieces (control tokens) never.
  bool allows(const GrammarVocab& vocab, int32_t token) const;
  // allowed[id] = allows(vocab, id) for the whole vocabulary, by one walk of the trie.
  // Returns how many are allowed.
  int32_t allowed_tokens(const GrammarVocab& vocab, std::vector<uint8_t>& allowed) const;

  // Every operation above is bounded: it may take at most this many parse-stack steps
  // (advancing or expanding one stack by one element), or it throws xent::Error saying the
  // grammar is too ambiguous. work_of_last_operation() is what the last one took.
  static uint64_t max_work();
  uint64_t work_of_last_operation() const;

 private:
  struct Arena;
  struct Utf8 {  // the bytes of an unfinished code point
    uint8_t bytes[4] = {0, 0, 0, 0};
    uint8_t n = 0;     // bytes held
    uint8_t need = 0;  // bytes the code point takes in all
  };
  enum class Step { Invalid, Partial, Complete };
  static Step push_byte(Utf8& u, uint8_t b, uint32_t* cp);
  bool partial_fits(const std::vector<uint32_t>& tops, const Utf8& u) const;
  void expand(uint32_t stack, std::vector<uint32_t>& out) const;
  void advance(const std::vector<uint32_t>& tops, uint32_t cp, std::vector<uint32_t>& out) const;
  void load(std::vector<uint32_t>& tops) const;
  bool feed(std::vector<uint32_t>& tops, Utf8& u, std::string_view bytes) const;
  int32_t walk_mask(const GrammarVocab& vocab, std::vector<uint8_t>& allowed) const;
  void walk(const GrammarVocab& vocab, uint32_t node, size_t depth, const Utf8& u,
            std::vector<uint8_t>& allowed, int32_t* n_allowed) const;

  std::shared_ptr<const Grammar> grammar_;
  // The committed state: each open stack as rule positions, bottom first; an empty stack
  // means the output so far is a complete sentence.
  std::vector<std::vector<uint32_t>> stacks_;
  Utf8 partial_;
  std::unique_ptr<Arena> arena_;  // scratch for checks and masks; rebuilt from stacks_
  mutable std::vector<std::vector<uint32_t>> depth_tops_;  // per trie depth, reused
  // Masks already walked, by state (the stacks, the split code point, the vocabulary): a
  // long string or a repeated structure comes back to the same state. Bounded in bytes.
  struct CachedMask {
    std::vector<uint8_t> allowed;
    int32_t n_allowed;
  };
  mutable std::unordered_map<std::string, CachedMask> mask_cache_;
  mutable size_t mask_cache_bytes_ = 0;
};

}  // namespace xent
