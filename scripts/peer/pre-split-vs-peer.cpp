// Word boundaries of our gpt-4o and tekken pre-tokenizers against the peer's own splitter
// (unicode_regex_split in llama.cpp's src/unicode.cpp), fed the regexes the peer's
// src/llama-vocab.cpp gives those types (read from that file), on the texts of .inp files
// and on 20,000 seeded random texts drawn from letters of both cases, digits, marks, CJK,
// Unicode 15.1 letters, spaces and symbols. A check run by hand, not part of xent's build;
// L: the llama.cpp ollama vendored (ec98e2002: c392e5094 has no gpt-4o), see newer-peer/.
//   L=<ollama checkout>/llama/llama.cpp/src T=runtime/tokenizer
//   g++ -std=c++20 -O1 -I$L -I$L/../include -I. -o /tmp/split scripts/peer/pre-split-vs-peer.cpp
//     $L/unicode.cpp $L/unicode-data.cpp $T/tokenizer-unicode.cpp $T/tokenizer-unicode-data.cpp $T/tokenizer-pre.cpp
//   /tmp/split $L/llama-vocab.cpp [TEXTS.inp]...
#include "unicode.h"
#include "runtime/tokenizer/tokenizer-pre.h"
#include "runtime/tokenizer/tokenizer-unicode.h"
#include <cstdio>
#include <random>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>
// The first string literal after `label` outside // comments, unescaped.
static std::string first_literal_after(const std::string& code, const std::string& label) {
  size_t p = code.find(label);
  if (p == std::string::npos) return "";
  std::istringstream lines(code.substr(p));
  std::string line;
  while (std::getline(lines, line)) {
    const size_t q = line.find_first_not_of(" \t");
    if (q == std::string::npos || line.compare(q, 2, "//") == 0 || line[q] != '"') continue;
    std::string out;
    for (size_t i = q + 1; i < line.size() && line[i] != '"'; ++i) {
      if (line[i] == '\\' && i + 1 < line.size()) {
        const char c = line[++i];
        out += c == 'r' ? '\r' : c == 'n' ? '\n' : c;
      } else {
        out += line[i];
      }
    }
    return out;
  }
  return "";
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PEER/src/llama-vocab.cpp [TEXTS.inp]...\n", argv[0]);
    return 2;
  }
  std::ifstream vocab_src(argv[1]);
  std::stringstream vs;
  vs << vocab_src.rdbuf();
  const std::string gpt4o = first_literal_after(vs.str(), "case LLAMA_VOCAB_PRE_TYPE_GPT4O:");
  const std::string tekken = first_literal_after(vs.str(), "case LLAMA_VOCAB_PRE_TYPE_TEKKEN:");
  if (gpt4o.empty() || tekken.empty()) {
    std::fprintf(stderr, "no gpt-4o or tekken regex in %s\n", argv[1]);
    return 1;
  }
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::string fuzz;
  {
    const std::vector<std::string> pool = {
        "a", "A", "b", "B", "z", "Z", "s", "S", "t", "T", "d", "D", "l", "L", "m", "M", "r", "R", "e", "E", "v", "V",
        "0", "9", " ", "\n", "\r", "\t", "/", "'", "!", ".", ",", "-", "_", "\u00c9", "\u00e9", "\u00c0", "\u00df",
        "\u03a9", "\u03c9", "\u01c5", "\u0301", "\u0303", "\u4f60", "\U0002EBF0", "\u00a0", "\u3000",
        "\U0001F600", "\u0661", "\u00bd", "\u2177", "\u200b", "\u2028"};
    std::mt19937 rng(16);
    for (int k = 0; k < 20000; ++k) {
      const int n = 1 + static_cast<int>(rng() % 24);
      for (int i = 0; i < n; ++i) fuzz += pool[rng() % pool.size()];
      fuzz += sep;
    }
  }
  for (int f = 1; f < argc; ++f) {
    std::string data = fuzz;
    if (f > 1) {
      std::ifstream in(argv[f], std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      data = ss.str();
    }
    for (auto [name, re] : {std::pair<const char*, std::string>{"gpt-4o", gpt4o}, {"tekken", tekken}}) {
      auto pre = xent::PreTokenizer::for_name(name);
      size_t texts = 0, same = 0, pieces = 0;
      size_t pos = 0;
      for (size_t m; (m = data.find(sep, pos)) != std::string::npos; pos = m + sep.size()) {
        std::string text = data.substr(pos, m - pos); ++texts;
        std::vector<size_t> peer;
        for (auto& w : unicode_regex_split(text, {re})) peer.push_back(unicode_cpts_from_utf8(w).size());
        auto cps = xent::unicode::decode_utf8(text);
        std::vector<size_t> ours;
        for (auto [b, e] : pre->split(cps)) { std::string s; for (size_t i = b; i < e; ++i) xent::unicode::append_utf8(cps[i], s); ours.push_back(s.size()); }
        if (ours == peer) { ++same; pieces += ours.size(); } else if (texts - same <= 3) printf("%s differs on text %zu\n", name, texts - 1);
      }
      printf("%s %s: %zu/%zu texts split identically (%zu pieces)\n", f > 1 ? argv[f] : "random", name, same, texts, pieces);
    }
  }
}
