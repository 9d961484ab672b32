// The body of fuzz-tokenizer-bpe and fuzz-tokenizer-spm: text -> ids -> text on shipped
// vocabularies loaded once, the first input byte choosing the vocabulary. Every id must be
// in range; plain valid UTF-8 must come back unchanged (both tokenizers are lossless on it:
// byte-level BPE maps every byte, SentencePiece falls back to byte tokens) - except on a
// SentencePiece vocabulary without the lone "▁" piece (the tiny Llama's, cut to 8,192
// entries): a space it cannot merge falls back to the bytes of "▁" itself, which decode
// as that character, as in the reference runtime; and text holding "▁" itself, which is
// SentencePiece's space marker and decodes as a space.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "formats/error.h"
#include "formats/gguf.h"
#include "fuzz-common.h"
#include "runtime/tokenizer/tokenizer.h"

namespace xent::fuzz {

struct LoadedTokenizer {
  std::string name;
  std::unique_ptr<gguf::Reader> file;
  std::unique_ptr<Tokenizer> tok;
  bool lossless = true;  // decode(encode(valid UTF-8)) is the text
};

inline std::vector<LoadedTokenizer>& tokenizers() {
  static std::vector<LoadedTokenizer> all;
  return all;
}

inline void load_tokenizers(const std::vector<std::string>& rel_paths) {
  for (const std::string& rel : rel_paths) {
    LoadedTokenizer t;
    t.name = rel;
    t.file = gguf::Reader::open(shared_path(rel));
    t.tok = Tokenizer::from_gguf(*t.file);
    t.lossless = t.tok->model_name() != "llama" || t.tok->find_token("\xe2\x96\x81") >= 0;
    tokenizers().push_back(std::move(t));
  }
}

// Strict UTF-8: no overlong forms, surrogates or code points past U+10FFFF.
inline bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t c = static_cast<uint8_t>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if (c >= 0xc2 && c <= 0xdf) { n = 1; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { n = 2; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { n = 3; cp = c & 0x07; }
    else return false;
    if (i + n >= s.size()) return false;  // truncated
    for (size_t k = 1; k <= n; ++k) {
      const uint8_t d = static_cast<uint8_t>(s[i + k]);
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += n + 1;
  }
  return true;
}

inline int tokenizer_one_input(const uint8_t* data, size_t size) {
  if (size == 0 || tokenizers().empty()) return 0;
  const LoadedTokenizer& t = tokenizers()[data[0] % tokenizers().size()];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    for (int mode = 0; mode < 2; ++mode) {
      const bool special = mode == 1;
      const std::vector<int32_t> ids = t.tok->encode(text, special, special);
      for (int32_t id : ids)
        if (id < 0 || id >= t.tok->n_vocab()) finding("tokenizer id out of range", t.name + ": " + std::to_string(id));
      const std::string back = t.tok->decode(ids, special);
      const bool spm = t.tok->model_name() == "llama";
      if (!special && t.lossless && valid_utf8(text) && !(spm && text.find("\xe2\x96\x81") != text.npos) &&
          back != text)
        finding("round trip", t.name + ": " + std::to_string(text.size()) + " bytes in, " +
                                  std::to_string(back.size()) + " bytes back: '" + std::string(back) + "'");
      for (int32_t id : ids) (void)t.tok->token_to_piece(id, special);
    }
  } catch (const Error&) {
    // A refusal with a message is allowed (none is expected for text).
  } catch (const std::exception& e) {
    unexpected_exception(e);
  }
  return 0;
}

}  // namespace xent::fuzz
