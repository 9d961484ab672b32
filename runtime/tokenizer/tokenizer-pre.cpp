// Hand-written matchers for the pre-tokenizer regexes of the BPE vocabularies we support
// (std::regex has no \p{..}); each step mirrors one regex of the reference's sequence.
#include "runtime/tokenizer/tokenizer-pre.h"

#include <string>

#include "runtime/tokenizer/tokenizer-unicode.h"

namespace xent {

namespace {

using unicode::is_letter;
using unicode::is_number;
using unicode::is_whitespace;
using Pieces = std::vector<std::pair<size_t, size_t>>;

// Emits matches as they are found and the unmatched stretches between them.
class PieceEmitter {
 public:
  PieceEmitter(size_t begin, Pieces& out) : last_(begin), out_(out) {}
  void match(size_t begin, size_t end) {
    if (begin > last_) out_.emplace_back(last_, begin);
    out_.emplace_back(begin, end);
    last_ = end;
  }
  void finish(size_t end) {
    if (end > last_) out_.emplace_back(last_, end);
  }

 private:
  size_t last_;
  Pieces& out_;
};

bool ascii_lower_is(uint32_t c, char want) {
  if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
  return c == static_cast<uint32_t>(want);
}

// Length of an English contraction ('s 't 're 've 'm 'll 'd) at pos, 0 if none (also when
// pos is the end: a word that runs to the end of the text has nothing after it).
size_t contraction_len(const uint32_t* cps, size_t pos, size_t end, bool any_case) {
  if (pos + 1 >= end || cps[pos] != '\'') return 0;
  auto is = [&](size_t i, char c) {
    return any_case ? ascii_lower_is(cps[i], c) : cps[i] == static_cast<uint32_t>(c);
  };
  if (is(pos + 1, 's') || is(pos + 1, 't') || is(pos + 1, 'm') || is(pos + 1, 'd')) return 2;
  if (pos + 2 < end && ((is(pos + 1, 'r') && is(pos + 2, 'e')) || (is(pos + 1, 'v') && is(pos + 2, 'e')) ||
                        (is(pos + 1, 'l') && is(pos + 2, 'l')))) {
    return 3;
  }
  return 0;
}

bool is_other(uint32_t c) { return !is_whitespace(c) && !is_letter(c) && !is_number(c); }

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
class Gpt2Step : public PreSplitStep {
 public:
  void split(const uint32_t* cps, size_t begin, size_t end, Pieces& out) const override {
    PieceEmitter emit(begin, out);
    size_t pos = begin;
    while (pos < end) {
      if (size_t n = contraction_len(cps, pos, end, false)) {
        emit.match(pos, pos + n);
        pos += n;
        continue;
      }
      // Optional single space, then a run of one kind (letters, digits, other).
      const size_t body = (cps[pos] == ' ' && pos + 1 < end) ? pos + 1 : pos;
      const uint32_t c = cps[body];
      bool (*same_kind)(uint32_t) = nullptr;
      if (is_letter(c)) {
        same_kind = is_letter;
      } else if (is_number(c)) {
        same_kind = is_number;
      } else if (is_other(c)) {
        same_kind = is_other;
      }
      if (same_kind) {
        size_t e = body + 1;
        while (e < end && same_kind(cps[e])) ++e;
        emit.match(pos, e);
        pos = e;
        continue;
      }
      // Whitespace: keep the last one for the next word unless the run ends the text.
      size_t e = pos;
      while (e < end && is_whitespace(cps[e])) ++e;
      if (e - pos > 1 && e < end) --e;
      if (e == pos) e = pos + 1;  // cannot happen (every code point has a kind); be safe
      emit.match(pos, e);
      pos = e;
    }
    emit.finish(end);
  }
};

// The Llama 3 pattern and the ones derived from it, which differ in how a word is made:
//   llama3 (qwen2: \p{N} alone)   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//                                 ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   gpt-4o  [^\r\n\p{L}\p{N}]?UPPER*LOWER+(?i:'s|..)?|[^\r\n\p{L}\p{N}]?UPPER+LOWER*(?i:'s|..)?|\p{N}{1,3}|
//            ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   tekken  as gpt-4o without the contractions, with \p{N} alone.
// UPPER and LOWER are the reference runtime's, not tokenizer.json's: it runs these two
// patterns through std::regex over a text where every non-ASCII letter is one placeholder,
// so only ASCII letters have a case (A-Z upper, a-z lower, any other letter both) and
// marks (\p{M}) are not part of a word.
struct WordRules {
  enum class Words { kLetters, kCased };
  Words words;
  bool contractions;       // as their own alternative (kLetters) or after a word (kCased)
  size_t max_digits;
  bool slash_after_other;  // "[\r\n/]*" after a symbol run instead of "[\r\n]*"
};

class Llama3Step : public PreSplitStep {
 public:
  explicit Llama3Step(WordRules rules) : rules_(rules) {}
  void split(const uint32_t* cps, size_t begin, size_t end, Pieces& out) const override {
    PieceEmitter emit(begin, out);
    auto crlf = [](uint32_t c) { return c == '\r' || c == '\n'; };
    const bool cased = rules_.words == WordRules::Words::kCased;
    size_t pos = begin;
    while (pos < end) {
      const uint32_t c = cps[pos];
      if (!cased && rules_.contractions) {
        if (size_t n = contraction_len(cps, pos, end, true)) {
          emit.match(pos, pos + n);
          pos += n;
          continue;
        }
      }
      // A word, with one leading code point that is no letter, digit or line break.
      if (!crlf(c) && !is_number(c)) {
        const size_t body = is_letter(c) ? pos : pos + 1;
        if (body < end && is_letter(cps[body])) {
          size_t e = cased ? cased_word_end(cps, body, end) : body + 1;
          if (!cased) {
            while (e < end && is_letter(cps[e])) ++e;
          } else if (rules_.contractions) {
            e += contraction_len(cps, e, end, true);
          }
          emit.match(pos, e);
          pos = e;
          continue;
        }
      }
      if (is_number(c)) {
        size_t e = pos + 1;
        while (e < end && e - pos < rules_.max_digits && is_number(cps[e])) ++e;
        emit.match(pos, e);
        pos = e;
        continue;
      }
      const size_t body = (c == ' ' && pos + 1 < end) ? pos + 1 : pos;
      if (is_other(cps[body])) {
        size_t e = body + 1;
        while (e < end && is_other(cps[e])) ++e;
        while (e < end && (crlf(cps[e]) || (rules_.slash_after_other && cps[e] == '/'))) ++e;
        emit.match(pos, e);
        pos = e;
        continue;
      }
      // Whitespace run: up to its last newline if it has one, else as GPT-2.
      size_t e = pos, last_nl = 0;
      while (e < end && is_whitespace(cps[e])) {
        if (crlf(cps[e])) last_nl = e + 1;
        ++e;
      }
      if (last_nl) {
        e = last_nl;
      } else if (e - pos > 1 && e < end) {
        --e;
      }
      if (e == pos) e = pos + 1;
      emit.match(pos, e);
      pos = e;
    }
    emit.finish(end);
  }

 private:
  static bool is_upper(uint32_t c) { return c < 0x80 ? (c >= 'A' && c <= 'Z') : is_letter(c); }
  static bool is_lower(uint32_t c) { return c < 0x80 ? (c >= 'a' && c <= 'z') : is_letter(c); }

  // End of UPPER*LOWER+, else of UPPER+LOWER*, from a letter at p, as a backtracking regex
  // finds them: the longest UPPER run, given back one at a time until a LOWER can follow.
  static size_t cased_word_end(const uint32_t* cps, size_t p, size_t end) {
    size_t u = p;
    while (u < end && is_upper(cps[u])) ++u;
    for (size_t k = u + 1; k-- > p;) {
      if (k < end && is_lower(cps[k])) {
        size_t e = k + 1;
        while (e < end && is_lower(cps[e])) ++e;
        return e;
      }
    }
    return u;  // UPPER+ with no LOWER after it (a letter is one or the other, so u > p)
  }

  WordRules rules_;
};

// prefix? class{min,max} with an optional end anchor: covers the simple regexes of the
// split sequences ("\p{N}", "\s?\p{L}+", "[0-9][0-9][0-9]", "\s+$", ...).
class RunStep : public PreSplitStep {
 public:
  enum class Prefix { kNone, kWhitespace, kSpace };
  RunStep(bool (*cls)(uint32_t), size_t min, size_t max, Prefix prefix = Prefix::kNone,
          bool at_end = false)
      : cls_(cls), min_(min), max_(max), prefix_(prefix), at_end_(at_end) {}

  void split(const uint32_t* cps, size_t begin, size_t end, Pieces& out) const override {
    PieceEmitter emit(begin, out);
    size_t pos = begin;
    while (pos < end) {
      size_t n = match_at(cps, pos, end);
      if (n) {
        emit.match(pos, pos + n);
        pos += n;
      } else {
        ++pos;
      }
    }
    emit.finish(end);
  }

 private:
  size_t run(const uint32_t* cps, size_t from, size_t end) const {
    size_t e = from;
    while (e < end && e - from < max_ && cls_(cps[e])) ++e;
    const size_t n = e - from;
    if (n < min_) return 0;
    if (at_end_ && e != end) return 0;  // only used with unbounded runs
    return n;
  }
  bool prefix_ok(uint32_t c) const {
    return (prefix_ == Prefix::kWhitespace && is_whitespace(c)) || (prefix_ == Prefix::kSpace && c == ' ');
  }
  size_t match_at(const uint32_t* cps, size_t pos, size_t end) const {
    if (prefix_ != Prefix::kNone && prefix_ok(cps[pos]) && pos + 1 < end) {
      if (size_t n = run(cps, pos + 1, end)) return n + 1;
    }
    return run(cps, pos, end);
  }

  bool (*cls_)(uint32_t);
  size_t min_, max_;
  Prefix prefix_;
  bool at_end_;
};

constexpr size_t kUnbounded = ~size_t(0);

bool in_ranges(uint32_t c, const unicode::CodepointRange* r, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (c >= r[i].first && c <= r[i].last) return true;
  }
  return false;
}

bool is_crlf(uint32_t c) { return c == '\r' || c == '\n'; }
bool is_ascii_digit(uint32_t c) { return c >= '0' && c <= '9'; }
bool is_punct(uint32_t c) { return unicode::is_punctuation(c); }

// [\p{P}\$\+<=>\^~\|]
bool is_default_punct(uint32_t c) {
  return unicode::is_punctuation(c) || c == '$' || c == '+' || c == '<' || c == '=' || c == '>' ||
         c == '^' || c == '~' || c == '|';
}
// Falcon's class adds the backtick.
bool is_falcon_punct(uint32_t c) { return is_default_punct(c) || c == '`'; }

// deepseek-llm's letter class: the cased-letter ranges listed in its tokenizer.json.
const unicode::CodepointRange kDeepseekLetters[] = {
    {0x41, 0x5A}, {0x61, 0x7A}, {0xB5, 0xB5}, {0xC0, 0xD6}, {0xD8, 0xF6}, {0xF8, 0x1BA},
    {0x1BC, 0x1BF}, {0x1C4, 0x293}, {0x295, 0x2AF}, {0x370, 0x373}, {0x376, 0x377},
    {0x37B, 0x37D}, {0x37F, 0x37F}, {0x386, 0x386}, {0x388, 0x38A}, {0x38C, 0x38C},
    {0x38E, 0x3A1}, {0x3A3, 0x3F5}, {0x3F7, 0x481}, {0x48A, 0x52F}, {0x531, 0x556},
    {0x10A0, 0x10C5}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD}, {0x1C90, 0x1CBA}, {0x1CBD, 0x1CBF},
    {0x1D00, 0x1D2B}, {0x1D6B, 0x1D77}, {0x1D79, 0x1D9A}, {0x1E00, 0x1F15}, {0x1F18, 0x1F1D},
    {0x1F20, 0x1F45}, {0x1F48, 0x1F4D}, {0x1F50, 0x1F57}, {0x1F59, 0x1F59}, {0x1F5B, 0x1F5B},
    {0x1F5D, 0x1F5D}, {0x1F5F, 0x1F7D}, {0x1F80, 0x1FB4}, {0x1FB6, 0x1FBC}, {0x1FBE, 0x1FBE},
    {0x1FC2, 0x1FC4}, {0x1FC6, 0x1FCC}, {0x1FD0, 0x1FD3}, {0x1FD6, 0x1FDB}, {0x1FE0, 0x1FEC},
    {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC}, {0x2102, 0x2102}, {0x2107, 0x2107}, {0x210A, 0x2113},
    {0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124}, {0x2126, 0x2126}, {0x2128, 0x2128},
    {0x212A, 0x212D}, {0x212F, 0x2134}, {0x2139, 0x2139}, {0x213C, 0x213F}, {0x2145, 0x2149},
    {0x214E, 0x214E}, {0x2183, 0x2184}, {0x2C00, 0x2C7B}, {0x2C7E, 0x2CE4}, {0x2CEB, 0x2CEE},
    {0x2CF2, 0x2CF3}, {0xA640, 0xA66D}, {0xA680, 0xA69B}, {0xA722, 0xA76F}, {0xA771, 0xA787},
    {0xA78B, 0xA78E}, {0xAB70, 0xABBF}, {0xFB00, 0xFB06}, {0xFB13, 0xFB17}, {0xFF21, 0xFF3A},
    {0xFF41, 0xFF5A}, {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB},
    {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};
bool is_deepseek_letter(uint32_t c) {
  return in_ranges(c, kDeepseekLetters, sizeof(kDeepseekLetters) / sizeof(kDeepseekLetters[0]));
}

// [!-/:-~！-／：-～‘-‟　-。]. The reference maps non-ASCII whitespace to U+000B before
// matching these literal classes, so U+3000 never matches here.
const unicode::CodepointRange kDeepseekPunct[] = {
    {0x21, 0x2F}, {0x3A, 0x7E}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E}, {0x2018, 0x201F}, {0x3000, 0x3002},
};
bool is_deepseek_punct(uint32_t c) {
  return !(c > 0x7F && is_whitespace(c)) &&
         in_ranges(c, kDeepseekPunct, sizeof(kDeepseekPunct) / sizeof(kDeepseekPunct[0]));
}

// [一-龥ࠀ-一가-퟿] (U+3000 lies in the middle range but is whitespace, see above).
const unicode::CodepointRange kDeepseekCjk[] = {{0x4E00, 0x9FA5}, {0x0800, 0x4E00}, {0xAC00, 0xD7FF}};
bool is_deepseek_cjk(uint32_t c) { return !is_whitespace(c) && in_ranges(c, kDeepseekCjk, 3); }

// [^(\s|.,!?…。，、।۔،)]
bool is_bloom_word(uint32_t c) {
  static const uint32_t kStops[] = {'(', '|', '.', ',', '!', '?', 0x2026, 0x3002, 0xFF0C, 0x3001, 0x0964, 0x06D4, 0x060C, ')'};
  if (is_whitespace(c)) return false;
  for (uint32_t s : kStops) {
    if (c == s) return false;
  }
  return true;
}

}  // namespace

std::unique_ptr<PreTokenizer> PreTokenizer::for_name(std::string_view pre) {
  using P = RunStep::Prefix;
  using Words = WordRules::Words;
  auto p = std::unique_ptr<PreTokenizer>(new PreTokenizer());
  auto& s = p->steps_;
  auto add = [&](PreSplitStep* step) { s.emplace_back(step); };

  auto is_any = [&](std::initializer_list<std::string_view> names) {
    for (auto n : names) {
      if (pre == n) return true;
    }
    return false;
  };

  if (is_any({"default", ""})) {
    add(new RunStep(is_default_punct, 1, kUnbounded));
    add(new Gpt2Step());
    add(new RunStep(is_number, 1, kUnbounded));
    add(new RunStep(is_ascii_digit, 3, 3));
  } else if (is_any({"gpt-2", "mpt", "olmo", "jais", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en",
                     "jina-v2-es", "jina-v2-de", "jina-v2-code", "roberta-bpe", "trillion"})) {
    add(new Gpt2Step());
  } else if (is_any({"llama3", "llama-v3", "llama-bpe", "falcon3", "dbrx", "smaug-bpe", "chatglm-bpe"})) {
    add(new Llama3Step({Words::kLetters, /*contractions=*/true, 3, /*slash_after_other=*/false}));
  } else if (is_any({"qwen2", "deepseek-r1-qwen", "stablelm2", "megrez"})) {
    add(new Llama3Step({Words::kLetters, /*contractions=*/true, 1, /*slash_after_other=*/false}));
  } else if (is_any({"gpt-4o", "llama4"})) {
    add(new Llama3Step({Words::kCased, /*contractions=*/true, 3, /*slash_after_other=*/true}));
  } else if (pre == "tekken") {
    add(new Llama3Step({Words::kCased, /*contractions=*/false, 1, /*slash_after_other=*/true}));
  } else if (is_any({"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"})) {
    add(new RunStep(is_number, 1, 1));
    add(new Gpt2Step());
  } else if (pre == "falcon") {
    add(new RunStep(is_falcon_punct, 1, kUnbounded));
    add(new Gpt2Step());
    add(new RunStep(is_ascii_digit, 3, 3));
  } else if (pre == "deepseek-llm") {
    add(new RunStep(is_crlf, 1, 1));
    add(new RunStep(is_deepseek_letter, 1, kUnbounded, P::kWhitespace));
    add(new RunStep(is_deepseek_punct, 1, kUnbounded, P::kWhitespace));
    add(new RunStep(is_whitespace, 1, kUnbounded, P::kNone, /*at_end=*/true));
    add(new RunStep(is_deepseek_cjk, 1, kUnbounded));
    add(new RunStep(is_number, 1, kUnbounded));
  } else if (pre == "deepseek-coder") {
    add(new RunStep(is_crlf, 1, 1));
    add(new RunStep(is_letter, 1, kUnbounded, P::kWhitespace));
    add(new RunStep(is_punct, 1, kUnbounded, P::kWhitespace));
    add(new RunStep(is_deepseek_cjk, 1, kUnbounded));
    add(new RunStep(is_number, 1, 1));
  } else if (is_any({"poro-chat", "bloom", "gpt3-finnish"})) {
    add(new RunStep(is_bloom_word, 1, kUnbounded, P::kSpace));
  } else {
    return nullptr;
  }
  return p;
}

std::vector<std::pair<size_t, size_t>> PreTokenizer::split(const std::vector<uint32_t>& cps) const {
  Pieces cur;
  if (cps.empty()) return cur;
  cur.emplace_back(0, cps.size());
  Pieces next;
  for (const auto& step : steps_) {
    next.clear();
    next.reserve(cur.size() * 2);
    for (const auto& [b, e] : cur) step->split(cps.data(), b, e, next);
    cur.swap(next);
  }
  return cur;
}

}  // namespace xent
