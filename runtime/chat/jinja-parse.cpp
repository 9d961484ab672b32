// Parser of the chat-template Jinja subset: tokens (jinja-lex.cpp) to the syntax tree that
// jinja-eval.cpp runs.
#include <cstring>

#include "runtime/chat/jinja-lex.h"
#include "runtime/chat/jinja.h"

namespace xent::jinja {

void fail(const std::string& what, int line, int column) {
  std::string msg = "chat template: " + what;
  if (line > 0) msg += " at line " + std::to_string(line) + ", column " + std::to_string(column);
  throw Error(msg);
}

namespace {

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
  Parser parser(lex(source));
  return parser.run();
}

}  // namespace xent::jinja
