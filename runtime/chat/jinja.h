// Internals of the small Jinja2 interpreter behind ChatTemplate: the value model, the syntax
// tree, and the entry points of the parser (jinja-parse.cpp) and evaluator (jinja-eval.cpp).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/error.h"

namespace xent::jinja {

// Limits that keep any template text from exhausting the stack, memory or time.
inline constexpr int max_parse_depth = 96;            // nested brackets / blocks
inline constexpr int max_eval_depth = 400;            // nested evaluation incl. macro calls
inline constexpr size_t max_string_bytes = 16u << 20;  // any one string and the output
inline constexpr size_t max_list_items = 1u << 20;
inline constexpr uint64_t max_steps = 4'000'000;       // statements + expressions + loop rounds

[[noreturn]] void fail(const std::string& what, int line = 0, int column = 0);

struct Value;
using List = std::vector<Value>;
struct Dict;
struct Callable;

// A Python-like value. Lists and dicts are shared by reference, as in Python, so that a
// namespace() object changed inside a loop is seen after it.
//
// `undefined` is Jinja2's default Undefined, not none: it prints as "", is falsy, iterates
// as empty and has length 0, while an attribute, item, call, arithmetic or ordering on it is
// an error quoting `s`, the reason it is undefined ("'x' is undefined", "'dict object' has
// no attribute 'y'"), as Jinja2's UndefinedError does.
struct Value {
  enum class Kind { undefined, none, boolean, integer, number, string, list, dict, callable };
  Kind kind = Kind::undefined;
  bool b = false;
  int64_t i = 0;
  double f = 0.0;
  std::string s;  // the string, or for undefined why it is undefined
  // A list that Jinja2 would hold as a generator (what map, select, reject, selectattr and
  // rejectattr return): always true, and no length, index or JSON until `| list`.
  bool generator = false;
  // A string that is markupsafe's Markup (from `safe` or `escape`): `+` with a plain
  // string HTML-escapes the plain side, as Python's Markup.__add__ does.
  bool safe = false;
  std::shared_ptr<List> list;
  std::shared_ptr<Dict> dict;
  std::shared_ptr<Callable> fn;

  // `why` is the whole message an error on this value will quote.
  static Value undefined(std::string why = "value is undefined");
  static Value undefined_name(const std::string& name);           // 'name' is undefined
  static Value no_attribute(const Value& obj, const std::string& attr);  // 'dict object' has no attribute 'attr'
  static Value no_element(const Value& obj, const Value& key);    // list object has no element 5
  static Value none();
  static Value boolean(bool v);
  static Value integer(int64_t v);
  static Value number(double v);
  static Value string(std::string v);
  static Value make_list(List items = {});
  static Value make_dict();
  // Objects keep the key order of the JSON type: sorted for nlohmann::json, as written for
  // nlohmann::ordered_json (what Python's dicts, and so Hugging Face's tojson, would keep).
  static Value from_json(const nlohmann::json& j);
  static Value from_json(const nlohmann::ordered_json& j);

  bool is_undefined() const { return kind == Kind::undefined; }
  bool is_none() const { return kind == Kind::none; }
  bool is_string() const { return kind == Kind::string; }
  bool is_list() const { return kind == Kind::list; }
  bool is_dict() const { return kind == Kind::dict; }
  bool is_numeric() const { return kind == Kind::integer || kind == Kind::number || kind == Kind::boolean; }
  double as_double() const;
  bool truthy() const;
  const char* type_name() const;
  // Fails with the reason this undefined value is undefined, as Jinja2 does when an
  // undefined value is used as an object, number or callable.
  [[noreturn]] void fail_undefined(int line, int column) const;
};

// Insertion-ordered string-keyed map, as Python dicts are; chat-template dicts are small,
// so a linear search beats hashing.
struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  bool is_namespace = false;  // only namespace() objects accept `set ns.attr = ...`
  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value v);
};

struct Args {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> named;
  const Value* get(size_t index, std::string_view name) const;  // positional or by name
};

struct Interpreter;
struct Callable {
  std::string name;
  std::function<Value(Interpreter&, const Args&, int line, int column)> call;
};

// Python's str() and repr() of a value; json() is Hugging Face's tojson (json.dumps with
// ensure_ascii=False, insertion-ordered keys).
std::string to_str(const Value& v);
std::string to_repr(const Value& v);
std::string to_json(const Value& v, int indent, bool sort_keys);
std::string html_escape(const std::string& s);  // markupsafe's escape()
bool equals(const Value& a, const Value& b);
int compare(const Value& a, const Value& b, int line, int column);  // <0, 0, >0

// ---------------------------------------------------------------- syntax tree

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    literal, name, attr, item, slice, call, filter, test, unary, binary, compare, ternary,
    list, dict, tuple
  };
  Kind kind;
  int line = 0, column = 0;
  Value value;            // literal
  std::string name;       // name / attr / filter / test, or the operator
  std::vector<ExprPtr> kids;  // operands; call args; list/tuple items; dict key,value pairs
  std::vector<std::string> arg_names;  // for call/filter/test: name per kid after the first
                                       // (empty string = positional)
  std::vector<std::string> ops;        // compare: one per operand after the first
  bool negated = false;               // test: `is not`
  bool has[3] = {false, false, false};  // slice: start/stop/step present
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  enum class Kind { text, output, if_, for_, set, set_block, macro, break_, continue_, block };
  Kind kind;
  int line = 0, column = 0;
  std::string text;                    // text
  ExprPtr expr;                        // output, set value, for iterable
  std::vector<ExprPtr> conditions;     // if: one per branch; for: optional filter
  std::vector<Body> bodies;            // if: one per branch (+ else); for: body (+ else)
  std::vector<std::string> targets;    // for / set names; set ns.attr: {ns, attr}
  bool attr_target = false;            // set ns.attr = ...
  std::vector<std::string> params;     // macro parameters
  std::vector<ExprPtr> defaults;       // macro defaults (null where none), one per param
};

struct Template {
  Body body;
};

std::unique_ptr<Template> parse(std::string_view source);

// Renders `tmpl` with the given top-level variables (a dict value).
std::string render(const Template& tmpl, const Value& context);

// ---------------------------------------------------------------- built-ins (jinja-builtins.cpp)

bool has_filter(std::string_view name);
bool has_test(std::string_view name);
Value apply_filter(Interpreter& in, const std::string& name, const Value& v, const Args& args,
                   int line, int column);
bool apply_test(Interpreter& in, const std::string& name, const Value& v, const Args& args,
                int line, int column);
// Methods of str, dict and list (`s.strip()`, `d.items()`); sets `found` false if there is none.
Value call_method(const Value& obj, const std::string& name, const Args& args, int line,
                  int column, bool& found);
Value make_global_function(const std::string& name);  // undefined if no such global

}  // namespace xent::jinja
