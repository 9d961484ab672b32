// Byte-level BPE (tokenizer.ggml.model = "gpt2"): GPT-2's byte <-> code point mapping,
// a pre-tokenizer chosen by tokenizer.ggml.pre, and merges applied lowest rank first.
#include <algorithm>
#include <array>
#include <queue>

#include "formats/error.h"
#include "formats/gguf.h"
#include "runtime/tokenizer/tokenizer-internal.h"
#include "runtime/tokenizer/tokenizer-pre.h"
#include "runtime/tokenizer/tokenizer-unicode.h"

namespace xent {

namespace {

// GPT-2 maps every byte to a printable code point: printable Latin-1 bytes to themselves,
// the other 68 to U+0100.. in byte order.
struct ByteMap {
  std::array<std::string, 256> to_text;  // byte -> UTF-8 of its code point
  std::array<int16_t, 512> to_byte;      // code point -> byte, -1 when not a mapped one
  ByteMap() {
    to_byte.fill(-1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const uint32_t cp = keep ? static_cast<uint32_t>(b) : 256u + extra++;
      unicode::append_utf8(cp, to_text[b]);
      to_byte[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

class BpeTokenizer final : public TokenizerImpl {
 public:
  explicit BpeTokenizer(const gguf::Reader& f) {
    std::string pre = f.get_string("tokenizer.ggml.pre").value_or("default");
    pre_tokenizer_ = PreTokenizer::for_name(pre);
    if (!pre_tokenizer_) throw Error("tokenizer: unknown pre-tokenizer tokenizer.ggml.pre = '" + pre + "'");
    pre_ = pre;
    // Llama 3 and tekken vocabularies add BOS and take whole words found in the vocabulary.
    const bool llama3 = pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" || pre == "falcon3" ||
                        pre == "tekken";
    ignore_merges_ = llama3;
    load_common(f, /*add_bos_default=*/llama3, /*add_space_default=*/false);

    const auto merges = f.get_string_array("tokenizer.ggml.merges");
    if (!merges) throw Error("tokenizer: gpt2 tokenizer without tokenizer.ggml.merges");
    merges_.assign(merges->begin(), merges->end());
    ranks_.reserve(merges_.size() * 2);
    for (size_t i = 0; i < merges_.size(); ++i) {
      const std::string& m = merges_[i];
      const size_t sp = m.find(' ', 1);
      if (sp == std::string::npos || sp + 1 >= m.size()) {
        throw Error("tokenizer: merge " + std::to_string(i) + " ('" + m + "') is not two tokens separated by a space");
      }
      ranks_.emplace(std::string_view(m), static_cast<int32_t>(i));  // first one wins
    }
  }

  std::string token_to_piece(int32_t id, bool render_special) const override {
    if (id < 0 || id >= n_vocab()) return "";
    const TokenType t = types_[id];
    if (t == TokenType::Control || t == TokenType::Unknown) return render_special ? tokens_[id] : "";
    if (t == TokenType::UserDefined) return tokens_[id];
    if (t != TokenType::Normal) return "";
    // Undo the byte mapping; a code point outside it is kept as it is.
    std::string out;
    const auto& map = byte_map();
    for (uint32_t cp : unicode::decode_utf8(tokens_[id])) {
      if (cp < map.to_byte.size() && map.to_byte[cp] >= 0) {
        out.push_back(static_cast<char>(map.to_byte[cp]));
      } else {
        unicode::append_utf8(cp, out);
      }
    }
    return out;
  }

 protected:
  void encode_fragment(std::string_view text, bool /*at_start*/, std::vector<int32_t>& out) const override {
    const std::vector<uint32_t> cps = unicode::decode_utf8(text);
    const auto& map = byte_map();
    std::string word, utf8;
    for (const auto& [b, e] : pre_tokenizer_->split(cps)) {
      utf8.clear();
      for (size_t i = b; i < e; ++i) unicode::append_utf8(cps[i], utf8);
      word.clear();
      for (unsigned char c : utf8) word += map.to_text[c];
      encode_word(word, out);
    }
  }

 private:
  struct Symbol {
    uint32_t start, len;
    int32_t prev, next;
  };
  struct Candidate {
    int32_t rank, left;
    uint32_t left_len, right_len;  // to tell a stale candidate from a live one
    bool operator<(const Candidate& o) const {  // priority_queue top = lowest rank, then leftmost
      return rank != o.rank ? rank > o.rank : left > o.left;
    }
  };

  int32_t rank_of(const std::string& word, const Symbol& l, const Symbol& r, std::string& key) const {
    const std::string_view lv(word.data() + l.start, l.len), rv(word.data() + r.start, r.len);
    // The merge's first half never holds a space after its first byte (see the split above).
    if (lv.find(' ', 1) != std::string_view::npos) return -1;
    key.assign(lv);
    key.push_back(' ');
    key.append(rv);
    auto it = ranks_.find(std::string_view(key));
    return it == ranks_.end() ? -1 : it->second;
  }

  void encode_word(const std::string& word, std::vector<int32_t>& out) const {
    if (word.empty()) return;
    if (ignore_merges_) {
      const int32_t id = lookup(word);
      if (id >= 0) {
        out.push_back(id);
        return;
      }
    }
    std::vector<Symbol> sym;
    sym.reserve(word.size());
    for (size_t i = 0; i < word.size();) {
      const size_t n = std::min(unicode::utf8_len(static_cast<uint8_t>(word[i])), word.size() - i);
      const int32_t idx = static_cast<int32_t>(sym.size());
      sym.push_back({static_cast<uint32_t>(i), static_cast<uint32_t>(n), idx - 1, -1});
      if (idx > 0) sym[idx - 1].next = idx;
      i += n;
    }
    std::priority_queue<Candidate> queue;
    std::string key;
    auto consider = [&](int32_t l, int32_t r) {
      if (l < 0 || r < 0) return;
      const int32_t rank = rank_of(word, sym[l], sym[r], key);
      if (rank >= 0) queue.push({rank, l, sym[l].len, sym[r].len});
    };
    for (int32_t i = 0; i + 1 < static_cast<int32_t>(sym.size()); ++i) consider(i, i + 1);
    while (!queue.empty()) {
      const Candidate c = queue.top();
      queue.pop();
      Symbol& l = sym[c.left];
      if (l.len == 0 || l.next < 0) continue;
      Symbol& r = sym[l.next];
      if (l.len != c.left_len || r.len != c.right_len || r.len == 0) continue;
      l.len += r.len;
      r.len = 0;
      l.next = r.next;
      if (l.next >= 0) sym[l.next].prev = c.left;
      consider(l.prev, c.left);
      consider(c.left, l.next);
    }
    for (int32_t i = 0; i >= 0 && i < static_cast<int32_t>(sym.size()); i = sym[i].next) {
      const std::string_view piece(word.data() + sym[i].start, sym[i].len);
      const int32_t id = lookup(piece);
      if (id >= 0) {
        out.push_back(id);
        continue;
      }
      // Not in a (truncated) vocabulary: fall back to single-byte entries, as the reference.
      for (char ch : piece) {
        const int32_t b = lookup(std::string_view(&ch, 1));
        if (b >= 0) out.push_back(b);
      }
    }
  }

  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  bool ignore_merges_ = false;
  std::vector<std::string> merges_;
  std::unordered_map<std::string_view, int32_t> ranks_;  // "left right" -> rank (views into merges_)
};

}  // namespace

std::unique_ptr<Tokenizer> make_bpe_tokenizer(const gguf::Reader& f) { return std::make_unique<BpeTokenizer>(f); }

}  // namespace xent
