// Evaluator of the chat-template syntax tree: scopes, loops, macros and expression
// semantics (Python's, as Jinja2 inherits them), with step, depth and size limits.
#include <cmath>
#include <unordered_map>

#include "runtime/chat/jinja.h"

namespace xent::jinja {

namespace {

enum class Flow { normal, break_, continue_ };

// Code-point boundaries, so that indexing and slicing never split a UTF-8 sequence.
std::vector<std::string> utf8_chars(const std::string& s) {
  std::vector<std::string> out;
  for (size_t k = 0; k < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[k]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    n = std::min(n, s.size() - k);
    out.push_back(s.substr(k, n));
    k += n;
  }
  return out;
}


}  // namespace

struct Interpreter {
  using Scope = std::unordered_map<std::string, Value>;
  std::vector<Scope> scopes;
  // Lookups see scopes[floor..], then the top-level scope [1] and the context [0]; a macro
  // call raises the floor so that it does not see its caller's locals.
  size_t floor = 1;
  uint64_t steps = 0;
  int depth = 0;

  struct DepthGuard {
    Interpreter& in;
    DepthGuard(Interpreter& interp, int line, int column) : in(interp) {
      if (++in.depth > max_eval_depth) fail("evaluation nested too deeply", line, column);
      if (++in.steps > max_steps) fail("template takes too many steps", line, column);
    }
    ~DepthGuard() { --in.depth; }
  };

  Value lookup(const std::string& name) {
    for (size_t k = scopes.size(); k-- > floor;) {
      auto it = scopes[k].find(name);
      if (it != scopes[k].end()) return it->second;
    }
    // Inside a macro: the template's top-level names, then the render context.
    for (size_t k : {size_t{1}, size_t{0}}) {
      if (k >= floor) continue;  // already searched above
      auto it = scopes[k].find(name);
      if (it != scopes[k].end()) return it->second;
    }
    Value g = make_global_function(name);
    return g.is_undefined() ? Value::undefined_name(name) : g;
  }

  static void append(std::string& out, const std::string& s, int line, int column) {
    if (out.size() + s.size() > max_string_bytes) fail("output too large", line, column);
    out += s;
  }

  // ------------------------------------------------------------ statements

  Flow exec_body(const Body& body, std::string& out) {
    for (const auto& s : body) {
      Flow f = exec(*s, out);
      if (f != Flow::normal) return f;
    }
    return Flow::normal;
  }

  Flow exec(const Stmt& s, std::string& out) {
    DepthGuard guard(*this, s.line, s.column);
    switch (s.kind) {
      case Stmt::Kind::text: append(out, s.text, s.line, s.column); return Flow::normal;
      case Stmt::Kind::output: append(out, to_str(eval(*s.expr)), s.line, s.column); return Flow::normal;
      case Stmt::Kind::if_:
        for (size_t k = 0; k < s.conditions.size(); ++k)
          if (eval(*s.conditions[k]).truthy()) return exec_body(s.bodies[k], out);
        if (s.bodies.size() > s.conditions.size()) return exec_body(s.bodies.back(), out);
        return Flow::normal;
      case Stmt::Kind::for_: exec_for(s, out); return Flow::normal;
      case Stmt::Kind::set: {
        Value v = eval(*s.expr);
        if (s.attr_target) {
          Value ns = lookup(s.targets[0]);
          if (!ns.is_dict() || !ns.dict->is_namespace)
            fail("cannot assign attribute '" + s.targets[1] + "' of " + ns.type_name() + " '" +
                     s.targets[0] + "' (only namespace() objects can be changed)",
                 s.line, s.column);
          // Values are reference-counted, so a namespace that reached itself would leak.
          if (reaches(v, ns.dict.get(), 0))
            fail("cannot store namespace '" + s.targets[0] + "' inside itself", s.line, s.column);
          ns.dict->set(s.targets[1], std::move(v));
        } else {
          assign(s.targets, v, s.line, s.column);
        }
        return Flow::normal;
      }
      case Stmt::Kind::set_block: {
        std::string captured;
        exec_body(s.bodies[0], captured);
        scopes.back()[s.targets[0]] = Value::string(std::move(captured));
        return Flow::normal;
      }
      case Stmt::Kind::macro: define_macro(s); return Flow::normal;
      case Stmt::Kind::break_: return Flow::break_;
      case Stmt::Kind::continue_: return Flow::continue_;
      case Stmt::Kind::block: return exec_body(s.bodies[0], out);
    }
    return Flow::normal;
  }

  static bool reaches(const Value& v, const Dict* target, int depth) {
    if (depth > 128) fail("value nested too deeply");
    if (v.is_dict()) {
      if (v.dict.get() == target) return true;
      for (const auto& kv : v.dict->items)
        if (reaches(kv.second, target, depth + 1)) return true;
    } else if (v.is_list()) {
      for (const auto& item : *v.list)
        if (reaches(item, target, depth + 1)) return true;
    }
    return false;
  }

  void assign(const std::vector<std::string>& targets, const Value& v, int line, int column) {
    if (targets.size() == 1) {
      scopes.back()[targets[0]] = v;
      return;
    }
    if (!v.is_list() || v.list->size() != targets.size())
      fail("cannot unpack " + std::string(v.type_name()) + " into " +
               std::to_string(targets.size()) + " names",
           line, column);
    for (size_t k = 0; k < targets.size(); ++k) scopes.back()[targets[k]] = (*v.list)[k];
  }

  List iterate(const Value& v, int line, int column) {
    switch (v.kind) {
      case Value::Kind::undefined: return {};
      case Value::Kind::list: return *v.list;
      case Value::Kind::dict: {
        List keys;
        for (const auto& kv : v.dict->items) keys.push_back(Value::string(kv.first));
        return keys;
      }
      case Value::Kind::string: {
        List chars;
        for (auto& c : utf8_chars(v.s)) chars.push_back(Value::string(std::move(c)));
        return chars;
      }
      default: fail(std::string("cannot iterate over ") + v.type_name(), line, column);
    }
  }

  void exec_for(const Stmt& s, std::string& out) {
    List items = iterate(eval(*s.expr), s.line, s.column);
    if (!s.conditions.empty()) {  // `for x in xs if cond`: loop.* counts what passes
      List kept;
      scopes.emplace_back();
      for (auto& item : items) {
        assign(s.targets, item, s.line, s.column);
        if (eval(*s.conditions[0]).truthy()) kept.push_back(std::move(item));
      }
      scopes.pop_back();
      items = std::move(kept);
    }
    const int64_t n = static_cast<int64_t>(items.size());
    for (int64_t k = 0; k < n; ++k) {
      // A round costs more than one expression, and an empty body would cost nothing.
      steps += 8;
      if (steps > max_steps) fail("template takes too many steps", s.line, s.column);
      scopes.emplace_back();
      assign(s.targets, items[static_cast<size_t>(k)], s.line, s.column);
      Value loop = Value::make_dict();
      Dict& d = *loop.dict;
      d.set("index", Value::integer(k + 1));
      d.set("index0", Value::integer(k));
      d.set("revindex", Value::integer(n - k));
      d.set("revindex0", Value::integer(n - k - 1));
      d.set("first", Value::boolean(k == 0));
      d.set("last", Value::boolean(k == n - 1));
      d.set("length", Value::integer(n));
      d.set("previtem", k > 0 ? items[static_cast<size_t>(k - 1)] : Value::undefined("there is no previous item"));
      d.set("nextitem", k + 1 < n ? items[static_cast<size_t>(k + 1)] : Value::undefined("there is no next item"));
      auto cycle = std::make_shared<Callable>();
      cycle->name = "loop.cycle";
      cycle->call = [k](Interpreter&, const Args& args, int line, int column) {
        if (args.positional.empty()) fail("loop.cycle needs at least one value", line, column);
        return args.positional[static_cast<size_t>(k) % args.positional.size()];
      };
      Value cv;
      cv.kind = Value::Kind::callable;
      cv.fn = cycle;
      d.set("cycle", cv);
      scopes.back()["loop"] = loop;
      Flow f = exec_body(s.bodies[0], out);
      scopes.pop_back();
      if (f == Flow::break_) break;
    }
    if (n == 0 && s.bodies.size() > 1) exec_body(s.bodies[1], out);
  }

  void define_macro(const Stmt& s) {
    auto fn = std::make_shared<Callable>();
    fn->name = s.targets[0];
    const Stmt* def = &s;  // the syntax tree outlives every render
    fn->call = [def](Interpreter& in, const Args& args, int line, int column) {
      DepthGuard guard(in, line, column);
      if (args.positional.size() > def->params.size())
        fail("macro '" + def->targets[0] + "' takes " + std::to_string(def->params.size()) +
                 " arguments",
             line, column);
      for (const auto& [name, v] : args.named) {
        bool known = false;
        for (const auto& p : def->params) known = known || p == name;
        if (!known) fail("macro '" + def->targets[0] + "' has no parameter '" + name + "'", line, column);
      }
      size_t saved_floor = in.floor;
      in.scopes.emplace_back();
      in.floor = in.scopes.size() - 1;
      std::string out;
      try {
        for (size_t k = 0; k < def->params.size(); ++k) {
          const Value* given = args.get(k, def->params[k]);
          Value v = given ? *given
                          : def->defaults[k] ? in.eval(*def->defaults[k])
                                             : Value::undefined("parameter '" + def->params[k] + "' was not provided");
          in.scopes.back()[def->params[k]] = v;
        }
        in.exec_body(def->bodies[0], out);
      } catch (...) {
        in.scopes.pop_back();
        in.floor = saved_floor;
        throw;
      }
      in.scopes.pop_back();
      in.floor = saved_floor;
      return Value::string(std::move(out));
    };
    Value v;
    v.kind = Value::Kind::callable;
    v.fn = fn;
    scopes.back()[s.targets[0]] = v;
  }

  // ------------------------------------------------------------ expressions

  Args eval_args(const Expr& e, size_t first) {
    Args args;
    for (size_t k = first; k < e.kids.size(); ++k) {
      Value v = eval(*e.kids[k]);
      if (e.arg_names[k].empty()) {
        if (!args.named.empty()) fail("positional argument after a named one", e.line, e.column);
        args.positional.push_back(std::move(v));
      } else {
        args.named.emplace_back(e.arg_names[k], std::move(v));
      }
    }
    return args;
  }

  // Jinja2's getitem: a missing key or index is undefined, but any item of an undefined
  // value is an error.
  static Value get_item(const Value& obj, const Value& key, int line, int column) {
    if (obj.is_undefined()) obj.fail_undefined(line, column);
    if (obj.is_dict()) {
      const Value* v = key.is_string() ? obj.dict->find(key.s) : nullptr;
      return v ? *v : Value::no_element(obj, key);
    }
    if (((obj.is_list() && !obj.generator) || obj.is_string()) && (key.kind == Value::Kind::integer || key.kind == Value::Kind::boolean)) {
      int64_t i = key.kind == Value::Kind::boolean ? key.b : key.i;
      if (obj.is_list()) {
        int64_t n = static_cast<int64_t>(obj.list->size());
        if (i < 0) i += n;
        return i >= 0 && i < n ? (*obj.list)[static_cast<size_t>(i)] : Value::no_element(obj, key);
      }
      auto chars = utf8_chars(obj.s);
      int64_t n = static_cast<int64_t>(chars.size());
      if (i < 0) i += n;
      return i >= 0 && i < n ? Value::string(chars[static_cast<size_t>(i)]) : Value::no_element(obj, key);
    }
    return Value::no_element(obj, key);
  }

  // Jinja2's getattr: a missing attribute of a dict, or any attribute of a string, list or
  // none, is undefined (so `message.tool_calls is defined` is false); an attribute of an
  // undefined value is an error naming why it is undefined.
  static Value get_attr(const Value& obj, const std::string& name, int line, int column) {
    if (obj.is_undefined()) obj.fail_undefined(line, column);
    if (obj.is_dict()) {
      const Value* v = obj.dict->find(name);
      if (v) return *v;
    }
    return Value::no_attribute(obj, name);
  }

  Value eval_slice(const Expr& e) {
    Value obj = eval(*e.kids[0]);
    int64_t bound[3] = {0, 0, 1};
    bool present[3] = {false, false, false};  // `x[None:]` means the default, as in Python
    for (int k = 0; k < 3; ++k) {
      if (!e.has[k]) continue;
      Value v = eval(*e.kids[1 + k]);
      if (v.is_none()) continue;
      if (v.kind != Value::Kind::integer) fail("slice indices must be integers", e.line, e.column);
      bound[k] = v.i;
      present[k] = true;
    }
    int64_t step = present[2] ? bound[2] : 1;
    if (step == 0 || step == INT64_MIN) fail("slice step cannot be zero", e.line, e.column);
    std::vector<std::string> chars;
    int64_t n;
    if (obj.is_list() && !obj.generator) {
      n = static_cast<int64_t>(obj.list->size());
    } else if (obj.is_string()) {
      chars = utf8_chars(obj.s);
      n = static_cast<int64_t>(chars.size());
    } else if (obj.is_undefined()) {
      obj.fail_undefined(e.line, e.column);
    } else {
      fail(std::string("cannot slice ") + obj.type_name(), e.line, e.column);
    }
    // Python's slice.indices().
    auto adjust = [&](bool given, int64_t v, int64_t dflt) {
      if (!given) return dflt;
      if (v < 0) v += n;
      if (step > 0) return std::clamp<int64_t>(v, 0, n);
      return std::clamp<int64_t>(v, -1, n - 1);
    };
    int64_t start = adjust(present[0], bound[0], step > 0 ? 0 : n - 1);
    int64_t stop = adjust(present[1], bound[1], step > 0 ? n : -1);
    List items;
    std::string str;
    // Counted rather than `k += step` until past the end, which could overflow.
    int64_t count = step > 0 ? (stop > start ? (stop - start - 1) / step + 1 : 0)
                             : (start > stop ? (start - stop - 1) / -step + 1 : 0);
    for (int64_t c = 0, k = start; c < count; ++c, k += (c < count ? step : 0)) {
      if (obj.is_list()) items.push_back((*obj.list)[static_cast<size_t>(k)]);
      else str += chars[static_cast<size_t>(k)];
    }
    return obj.is_list() ? Value::make_list(std::move(items)) : Value::string(std::move(str));
  }

  Value call_value(const Value& callee, const Args& args, const Expr& e) {
    if (callee.kind != Value::Kind::callable) {
      if (callee.is_undefined()) callee.fail_undefined(e.line, e.column);
      fail(std::string("cannot call a ") + callee.type_name(), e.line, e.column);
    }
    return callee.fn->call(*this, args, e.line, e.column);
  }

  Value eval_call(const Expr& e) {
    const Expr& callee = *e.kids[0];
    Args args = eval_args(e, 1);
    if (callee.kind == Expr::Kind::attr) {
      Value obj = eval(*callee.kids[0]);
      if (obj.is_undefined()) obj.fail_undefined(callee.line, callee.column);
      if (obj.is_string() || (obj.is_list() && !obj.generator) || (obj.is_dict() && !obj.dict->is_namespace)) {
        bool found = false;
        Value r = call_method(obj, callee.name, args, e.line, e.column, found);
        if (found) return r;
      }
      return call_value(get_attr(obj, callee.name, e.line, e.column), args, e);
    }
    return call_value(eval(callee), args, e);
  }

  Value arithmetic(const std::string& op, const Value& a, const Value& b, const Expr& e) {
    using K = Value::Kind;
    for (const Value* v : {&a, &b}) {
      if (v->is_undefined()) v->fail_undefined(e.line, e.column);
      if (v->generator)
        fail("unsupported operand type for " + op + ": generator (add '| list')", e.line, e.column);
    }
    if (op == "+") {
      if (a.is_string() && b.is_string()) {
        if (a.s.size() + b.s.size() > max_string_bytes) fail("string too large", e.line, e.column);
        if (!a.safe && !b.safe) return Value::string(a.s + b.s);
        // Markup + str escapes the str (markupsafe), also outside autoescape.
        Value r = Value::string((a.safe ? a.s : html_escape(a.s)) + (b.safe ? b.s : html_escape(b.s)));
        if (r.s.size() > max_string_bytes) fail("string too large", e.line, e.column);
        r.safe = true;
        return r;
      }
      if (a.is_list() && b.is_list()) {
        if (a.list->size() + b.list->size() > max_list_items) fail("list too large", e.line, e.column);
        List items = *a.list;
        items.insert(items.end(), b.list->begin(), b.list->end());
        return Value::make_list(std::move(items));
      }
    }
    if (op == "*" && (a.is_string() || a.is_list() || b.is_string() || b.is_list())) {
      const Value& seq = a.is_string() || a.is_list() ? a : b;
      const Value& count = &seq == &a ? b : a;
      if (count.kind != K::integer && count.kind != K::boolean)
        fail(std::string("cannot multiply ") + seq.type_name() + " by " + count.type_name(), e.line, e.column);
      int64_t times = std::max<int64_t>(0, count.kind == K::boolean ? count.b : count.i);
      size_t unit = seq.is_string() ? seq.s.size() : seq.list->size();
      size_t cap = seq.is_string() ? max_string_bytes : max_list_items;
      if (unit && static_cast<uint64_t>(times) > cap / unit) fail("result too large", e.line, e.column);
      if (seq.is_string()) {
        std::string r;
        for (int64_t k = 0; k < times; ++k) r += seq.s;
        Value v = Value::string(std::move(r));
        v.safe = seq.safe;
        return v;
      }
      List r;
      for (int64_t k = 0; k < times; ++k) r.insert(r.end(), seq.list->begin(), seq.list->end());
      return Value::make_list(std::move(r));
    }
    if (!a.is_numeric() || !b.is_numeric())
      fail(std::string("unsupported operand types for ") + op + ": " + a.type_name() + " and " +
               b.type_name(),
           e.line, e.column);
    bool ints = a.kind != K::number && b.kind != K::number;
    int64_t x = a.kind == K::boolean ? a.b : a.i, y = b.kind == K::boolean ? b.b : b.i;
    double fx = a.as_double(), fy = b.as_double();
    int64_t r = 0;
    if (op == "+") {
      if (ints) {
        if (__builtin_add_overflow(x, y, &r)) fail("integer overflow", e.line, e.column);
        return Value::integer(r);
      }
      return Value::number(fx + fy);
    }
    if (op == "-") {
      if (ints) {
        if (__builtin_sub_overflow(x, y, &r)) fail("integer overflow", e.line, e.column);
        return Value::integer(r);
      }
      return Value::number(fx - fy);
    }
    if (op == "*") {
      if (ints) {
        if (__builtin_mul_overflow(x, y, &r)) fail("integer overflow", e.line, e.column);
        return Value::integer(r);
      }
      return Value::number(fx * fy);
    }
    if (op == "/") {
      if (fy == 0.0) fail("division by zero", e.line, e.column);
      return Value::number(fx / fy);
    }
    if (op == "//" || op == "%") {
      if (fy == 0.0) fail(op == "//" ? "division by zero" : "modulo by zero", e.line, e.column);
      if (ints) {
        if (x == INT64_MIN && y == -1) fail("integer overflow", e.line, e.column);
        int64_t q = x / y, m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) {  // Python floors toward negative infinity
          --q;
          m += y;
        }
        return Value::integer(op == "//" ? q : m);
      }
      double q = std::floor(fx / fy);
      return Value::number(op == "//" ? q : fx - q * fy);
    }
    if (op == "**") {
      if (ints && y >= 0) {
        int64_t acc = 1;
        for (int64_t k = 0; k < y; ++k) {
          if (__builtin_mul_overflow(acc, x, &acc)) fail("integer overflow", e.line, e.column);
          if (acc == 0 || acc == 1) break;
          if (acc == -1) {
            acc = (y % 2 == 0) ? 1 : -1;
            break;
          }
        }
        return Value::integer(acc);
      }
      return Value::number(std::pow(fx, fy));
    }
    fail("unknown operator '" + op + "'", e.line, e.column);
  }

  bool contains(const Value& container, const Value& item, const Expr& e) {
    switch (container.kind) {
      case Value::Kind::undefined: return false;
      case Value::Kind::list:
        for (const auto& v : *container.list)
          if (equals(v, item)) return true;
        return false;
      case Value::Kind::dict: return item.is_string() && container.dict->find(item.s) != nullptr;
      case Value::Kind::string:
        if (!item.is_string())
          fail(std::string("'in <string>' needs a string, not ") + item.type_name(), e.line, e.column);
        return container.s.find(item.s) != std::string::npos;
      default: fail(std::string("cannot use 'in' on ") + container.type_name(), e.line, e.column);
    }
  }

  Value eval(const Expr& e) {
    DepthGuard guard(*this, e.line, e.column);
    switch (e.kind) {
      case Expr::Kind::literal: return e.value;
      case Expr::Kind::name: return lookup(e.name);
      case Expr::Kind::attr: return get_attr(eval(*e.kids[0]), e.name, e.line, e.column);
      case Expr::Kind::item: {
        Value obj = eval(*e.kids[0]);
        return get_item(obj, eval(*e.kids[1]), e.line, e.column);
      }
      case Expr::Kind::slice: return eval_slice(e);
      case Expr::Kind::call: return eval_call(e);
      case Expr::Kind::filter: {
        Value v = eval(*e.kids[0]);
        return apply_filter(*this, e.name, v, eval_args(e, 1), e.line, e.column);
      }
      case Expr::Kind::test: {
        Value v = eval(*e.kids[0]);
        bool r = apply_test(*this, e.name, v, eval_args(e, 1), e.line, e.column);
        return Value::boolean(e.negated ? !r : r);
      }
      case Expr::Kind::unary: {
        Value v = eval(*e.kids[0]);
        if (e.name == "not") return Value::boolean(!v.truthy());
        if (v.kind == Value::Kind::integer) {
          if (e.name == "-" && v.i == INT64_MIN) fail("integer overflow", e.line, e.column);
          return Value::integer(e.name == "-" ? -v.i : v.i);
        }
        if (v.kind == Value::Kind::boolean) return Value::integer(e.name == "-" ? -int64_t{v.b} : v.b);
        if (v.kind == Value::Kind::number) return Value::number(e.name == "-" ? -v.f : v.f);
        if (v.is_undefined()) v.fail_undefined(e.line, e.column);
        fail(std::string("bad operand type for unary ") + e.name + ": " + v.type_name(), e.line, e.column);
      }
      case Expr::Kind::binary: {
        if (e.name == "and") {
          Value a = eval(*e.kids[0]);
          return a.truthy() ? eval(*e.kids[1]) : a;
        }
        if (e.name == "or") {
          Value a = eval(*e.kids[0]);
          return a.truthy() ? a : eval(*e.kids[1]);
        }
        Value a = eval(*e.kids[0]);
        Value b = eval(*e.kids[1]);
        if (e.name == "~") {
          std::string sa = to_str(a), sb = to_str(b);
          if (sa.size() + sb.size() > max_string_bytes) fail("string too large", e.line, e.column);
          return Value::string(sa + sb);
        }
        return arithmetic(e.name, a, b, e);
      }
      case Expr::Kind::compare: {
        Value left = eval(*e.kids[0]);
        for (size_t k = 0; k < e.ops.size(); ++k) {
          Value right = eval(*e.kids[k + 1]);
          const std::string& op = e.ops[k];
          bool r;
          if (op == "==") r = equals(left, right);
          else if (op == "!=") r = !equals(left, right);
          else if (op == "in") r = contains(right, left, e);
          else if (op == "not in") r = !contains(right, left, e);
          else {
            int c = compare(left, right, e.line, e.column);
            r = op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0;
          }
          if (!r) return Value::boolean(false);
          left = std::move(right);
        }
        return Value::boolean(true);
      }
      case Expr::Kind::ternary:
        return eval(*e.kids[0]).truthy() ? eval(*e.kids[1]) : eval(*e.kids[2]);
      case Expr::Kind::list: case Expr::Kind::tuple: {
        List items;
        for (const auto& k : e.kids) items.push_back(eval(*k));
        return Value::make_list(std::move(items));
      }
      case Expr::Kind::dict: {
        Value d = Value::make_dict();
        for (size_t k = 0; k + 1 < e.kids.size(); k += 2) {
          Value key = eval(*e.kids[k]);
          if (!key.is_string()) key = Value::string(to_str(key));
          d.dict->set(key.s, eval(*e.kids[k + 1]));
        }
        return d;
      }
    }
    return Value::undefined();
  }
};

std::string render(const Template& tmpl, const Value& context) {
  if (!context.is_dict()) fail("the render context must be a JSON object");
  Interpreter in;
  in.scopes.emplace_back();  // globals: the context
  for (const auto& [name, v] : context.dict->items) in.scopes[0][name] = v;
  in.scopes.emplace_back();  // the template's own top-level `set`s
  std::string out;
  in.exec_body(tmpl.body, out);
  return out;
}

}  // namespace xent::jinja
