// Shared machinery of the tokenizer implementations (not installed): vocabulary lookup,
// special-token splitting, metadata loading; BPE and SentencePiece derive from it.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/tokenizer/tokenizer.h"

namespace xent {

class TokenizerImpl : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const override;

  int32_t lookup(std::string_view text) const {
    auto it = ids_.find(text);
    return it == ids_.end() ? -1 : it->second;
  }
  // SentencePiece's leading "▁": encode adds it, decode removes it.
  bool add_space_prefix() const { return add_space_prefix_; }
  bool is_spm() const { return model_ == "llama"; }

 protected:
  // Piece of text (no special tokens in it). at_start: first fragment or right after a
  // special token (SentencePiece adds its space prefix there).
  virtual void encode_fragment(std::string_view text, bool at_start, std::vector<int32_t>& out) const = 0;

  // Reads tokens, types, special ids and flags; add_bos_default/add_space_default are the
  // per-model defaults the metadata keys override.
  void load_common(const gguf::Reader& f, bool add_bos_default, bool add_space_default);

  struct Fragment {
    int32_t token;      // >= 0: a special token; -1: raw text [begin, end)
    size_t begin, end;
  };
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;

  std::unordered_map<std::string_view, int32_t> ids_;  // views into tokens_
  // Per token: whitespace the reference drops beside it when it splits the token out.
  enum : uint8_t { kStripLeft = 1, kStripRight = 2 };
  std::vector<uint8_t> strip_;
  bool add_space_prefix_ = false;
  int32_t unk_ = -1;

 private:
  void build_special_index();
  void set_strip_rules(const gguf::Reader& f);
  // Special tokens (control, user-defined, unknown), longest text first.
  std::vector<int32_t> specials_;
  // Byte trie over the special texts, to find which of them occur in a text at all.
  struct TrieNode {
    std::unordered_map<uint8_t, int32_t> next;
    int32_t special_rank = -1;  // index into specials_ ending here
  };
  std::vector<TrieNode> trie_;
};

std::unique_ptr<Tokenizer> make_bpe_tokenizer(const gguf::Reader& f);
std::unique_ptr<Tokenizer> make_spm_tokenizer(const gguf::Reader& f);

}  // namespace xent
