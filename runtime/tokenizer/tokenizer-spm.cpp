// SentencePiece BPE (tokenizer.ggml.model = "llama"): spaces become "▁", adjacent pieces
// merge highest score first, and what no token covers falls back to <0xXX> byte tokens.
#include <algorithm>
#include <array>
#include <cstdio>
#include <queue>

#include "formats/error.h"
#include "formats/gguf.h"
#include "runtime/tokenizer/tokenizer-internal.h"
#include "runtime/tokenizer/tokenizer-unicode.h"

namespace xent {

namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581 "▁"

class SpmTokenizer final : public TokenizerImpl {
 public:
  explicit SpmTokenizer(const gguf::Reader& f) {
    pre_ = f.get_string("tokenizer.ggml.pre").value_or("default");  // not used by SentencePiece
    load_common(f, /*add_bos_default=*/true, /*add_space_default=*/true);
    scores_.assign(tokens_.size(), 0.0f);
    if (const auto scores = f.get_float_array("tokenizer.ggml.scores")) {
      if (scores->size() != tokens_.size()) {
        throw Error("tokenizer: tokenizer.ggml.scores has " + std::to_string(scores->size()) +
                    " entries but there are " + std::to_string(tokens_.size()) + " tokens");
      }
      scores_ = *scores;
    }
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof(name), "<0x%02X>", b);
      int32_t id = lookup(name);
      if (id < 0) {
        const char c = static_cast<char>(b);
        id = lookup(std::string_view(&c, 1));
      }
      byte_tokens_[b] = id >= 0 ? id : unk_;
    }
  }

  std::string token_to_piece(int32_t id, bool render_special) const override {
    if (id < 0 || id >= n_vocab()) return "";
    const std::string& text = tokens_[id];
    switch (types_[id]) {
      case TokenType::Control:
      case TokenType::Unknown:
        return render_special ? text : "";
      case TokenType::UserDefined:
        return text;
      case TokenType::Byte: {
        unsigned v = 0;
        if (text.size() == 6 && std::sscanf(text.c_str(), "<0x%02X>", &v) == 1) return std::string(1, static_cast<char>(v));
        return "";
      }
      case TokenType::Normal: {
        std::string out;
        out.reserve(text.size());
        for (size_t i = 0; i < text.size();) {
          if (text.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
            out.push_back(' ');
            i += kSpaceMark.size();
          } else {
            out.push_back(text[i++]);
          }
        }
        return out;
      }
      default:
        return "";
    }
  }

 protected:
  void encode_fragment(std::string_view raw, bool at_start, std::vector<int32_t>& out) const override {
    std::string text;
    text.reserve(raw.size() + 8);
    if (add_space_prefix_ && at_start) text += kSpaceMark;
    for (char c : raw) {
      if (c == ' ') {
        text += kSpaceMark;
      } else {
        text.push_back(c);
      }
    }

    std::vector<Symbol> sym;
    sym.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
      const size_t n = std::min(unicode::utf8_len(static_cast<uint8_t>(text[i])), text.size() - i);
      const int32_t idx = static_cast<int32_t>(sym.size());
      sym.push_back({static_cast<uint32_t>(i), static_cast<uint32_t>(n), idx - 1, -1});
      if (idx > 0) sym[idx - 1].next = idx;
      i += n;
    }

    std::priority_queue<Candidate> queue;
    auto consider = [&](int32_t l, int32_t r) {
      if (l < 0 || r < 0) return;
      const uint32_t size = sym[l].len + sym[r].len;
      const int32_t id = lookup(std::string_view(text.data() + sym[l].start, size));
      if (id < 0) return;
      queue.push({scores_[id], l, size});
    };
    for (int32_t i = 0; i + 1 < static_cast<int32_t>(sym.size()); ++i) consider(i, i + 1);
    while (!queue.empty()) {
      const Candidate c = queue.top();
      queue.pop();
      Symbol& l = sym[c.left];
      if (l.len == 0 || l.next < 0) continue;
      Symbol& r = sym[l.next];
      if (r.len == 0 || l.len + r.len != c.size) continue;
      l.len += r.len;
      r.len = 0;
      l.next = r.next;
      if (l.next >= 0) sym[l.next].prev = c.left;
      consider(l.prev, c.left);
      consider(c.left, l.next);
    }
    // Merged pieces are tokens by construction; a leftover single character may not be.
    for (int32_t i = 0; i >= 0 && i < static_cast<int32_t>(sym.size()); i = sym[i].next) {
      const std::string_view piece(text.data() + sym[i].start, sym[i].len);
      const int32_t id = lookup(piece);
      if (id >= 0) {
        out.push_back(id);
        continue;
      }
      for (unsigned char ch : piece) {
        if (byte_tokens_[ch] >= 0) out.push_back(byte_tokens_[ch]);
      }
    }
  }

 private:
  struct Symbol {
    uint32_t start, len;
    int32_t prev, next;
  };
  struct Candidate {
    float score;
    int32_t left;
    uint32_t size;
    bool operator<(const Candidate& o) const {  // top = highest score, then leftmost
      return score != o.score ? score < o.score : left > o.left;
    }
  };

  std::vector<float> scores_;
  std::array<int32_t, 256> byte_tokens_{};
};

}  // namespace

std::unique_ptr<Tokenizer> make_spm_tokenizer(const gguf::Reader& f) { return std::make_unique<SpmTokenizer>(f); }

}  // namespace xent
