// Lexer and parser of the chat-template Jinja subset. Whitespace follows Hugging Face's
// environment: trim_blocks and lstrip_blocks on, plus the explicit `-` / `+` modifiers.
#include <cstring>

#include "runtime/jinja.h"

namespace xent::jinja {

void fail(const std::string& what, int line, int column) {
  std::string msg = "chat template: " + what;
  if (line > 0) msg += " at line " + std::to_string(line) + ", column " + std::to_string(column);
  throw Error(msg);
}

namespace {

// ---------------------------------------------------------------- lexer

enum class Tok {
  text, var_begin, var_end, block_begin, block_end, comment, name, string, integer, number, op,
  eof
};

struct Token {
  Tok kind;
  std::string s;  // text, name, string value or operator
  int64_t i = 0;
  double f = 0.0;
  int line = 0, column = 0;
  bool strip = false;  // `{%-` / `-%}` (for a comment: either side, see strip_after)
  bool plus = false;   // `{%+` / `+%}`
  bool strip_after = false;  // comment only
  bool plus_after = false;   // comment only
};

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

// ---------------------------------------------------------------- parser

const char* const unsupported_tags[] = {"include", "extends", "block", "import", "from", "call",
                                        "filter", "with", "autoescape", "raw", "do", "trans"};

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : toks_(std::move(toks)) {}

  std::unique_ptr<Template> run() {
    auto t = std::make_unique<Template>();
    std::string end;
    t->body = parse_body({}, end, "", 0, 0);
    return t;
  }

 private:
  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;

  struct DepthGuard {
    Parser& p;
    DepthGuard(Parser& parser, const Token& at) : p(parser) {
      if (++p.depth_ > max_parse_depth) fail("nesting too deep", at.line, at.column);
    }
    ~DepthGuard() { --p.depth_; }
  };

  const Token& peek(size_t ahead = 0) const {
    return toks_[std::min(pos_ + ahead, toks_.size() - 1)];
  }
  const Token& next() {
    const Token& t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }
  bool is_op(const char* op, size_t ahead = 0) const {
    return peek(ahead).kind == Tok::op && peek(ahead).s == op;
  }
  bool is_name(const char* name, size_t ahead = 0) const {
    return peek(ahead).kind == Tok::name && peek(ahead).s == name;
  }
  [[noreturn]] void unexpected(const Token& t, const std::string& wanted) const {
    std::string got;
    switch (t.kind) {
      case Tok::eof: got = "end of template"; break;
      case Tok::var_end: got = "'}}'"; break;
      case Tok::block_end: got = "'%}'"; break;
      case Tok::string: got = "string literal"; break;
      case Tok::integer: case Tok::number: got = "number"; break;
      default: got = "'" + t.s + "'"; break;
    }
    fail("expected " + wanted + ", got " + got, t.line, t.column);
  }
  void expect_op(const char* op) {
    if (!is_op(op)) unexpected(peek(), std::string("'") + op + "'");
    next();
  }
  std::string expect_name() {
    if (peek().kind != Tok::name) unexpected(peek(), "a name");
    return next().s;
  }
  void expect_block_end() {
    if (peek().kind != Tok::block_end) unexpected(peek(), "'%}'");
    next();
  }

  ExprPtr node(Expr::Kind kind, const Token& at) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = at.line;
    e->column = at.column;
    return e;
  }

  // Parses statements until a `{% name %}` with name in `ends` (consumed up to and
  // including the name; its name is stored in `found`).
  Body parse_body(std::initializer_list<const char*> ends, std::string& found, const char* opener,
                  int open_line, int open_column) {
    Body body;
    while (true) {
      const Token& t = peek();
      if (t.kind == Tok::eof) {
        if (ends.size() == 0) return body;
        fail(std::string("unterminated '") + opener + "' block (opened at line " +
                 std::to_string(open_line) + ", column " + std::to_string(open_column) + ")",
             t.line, t.column);
      }
      if (t.kind == Tok::text) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::text;
        s->text = t.s;
        next();
        body.push_back(std::move(s));
      } else if (t.kind == Tok::var_begin) {
        next();
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::output;
        s->line = t.line;
        s->column = t.column;
        s->expr = parse_tuple();
        if (peek().kind != Tok::var_end) unexpected(peek(), "'}}'");
        next();
        body.push_back(std::move(s));
      } else if (t.kind == Tok::block_begin) {
        const Token& kw = peek(1);
        if (kw.kind != Tok::name) unexpected(kw, "a statement name");
        for (const char* e : ends)
          if (kw.s == e) {
            found = kw.s;
            next();
            next();
            return body;
          }
        next();
        body.push_back(parse_statement());
      } else {
        unexpected(t, "text or a tag");
      }
    }
  }

  StmtPtr parse_statement() {
    const Token kw = next();
    DepthGuard guard(*this, kw);
    auto s = std::make_unique<Stmt>();
    s->line = kw.line;
    s->column = kw.column;
    const std::string& k = kw.s;
    if (k == "if") {
      s->kind = Stmt::Kind::if_;
      std::string found;
      s->conditions.push_back(parse_tuple());
      expect_block_end();
      while (true) {
        s->bodies.push_back(parse_body({"elif", "else", "endif"}, found, "if", kw.line, kw.column));
        if (found == "elif") {
          s->conditions.push_back(parse_tuple());
          expect_block_end();
        } else if (found == "else") {
          expect_block_end();
          s->bodies.push_back(parse_body({"endif"}, found, "if", kw.line, kw.column));
          expect_block_end();
          break;
        } else {
          expect_block_end();
          break;
        }
      }
    } else if (k == "for") {
      s->kind = Stmt::Kind::for_;
      bool paren = is_op("(");
      if (paren) next();
      s->targets.push_back(expect_name());
      while (is_op(",")) {
        next();
        s->targets.push_back(expect_name());
      }
      if (paren) expect_op(")");
      if (!is_name("in")) unexpected(peek(), "'in'");
      next();
      s->expr = parse_or();  // no conditional here: a trailing `if` filters the loop
      if (is_name("if")) {
        next();
        s->conditions.push_back(parse_ternary());
      }
      if (is_name("recursive")) fail("unsupported construct 'recursive'", peek().line, peek().column);
      expect_block_end();
      std::string found;
      s->bodies.push_back(parse_body({"else", "endfor"}, found, "for", kw.line, kw.column));
      expect_block_end();
      if (found == "else") {
        s->bodies.push_back(parse_body({"endfor"}, found, "for", kw.line, kw.column));
        expect_block_end();
      }
    } else if (k == "set") {
      std::string first = expect_name();
      s->targets.push_back(first);
      if (is_op(".")) {
        next();
        s->targets.push_back(expect_name());
        s->attr_target = true;
      } else {
        while (is_op(",")) {
          next();
          s->targets.push_back(expect_name());
        }
      }
      if (is_op("=")) {
        next();
        s->kind = Stmt::Kind::set;
        s->expr = parse_tuple();
        expect_block_end();
      } else {
        if (s->targets.size() != 1 || s->attr_target) unexpected(peek(), "'='");
        s->kind = Stmt::Kind::set_block;
        expect_block_end();
        std::string found;
        s->bodies.push_back(parse_body({"endset"}, found, "set", kw.line, kw.column));
        expect_block_end();
      }
    } else if (k == "macro") {
      s->kind = Stmt::Kind::macro;
      s->targets.push_back(expect_name());
      expect_op("(");
      while (!is_op(")")) {
        s->params.push_back(expect_name());
        if (is_op("=")) {
          next();
          s->defaults.push_back(parse_ternary());
        } else {
          s->defaults.push_back(nullptr);
        }
        if (!is_op(",")) break;
        next();
      }
      expect_op(")");
      expect_block_end();
      std::string found;
      s->bodies.push_back(parse_body({"endmacro"}, found, "macro", kw.line, kw.column));
      if (peek().kind == Tok::name) next();  // `{% endmacro name %}`
      expect_block_end();
    } else if (k == "break" || k == "continue") {
      s->kind = k == "break" ? Stmt::Kind::break_ : Stmt::Kind::continue_;
      expect_block_end();
    } else if (k == "generation") {
      // Hugging Face's marker for assistant-token masks: renders its body unchanged.
      s->kind = Stmt::Kind::block;
      expect_block_end();
      std::string found;
      s->bodies.push_back(parse_body({"endgeneration"}, found, "generation", kw.line, kw.column));
      expect_block_end();
    } else {
      for (const char* u : unsupported_tags)
        if (k == u) fail("unsupported construct '" + k + "'", kw.line, kw.column);
      if (k.rfind("end", 0) == 0 || k == "elif" || k == "else")
        fail("unexpected '" + k + "'", kw.line, kw.column);
      fail("unknown tag '" + k + "'", kw.line, kw.column);
    }
    return s;
  }

  // ------------------------------------------------------------ expressions

  ExprPtr parse_tuple() {
    const Token& at = peek();
    ExprPtr first = parse_ternary();
    if (!is_op(",")) return first;
    auto t = node(Expr::Kind::tuple, at);
    t->kids.push_back(std::move(first));
    while (is_op(",")) {
      next();
      if (peek().kind == Tok::var_end || peek().kind == Tok::block_end) break;
      t->kids.push_back(parse_ternary());
    }
    return t;
  }

  ExprPtr parse_ternary() {
    const Token& at = peek();
    DepthGuard guard(*this, at);
    ExprPtr value = parse_or();
    while (is_name("if")) {
      next();
      auto t = node(Expr::Kind::ternary, at);
      ExprPtr cond = parse_or();
      ExprPtr other;
      if (is_name("else")) {
        next();
        other = parse_ternary();
      } else {
        other = node(Expr::Kind::literal, at);  // `a if c` alone yields undefined
      }
      t->kids.push_back(std::move(cond));
      t->kids.push_back(std::move(value));
      t->kids.push_back(std::move(other));
      value = std::move(t);
    }
    return value;
  }

  ExprPtr binary(const char* op, ExprPtr a, ExprPtr b, const Token& at) {
    auto e = node(Expr::Kind::binary, at);
    e->name = op;
    e->kids.push_back(std::move(a));
    e->kids.push_back(std::move(b));
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      const Token& at = next();
      left = binary("or", std::move(left), parse_and(), at);
    }
    return left;
  }
  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      const Token& at = next();
      left = binary("and", std::move(left), parse_not(), at);
    }
    return left;
  }
  ExprPtr parse_not() {
    if (is_name("not")) {
      const Token& at = next();
      DepthGuard guard(*this, at);
      auto e = node(Expr::Kind::unary, at);
      e->name = "not";
      e->kids.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    const Token& at = peek();
    ExprPtr first = parse_add();
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (peek().kind == Tok::op &&
          (peek().s == "==" || peek().s == "!=" || peek().s == "<" || peek().s == ">" ||
           peek().s == "<=" || peek().s == ">=")) {
        op = next().s;
      } else if (is_name("in")) {
        next();
        op = "in";
      } else if (is_name("not") && is_name("in", 1)) {
        next();
        next();
        op = "not in";
      } else {
        break;
      }
      if (!cmp) {
        cmp = node(Expr::Kind::compare, at);
        cmp->kids.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->kids.push_back(parse_add());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }
  ExprPtr parse_add() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& at = next();
      left = binary(at.s == "+" ? "+" : "-", std::move(left), parse_concat(), at);
    }
    return left;
  }
  ExprPtr parse_concat() {
    ExprPtr left = parse_mul();
    while (is_op("~")) {
      const Token& at = next();
      left = binary("~", std::move(left), parse_mul(), at);
    }
    return left;
  }
  ExprPtr parse_mul() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& at = next();
      std::string op = at.s;
      left = binary(op == "*" ? "*" : op == "/" ? "/" : op == "//" ? "//" : "%", std::move(left),
                    parse_pow(), at);
    }
    return left;
  }
  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
      const Token& at = next();
      left = binary("**", std::move(left), parse_unary(true), at);
    }
    return left;
  }
  ExprPtr parse_unary(bool with_filters) {
    if (is_op("-") || is_op("+")) {
      const Token& at = next();
      DepthGuard guard(*this, at);
      auto e = node(Expr::Kind::unary, at);
      e->name = at.s == "-" ? "-" : "+";
      e->kids.push_back(parse_unary(false));
      return with_filters ? parse_filters(std::move(e)) : std::move(e);
    }
    ExprPtr e = parse_postfix(parse_primary());
    return with_filters ? parse_filters(std::move(e)) : std::move(e);
  }

  // Call arguments after '(' up to and including ')'; positional and name=value.
  void parse_call_args(Expr& e) {
    while (!is_op(")")) {
      if (peek().kind == Tok::name && is_op("=", 1)) {
        e.arg_names.push_back(next().s);
        next();
      } else {
        e.arg_names.push_back({});
      }
      e.kids.push_back(parse_ternary());
      if (!is_op(",")) break;
      next();
    }
    expect_op(")");
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (is_op(".")) {
        const Token& at = next();
        auto a = node(Expr::Kind::attr, at);
        if (peek().kind == Tok::integer) {  // `x.0` is x[0] in Jinja
          auto idx = node(Expr::Kind::item, at);
          auto lit = node(Expr::Kind::literal, at);
          lit->value = Value::integer(next().i);
          idx->kids.push_back(std::move(e));
          idx->kids.push_back(std::move(lit));
          e = std::move(idx);
          continue;
        }
        a->name = expect_name();
        a->kids.push_back(std::move(e));
        e = std::move(a);
      } else if (is_op("[")) {
        const Token& at = next();
        DepthGuard guard(*this, at);
        ExprPtr parts[3];
        bool has[3] = {false, false, false};
        bool is_slice = false;
        for (int k = 0; k < 3; ++k) {
          if (!is_op(":") && !is_op("]")) {
            parts[k] = parse_ternary();
            has[k] = true;
          }
          if (k < 2 && is_op(":")) {
            next();
            is_slice = true;
          } else {
            break;
          }
        }
        expect_op("]");
        if (!is_slice) {
          if (!has[0]) unexpected(peek(), "an index");
          auto i = node(Expr::Kind::item, at);
          i->kids.push_back(std::move(e));
          i->kids.push_back(std::move(parts[0]));
          e = std::move(i);
        } else {
          auto sl = node(Expr::Kind::slice, at);
          sl->kids.push_back(std::move(e));
          for (int k = 0; k < 3; ++k) {
            sl->has[k] = has[k];
            sl->kids.push_back(has[k] ? std::move(parts[k]) : nullptr);
          }
          e = std::move(sl);
        }
      } else if (is_op("(")) {
        const Token& at = next();
        DepthGuard guard(*this, at);
        auto c = node(Expr::Kind::call, at);
        c->kids.push_back(std::move(e));
        c->arg_names.push_back({});
        parse_call_args(*c);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  bool starts_primary(const Token& t) const {
    if (t.kind == Tok::string || t.kind == Tok::integer || t.kind == Tok::number) return true;
    if (t.kind == Tok::op) return t.s == "(" || t.s == "[" || t.s == "{";
    if (t.kind != Tok::name) return false;
    static const char* const keywords[] = {"and", "or", "not", "if", "else", "in", "is"};
    for (const char* k : keywords)
      if (t.s == k) return false;
    return true;
  }

  ExprPtr parse_filters(ExprPtr e) {
    while (true) {
      if (is_op("|")) {
        const Token& at = next();
        auto f = node(Expr::Kind::filter, at);
        f->name = expect_name();
        if (!has_filter(f->name)) fail("unknown filter '" + f->name + "'", at.line, at.column);
        f->kids.push_back(std::move(e));
        f->arg_names.push_back({});
        if (is_op("(")) {
          next();
          parse_call_args(*f);
        }
        e = std::move(f);
      } else if (is_name("is")) {
        const Token& at = next();
        auto t = node(Expr::Kind::test, at);
        if (is_name("not")) {
          next();
          t->negated = true;
        }
        // `none`, `true` and `false` lex as names, so `is none` needs no special case.
        t->name = expect_name();
        if (!has_test(t->name)) fail("unknown test '" + t->name + "'", at.line, at.column);
        t->kids.push_back(std::move(e));
        t->arg_names.push_back({});
        if (is_op("(")) {
          next();
          parse_call_args(*t);
        } else if (starts_primary(peek())) {  // `is divisibleby 3`, `is sameas false`
          t->arg_names.push_back({});
          t->kids.push_back(parse_postfix(parse_primary()));
        }
        e = std::move(t);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_primary() {
    const Token& t = peek();
    DepthGuard guard(*this, t);
    switch (t.kind) {
      case Tok::string: {
        auto e = node(Expr::Kind::literal, t);
        std::string s = next().s;
        while (peek().kind == Tok::string) s += next().s;  // adjacent literals concatenate
        e->value = Value::string(std::move(s));
        return e;
      }
      case Tok::integer: {
        auto e = node(Expr::Kind::literal, t);
        e->value = Value::integer(next().i);
        return e;
      }
      case Tok::number: {
        auto e = node(Expr::Kind::literal, t);
        e->value = Value::number(next().f);
        return e;
      }
      case Tok::name: {
        auto e = node(Expr::Kind::literal, t);
        const std::string& n = t.s;
        if (n == "true" || n == "True") e->value = Value::boolean(true);
        else if (n == "false" || n == "False") e->value = Value::boolean(false);
        else if (n == "none" || n == "None") e->value = Value::none();
        else {
          e->kind = Expr::Kind::name;
          e->name = n;
        }
        next();
        return e;
      }
      case Tok::op:
        if (t.s == "(") {
          next();
          if (is_op(")")) {
            next();
            return node(Expr::Kind::tuple, t);
          }
          ExprPtr inner = parse_ternary();
          if (is_op(",")) {
            auto tup = node(Expr::Kind::tuple, t);
            tup->kids.push_back(std::move(inner));
            while (is_op(",")) {
              next();
              if (is_op(")")) break;
              tup->kids.push_back(parse_ternary());
            }
            inner = std::move(tup);
          }
          expect_op(")");
          return inner;
        }
        if (t.s == "[") {
          next();
          auto l = node(Expr::Kind::list, t);
          while (!is_op("]")) {
            l->kids.push_back(parse_ternary());
            if (!is_op(",")) break;
            next();
          }
          expect_op("]");
          return l;
        }
        if (t.s == "{") {
          next();
          auto d = node(Expr::Kind::dict, t);
          while (!is_op("}")) {
            d->kids.push_back(parse_ternary());
            expect_op(":");
            d->kids.push_back(parse_ternary());
            if (!is_op(",")) break;
            next();
          }
          expect_op("}");
          return d;
        }
        break;
      default:
        break;
    }
    unexpected(t, "an expression");
  }
};

}  // namespace

std::unique_ptr<Template> parse(std::string_view source) {
  // Jinja's keep_trailing_newline=False: one newline at the very end is not output.
  if (source.ends_with("\r\n")) source.remove_suffix(2);
  else if (source.ends_with("\n")) source.remove_suffix(1);
  Lexer lexer(source);
  Parser parser(lexer.run());
  return parser.run();
}

}  // namespace xent::jinja
