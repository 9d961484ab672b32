// Tokenizer front end: picks BPE or SentencePiece from tokenizer.ggml.model, loads the
// vocabulary and special tokens, splits out special-token text, and decodes ids.
#include "runtime/tokenizer/tokenizer.h"

#include <algorithm>
#include <cctype>

#include "formats/error.h"
#include "formats/gguf.h"
#include "runtime/tokenizer/tokenizer-internal.h"

namespace xent {

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::Reader& file) {
  const std::optional<std::string> model = file.get_string("tokenizer.ggml.model");
  if (!model) throw Error("tokenizer: the file has no tokenizer.ggml.model");
  if (*model == "gpt2") return make_bpe_tokenizer(file);
  if (*model == "llama") return make_spm_tokenizer(file);
  throw Error("tokenizer: unsupported tokenizer.ggml.model '" + *model + "' (supported: gpt2, llama)");
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool render_special) const {
  std::string out;
  const auto* impl = dynamic_cast<const TokenizerImpl*>(this);
  // SentencePiece: the space encode put in front of the text goes again, whether the ids
  // start with BOS or not.
  size_t strip_at = ids.size();
  if (impl && impl->is_spm() && impl->add_space_prefix() && !ids.empty()) {
    strip_at = (ids[0] == bos_ && bos_ >= 0) ? 1 : 0;
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    std::string piece = token_to_piece(ids[i], render_special);
    if (i == strip_at && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    out += piece;
  }
  return out;
}

bool Tokenizer::is_end_of_generation(int32_t id) const {
  return id >= 0 && std::find(eog_ids_.begin(), eog_ids_.end(), id) != eog_ids_.end();
}

int32_t Tokenizer::find_token(std::string_view text) const {
  if (const auto* impl = dynamic_cast<const TokenizerImpl*>(this)) return impl->lookup(text);
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i] == text) return static_cast<int32_t>(i);
  }
  return -1;
}

// ---------------------------------------------------------------------------------------
// Loading

void TokenizerImpl::load_common(const gguf::Reader& f, bool add_bos_default, bool add_space_default) {
  model_ = f.get_string("tokenizer.ggml.model").value_or("");
  const auto tokens = f.get_string_array("tokenizer.ggml.tokens");
  if (!tokens) throw Error("tokenizer: the file has no tokenizer.ggml.tokens array");
  if (tokens->empty()) throw Error("tokenizer: tokenizer.ggml.tokens is empty");
  const size_t n = tokens->size();
  if (n > static_cast<size_t>(INT32_MAX)) throw Error("tokenizer: too many tokens");
  tokens_.assign(tokens->begin(), tokens->end());

  types_.assign(n, TokenType::Normal);
  if (const auto types = f.get_int_array("tokenizer.ggml.token_type")) {
    if (types->size() != n) {
      throw Error("tokenizer: tokenizer.ggml.token_type has " + std::to_string(types->size()) +
                  " entries but there are " + std::to_string(n) + " tokens");
    }
    for (size_t i = 0; i < n; ++i) {
      const int64_t t = (*types)[i];
      types_[i] = (t >= 0 && t <= 6) ? static_cast<TokenType>(t) : TokenType::Undefined;
    }
  }

  // Later duplicates win, as in the reference.
  ids_.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) ids_[tokens_[i]] = static_cast<int32_t>(i);

  auto special_id = [&](const char* key, int32_t fallback) -> int32_t {
    const std::optional<int64_t> v = f.get_int(key);
    if (!v) return fallback;
    if (*v < 0 || *v >= static_cast<int64_t>(n)) return fallback;  // bad id: keep the default
    return static_cast<int32_t>(*v);
  };
  const bool spm = model_ == "llama";
  auto in_range = [&](int32_t id) { return id < static_cast<int32_t>(n) ? id : -1; };
  bos_ = special_id("tokenizer.ggml.bos_token_id", spm ? in_range(1) : -1);
  eos_ = special_id("tokenizer.ggml.eos_token_id", spm ? in_range(2) : -1);
  unk_ = special_id("tokenizer.ggml.unknown_token_id", spm ? 0 : -1);
  eot_ = special_id("tokenizer.ggml.eot_token_id", -1);

  add_bos_ = f.get_bool("tokenizer.ggml.add_bos_token").value_or(add_bos_default);
  add_eos_ = f.get_bool("tokenizer.ggml.add_eos_token").value_or(false);
  add_space_prefix_ = f.get_bool("tokenizer.ggml.add_space_prefix").value_or(add_space_default);

  // End of turn / end of generation are recognised by their text; the reference treats
  // such tokens as control tokens even when the file says otherwise.
  static const char* const kEotTexts[] = {
      "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>",
      "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",  // DeepSeek
  };
  static const char* const kEogTexts[] = {
      "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>",
      "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
  };
  if (eot_ < 0) {
    for (const char* t : kEotTexts) {
      const int32_t id = lookup(t);
      if (id >= 0 && id != eos_) {
        eot_ = id;
        types_[id] = TokenType::Control;
        break;
      }
    }
  }
  auto add_eog = [&](int32_t id) {
    if (id >= 0 && std::find(eog_ids_.begin(), eog_ids_.end(), id) == eog_ids_.end()) eog_ids_.push_back(id);
  };
  add_eog(eos_);
  add_eog(eot_);
  for (const char* t : kEogTexts) {
    const int32_t id = lookup(t);
    if (id >= 0) {
      add_eog(id);
      types_[id] = TokenType::Control;
    }
  }
  build_special_index();
  set_strip_rules(f);
}

// The reference keys these on the model, not on anything in the tokenizer metadata: Jina v2
// drops the whitespace before <mask>; Phi-3 (general.name containing "phi-3" or "phi3", in
// any case) the whitespace after every special token but <unk>, <s> and <|endoftext|>.
void TokenizerImpl::set_strip_rules(const gguf::Reader& f) {
  strip_.assign(tokens_.size(), 0);
  std::string name = f.get_string("general.name").value_or("");
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  auto set = [&](std::string_view token, uint8_t flag, bool on) {
    const int32_t id = lookup(token);
    if (id < 0) return;
    strip_[id] = on ? (strip_[id] | flag) : (strip_[id] & ~flag);
  };
  const bool jina = pre_.find("jina-v2-de") != std::string::npos || pre_.find("jina-v2-es") != std::string::npos ||
                    pre_.find("jina-v2-code") != std::string::npos;
  if (jina) {
    set("<mask>", kStripLeft, true);
  } else if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
    for (int32_t id : specials_) strip_[id] |= kStripRight;
    set("</s>", kStripRight, true);
    for (const char* t : {"<unk>", "<s>", "<|endoftext|>"}) set(t, kStripRight, false);
  }
}

void TokenizerImpl::build_special_index() {
  specials_.clear();
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const TokenType t = types_[i];
    if ((t == TokenType::Control || t == TokenType::UserDefined || t == TokenType::Unknown) &&
        !tokens_[i].empty()) {
      specials_.push_back(static_cast<int32_t>(i));
    }
  }
  std::stable_sort(specials_.begin(), specials_.end(),
                   [&](int32_t a, int32_t b) { return tokens_[a].size() > tokens_[b].size(); });
  trie_.assign(1, TrieNode{});
  for (size_t r = 0; r < specials_.size(); ++r) {
    int32_t node = 0;
    for (unsigned char c : tokens_[specials_[r]]) {
      auto it = trie_[node].next.find(c);
      if (it == trie_[node].next.end()) {
        trie_.emplace_back();
        const int32_t created = static_cast<int32_t>(trie_.size() - 1);
        trie_[node].next.emplace(c, created);
        node = created;
      } else {
        node = it->second;
      }
    }
    if (trie_[node].special_rank < 0) trie_[node].special_rank = static_cast<int32_t>(r);
  }
}

// ---------------------------------------------------------------------------------------
// Encoding

// Splits out special-token text the way the reference does: one special token at a
// time, longest first, each cutting every raw fragment at all its occurrences. User-defined
// tokens are always split out; control and unknown tokens only with parse_special.
std::vector<TokenizerImpl::Fragment> TokenizerImpl::partition(std::string_view text, bool parse_special) const {
  std::vector<Fragment> frags;
  if (text.empty()) return frags;
  frags.push_back({-1, 0, text.size()});
  if (specials_.empty()) return frags;

  // Which special texts occur at all (a trie walk from every byte): usually none, and
  // then the per-token passes below are skipped.
  std::vector<char> present(specials_.size(), 0);
  bool any = false;
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t i = 0; i < text.size(); ++i) {
    int32_t node = 0;
    for (size_t j = i; j < text.size(); ++j) {
      auto it = trie_[node].next.find(s[j]);
      if (it == trie_[node].next.end()) break;
      node = it->second;
      const int32_t r = trie_[node].special_rank;
      if (r >= 0) {
        const TokenType t = types_[specials_[r]];
        if (parse_special || t == TokenType::UserDefined) {
          present[r] = 1;
          any = true;
        }
      }
    }
  }
  if (!any) return frags;

  std::vector<Fragment> next;
  for (size_t r = 0; r < specials_.size(); ++r) {
    if (!present[r]) continue;
    const int32_t id = specials_[r];
    const std::string& st = tokens_[id];
    next.clear();
    for (const Fragment& fr : frags) {
      if (fr.token >= 0) {
        next.push_back(fr);
        continue;
      }
      // isspace() in the C locale, as the reference strips.
      auto space = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
      size_t pos = fr.begin;
      while (pos < fr.end) {
        const size_t m = text.substr(0, fr.end).find(st, pos);
        if (m == std::string_view::npos) break;
        size_t left_end = m;
        if (strip_[id] & kStripLeft) {
          while (left_end > pos && space(text[left_end - 1])) --left_end;
        }
        if (left_end > pos) next.push_back({-1, pos, left_end});
        next.push_back({id, m, m + st.size()});
        pos = m + st.size();
        if (strip_[id] & kStripRight) {
          while (pos < fr.end && space(text[pos])) ++pos;
        }
      }
      if (pos < fr.end) next.push_back({-1, pos, fr.end});
    }
    frags.swap(next);
  }
  return frags;
}

std::vector<int32_t> TokenizerImpl::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special && add_bos_ && bos_ >= 0) out.push_back(bos_);
  bool at_start = true;
  for (const Fragment& fr : partition(text, parse_special)) {
    if (fr.token >= 0) {
      out.push_back(fr.token);
      at_start = true;
    } else {
      encode_fragment(text.substr(fr.begin, fr.end - fr.begin), at_start, out);
      at_start = false;
    }
  }
  if (add_special && add_eos_ && eos_ >= 0) out.push_back(eos_);
  return out;
}

}  // namespace xent
