// Lexer of the chat-template Jinja subset. Whitespace follows Hugging Face's environment:
// trim_blocks and lstrip_blocks on, plus the explicit `-` / `+` modifiers.
#include "runtime/chat/jinja-lex.h"

#include <cstring>

#include "runtime/chat/jinja.h"

namespace xent::jinja {

namespace {

class Lexer {
 public:
  explicit Lexer(std::string_view src) : src_(src) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      size_t open = find_open(pos_);
      if (open > pos_) push_text(pos_, open);
      if (open >= src_.size()) break;
      advance_to(open);
      char c = src_[pos_ + 1];
      if (c == '#') lex_comment();
      else lex_tag(c == '%');
    }
    apply_whitespace_rules();
    std::vector<Token> out;
    for (auto& t : toks_)
      if (t.kind != Tok::comment && !(t.kind == Tok::text && t.s.empty())) out.push_back(std::move(t));
    Token eof{Tok::eof, {}};
    eof.line = line_;
    eof.column = column_;
    out.push_back(eof);
    return out;
  }

 private:
  std::string_view src_;
  size_t pos_ = 0;
  int line_ = 1, column_ = 1;
  std::vector<Token> toks_;

  size_t find_open(size_t from) const {
    for (size_t k = from; k + 1 < src_.size(); ++k)
      if (src_[k] == '{' && (src_[k + 1] == '{' || src_[k + 1] == '%' || src_[k + 1] == '#')) return k;
    return src_.size();
  }
  void advance_to(size_t to) {
    for (; pos_ < to; ++pos_) {
      if (src_[pos_] == '\n') {
        ++line_;
        column_ = 1;
      } else {
        ++column_;
      }
    }
  }
  Token make(Tok kind, std::string s = {}) const {
    Token t{kind, std::move(s)};
    t.line = line_;
    t.column = column_;
    return t;
  }
  void push_text(size_t from, size_t to) {
    toks_.push_back(make(Tok::text, std::string(src_.substr(from, to - from))));
    advance_to(to);
  }

  void lex_comment() {
    Token t = make(Tok::comment);
    advance_to(pos_ + 2);
    if (pos_ < src_.size() && (src_[pos_] == '-' || src_[pos_] == '+')) {
      (src_[pos_] == '-' ? t.strip : t.plus) = true;
      advance_to(pos_ + 1);
    }
    size_t end = src_.find("#}", pos_);
    if (end == std::string_view::npos) fail("unterminated comment", t.line, t.column);
    if (end > pos_ && src_[end - 1] == '-') t.strip_after = true;
    if (end > pos_ && src_[end - 1] == '+') t.plus_after = true;
    advance_to(end + 2);
    toks_.push_back(t);
  }

  void lex_tag(bool block) {
    Token begin = make(block ? Tok::block_begin : Tok::var_begin);
    advance_to(pos_ + 2);
    if (pos_ < src_.size() && src_[pos_] == '-') {
      begin.strip = true;
      advance_to(pos_ + 1);
    } else if (block && pos_ < src_.size() && src_[pos_] == '+') {
      begin.plus = true;
      advance_to(pos_ + 1);
    }
    toks_.push_back(begin);
    const char close = block ? '%' : '}';
    int braces = 0;  // `}}` inside a dict literal does not close a `{{`
    while (true) {
      while (pos_ < src_.size() && std::strchr(" \t\r\n", src_[pos_])) advance_to(pos_ + 1);
      if (pos_ >= src_.size())
        fail(std::string("unterminated '") + (block ? "{%" : "{{") + "' tag", begin.line, begin.column);
      char c = src_[pos_];
      auto at = [&](size_t k) { return pos_ + k < src_.size() ? src_[pos_ + k] : '\0'; };
      if (braces == 0) {
        size_t skip = 0;
        bool strip = false, plus = false;
        if ((c == '-' || c == '+') && at(1) == close && at(2) == '}') {
          skip = 3;
          (c == '-' ? strip : plus) = true;
        } else if (c == close && at(1) == '}') {
          skip = 2;
        }
        if (skip) {
          Token end = make(block ? Tok::block_end : Tok::var_end);
          end.strip = strip;
          end.plus = plus;
          advance_to(pos_ + skip);
          toks_.push_back(end);
          return;
        }
      }
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t e = pos_;
        while (e < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) ++e;
        toks_.push_back(make(Tok::name, std::string(src_.substr(pos_, e - pos_))));
        advance_to(e);
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        lex_number();
      } else if (c == '\'' || c == '"') {
        lex_string(c);
      } else {
        static const char* const ops[] = {"==", "!=", "<=", ">=", "//", "**", "+", "-", "*", "/",
                                          "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}",
                                          ",", ".", ":", "|"};
        const char* found = nullptr;
        for (const char* op : ops)
          if (src_.substr(pos_, std::strlen(op)) == op) {
            found = op;
            break;
          }
        if (!found) fail(std::string("unexpected character '") + c + "'", line_, column_);
        if (*found == '{') ++braces;
        if (*found == '}') --braces;
        toks_.push_back(make(Tok::op, found));
        advance_to(pos_ + std::strlen(found));
      }
    }
  }

  void lex_number() {
    size_t e = pos_;
    bool is_float = false;
    while (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) ++e;
    if (e + 1 < src_.size() && src_[e] == '.' && std::isdigit(static_cast<unsigned char>(src_[e + 1]))) {
      is_float = true;
      ++e;
      while (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) ++e;
    }
    if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
      size_t k = e + 1;
      if (k < src_.size() && (src_[k] == '+' || src_[k] == '-')) ++k;
      if (k < src_.size() && std::isdigit(static_cast<unsigned char>(src_[k]))) {
        is_float = true;
        e = k;
        while (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) ++e;
      }
    }
    std::string text(src_.substr(pos_, e - pos_));
    Token t = make(is_float ? Tok::number : Tok::integer, text);
    try {
      if (is_float) t.f = std::stod(text);
      else t.i = std::stoll(text);
    } catch (const std::exception&) {
      fail("number out of range '" + text + "'", line_, column_);
    }
    toks_.push_back(t);
    advance_to(e);
  }

  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // Python string-literal escapes; an unknown escape keeps its backslash, as Python does.
  void lex_string(char quote) {
    Token t = make(Tok::string);
    size_t k = pos_ + 1;
    std::string out;
    while (true) {
      if (k >= src_.size()) fail("unterminated string literal", t.line, t.column);
      char c = src_[k];
      if (c == quote) break;
      if (c != '\\' || k + 1 >= src_.size()) {
        out += c;
        ++k;
        continue;
      }
      char e = src_[k + 1];
      k += 2;
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '0': out += '\0'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case '\n': break;  // line continuation
        case 'x': case 'u': case 'U': {
          size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (k + n > src_.size()) fail("bad escape in string literal", t.line, t.column);
          uint32_t cp = 0;
          for (size_t d = 0; d < n; ++d) {
            char h = src_[k + d];
            if (!std::isxdigit(static_cast<unsigned char>(h)))
              fail("bad escape in string literal", t.line, t.column);
            cp = cp * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h))
                                                     ? h - '0'
                                                     : (std::tolower(h) - 'a' + 10));
          }
          if (cp > 0x10FFFF) fail("bad escape in string literal", t.line, t.column);
          append_utf8(out, cp);
          k += n;
          break;
        }
        default: out += '\\'; out += e; break;
      }
    }
    t.s = std::move(out);
    toks_.push_back(t);
    advance_to(k + 1);
  }

  static bool is_tag_end(const Token& t) {
    return t.kind == Tok::var_end || t.kind == Tok::block_end || t.kind == Tok::comment;
  }
  static bool is_tag_begin(const Token& t) {
    return t.kind == Tok::var_begin || t.kind == Tok::block_begin || t.kind == Tok::comment;
  }

  // trim_blocks: drop the first newline after a block or comment tag; lstrip_blocks: drop
  // spaces and tabs between the start of a line and a block or comment tag; `-` strips all
  // whitespace on its side; `+` turns the automatic rules off for its side.
  void apply_whitespace_rules() {
    for (size_t k = 0; k < toks_.size(); ++k) {
      if (toks_[k].kind != Tok::text) continue;
      std::string& s = toks_[k].s;
      const Token* prev = k > 0 && is_tag_end(toks_[k - 1]) ? &toks_[k - 1] : nullptr;
      const Token* next = k + 1 < toks_.size() && is_tag_begin(toks_[k + 1]) ? &toks_[k + 1] : nullptr;
      if (next) {
        if (next->strip) {
          size_t e = s.find_last_not_of(" \t\r\n\f\v");
          s.erase(e == std::string::npos ? 0 : e + 1);
        } else if (next->kind != Tok::var_begin && !next->plus) {
          size_t nl = s.find_last_of('\n');
          size_t from = nl == std::string::npos ? 0 : nl + 1;
          bool line_start = nl != std::string::npos || k == 0;
          if (line_start && s.find_first_not_of(" \t", from) == std::string::npos) s.erase(from);
        }
      }
      if (prev) {
        bool strip = prev->kind == Tok::comment ? prev->strip_after : prev->strip;
        bool plus = prev->kind == Tok::comment ? prev->plus_after : prev->plus;
        if (strip) {
          size_t b = s.find_first_not_of(" \t\r\n\f\v");
          s.erase(0, b == std::string::npos ? s.size() : b);
        } else if (prev->kind != Tok::var_end && !plus) {
          if (s.rfind("\r\n", 0) == 0) s.erase(0, 2);
          else if (!s.empty() && s[0] == '\n') s.erase(0, 1);
        }
      }
    }
  }
};

}  // namespace

std::vector<Token> lex(std::string_view source) { return Lexer(source).run(); }

}  // namespace xent::jinja
