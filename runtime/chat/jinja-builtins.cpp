// The filters, tests, str/dict methods and global functions that chat templates use,
// following Jinja2's and Python's behaviour (and Hugging Face's tojson).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "runtime/chat/jinja.h"

namespace xent::jinja {

namespace {

constexpr const char* whitespace = " \t\n\r\f\v";

std::string strip(const std::string& s, const char* chars, bool left, bool right) {
  size_t b = 0, e = s.size();
  if (left) {
    b = s.find_first_not_of(chars);
    if (b == std::string::npos) return {};
  }
  if (right) {
    size_t last = s.find_last_not_of(chars);
    e = last == std::string::npos ? b : last + 1;
  }
  return e > b ? s.substr(b, e - b) : std::string();
}

std::string ascii_case(std::string s, bool upper) {
  for (char& c : s) c = static_cast<char>(upper ? std::toupper(static_cast<unsigned char>(c))
                                                : std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Python's str.title(): a letter after a non-letter is upper-cased, any other lower-cased.
std::string title_case(const std::string& s) {
  std::string out = s;
  bool prev_letter = false;
  for (char& c : out) {
    unsigned char u = static_cast<unsigned char>(c);
    bool letter = std::isalpha(u) != 0;
    if (letter) c = static_cast<char>(prev_letter ? std::tolower(u) : std::toupper(u));
    prev_letter = letter || u >= 0x80;
  }
  return out;
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to,
                        int64_t count) {
  std::string out;
  size_t pos = 0;
  int64_t done = 0;
  if (from.empty()) {  // Python inserts `to` around every character
    for (size_t k = 0; k <= s.size(); ++k) {
      if (count < 0 || done < count) {
        out += to;
        ++done;
      }
      if (k < s.size()) out += s[k];
      if (out.size() > max_string_bytes) fail("string too large");
    }
    return out;
  }
  while (count < 0 || done < count) {
    size_t at = s.find(from, pos);
    if (at == std::string::npos) break;
    out.append(s, pos, at - pos);
    out += to;
    if (out.size() > max_string_bytes) fail("string too large");
    pos = at + from.size();
    ++done;
  }
  out.append(s, pos);
  return out;
}

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

std::string escape_html(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Value arg_or(const Args& args, size_t index, std::string_view name, Value dflt) {
  const Value* v = args.get(index, name);
  return v ? *v : dflt;
}

std::string string_arg(const Args& args, size_t index, std::string_view name, const char* what,
                       int line, int column, const char* dflt = nullptr) {
  const Value* v = args.get(index, name);
  if (!v || v->is_none()) {
    if (dflt) return dflt;
    fail(std::string(what) + " needs the argument '" + std::string(name) + "'", line, column);
  }
  if (!v->is_string()) fail(std::string(what) + ": '" + std::string(name) + "' must be a string", line, column);
  return v->s;
}

int64_t int_arg(const Args& args, size_t index, std::string_view name, int64_t dflt) {
  const Value* v = args.get(index, name);
  if (!v || v->is_none()) return dflt;
  if (v->kind == Value::Kind::integer) return v->i;
  if (v->kind == Value::Kind::boolean) return v->b;
  if (v->kind == Value::Kind::number) return static_cast<int64_t>(v->f);
  return dflt;
}

List as_list(const Value& v, const char* what, int line, int column) {
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
      for (size_t k = 0; k < v.s.size();) {
        size_t n = 1;
        while (k + n < v.s.size() && (static_cast<unsigned char>(v.s[k + n]) & 0xC0) == 0x80) ++n;
        chars.push_back(Value::string(v.s.substr(k, n)));
        k += n;
      }
      return chars;
    }
    default: fail(std::string(what) + ": cannot iterate over " + v.type_name(), line, column);
  }
}

// `attribute="a.b"` as Jinja's filters read it: dotted dict keys or list indices; as with
// `a.b` itself, a part of an undefined value is an error.
Value get_path(const Value& v, const std::string& path, int line, int column) {
  Value cur = v;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t dot = path.find('.', pos);
    std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    if (cur.is_undefined()) cur.fail_undefined(line, column);
    if (cur.is_dict()) {
      const Value* next = cur.dict->find(part);
      cur = next ? *next : Value::no_attribute(cur, part);
    } else if (cur.is_list() && !cur.generator && !part.empty() &&
               std::all_of(part.begin(), part.end(), ::isdigit) && part.size() < 18) {
      int64_t i = std::stoll(part);
      cur = static_cast<size_t>(i) < cur.list->size() ? (*cur.list)[static_cast<size_t>(i)]
                                                      : Value::no_element(cur, Value::integer(i));
    } else {
      cur = Value::no_attribute(cur, part);
    }
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  return cur;
}

// select/reject/selectattr/rejectattr: args are (test name, test args...).
List select_items(Interpreter& in, const Value& seq, const Args& args, bool by_attr, bool keep,
                  const char* what, int line, int column) {
  size_t first = 0;
  std::string attr;
  if (by_attr) {
    attr = string_arg(args, 0, "attribute", what, line, column);
    first = 1;
  }
  std::string test;
  Args test_args;
  if (args.positional.size() > first) {
    if (!args.positional[first].is_string()) fail(std::string(what) + ": the test name must be a string", line, column);
    test = args.positional[first].s;
    if (!has_test(test)) fail(std::string(what) + ": unknown test '" + test + "'", line, column);
    test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(first) + 1,
                                args.positional.end());
  }
  List out;
  if (!seq.truthy()) return out;  // Jinja2 iterates only a true value: none gives nothing
  for (const auto& item : as_list(seq, what, line, column)) {
    Value v = by_attr ? get_path(item, attr, line, column) : item;
    bool pass = test.empty() ? v.truthy() : apply_test(in, test, v, test_args, line, column);
    if (pass == keep) out.push_back(item);
  }
  return out;
}

Value list_extreme(const Value& v, bool want_max, int line, int column) {
  List items = as_list(v, want_max ? "max" : "min", line, column);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  for (size_t k = 1; k < items.size(); ++k) {
    int c = compare(items[k], items[best], line, column);
    if (want_max ? c > 0 : c < 0) best = k;
  }
  return items[best];
}

using Filter = Value (*)(Interpreter&, const Value&, const Args&, int, int);

// What Jinja2 hands back where it would be a generator: a list that is always true and
// has no length, index or JSON (see Value::generator).
Value generator(List items) {
  Value v = Value::make_list(std::move(items));
  v.generator = true;
  return v;
}

// Jinja2's filters that convert their input with int(), float() or string methods raise
// on undefined instead of treating it as empty.
void require_defined(const Value& v, int line, int column) {
  if (v.is_undefined()) v.fail_undefined(line, column);
}

Value f_trim(Interpreter&, const Value& v, const Args& a, int l, int c) {
  std::string chars = string_arg(a, 0, "chars", "trim", l, c, whitespace);
  Value r = Value::string(strip(to_str(v), chars.c_str(), true, true));
  r.safe = v.safe;
  return r;
}
Value f_length(Interpreter&, const Value& v, const Args&, int l, int c) {
  switch (v.kind) {
    case Value::Kind::undefined: return Value::integer(0);
    case Value::Kind::string: return Value::integer(static_cast<int64_t>(utf8_length(v.s)));
    case Value::Kind::list:
      if (v.generator) fail("length: object of type 'generator' has no len() (add '| list')", l, c);
      return Value::integer(static_cast<int64_t>(v.list->size()));
    case Value::Kind::dict: return Value::integer(static_cast<int64_t>(v.dict->items.size()));
    default: fail(std::string("length: ") + v.type_name() + " has no length", l, c);
  }
}
Value f_upper(Interpreter&, const Value& v, const Args&, int, int) { return Value::string(ascii_case(to_str(v), true)); }
Value f_lower(Interpreter&, const Value& v, const Args&, int, int) { return Value::string(ascii_case(to_str(v), false)); }
Value f_title(Interpreter&, const Value& v, const Args&, int, int) { return Value::string(title_case(to_str(v))); }
Value f_capitalize(Interpreter&, const Value& v, const Args&, int, int) {
  std::string s = ascii_case(to_str(v), false);
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return Value::string(s);
}
Value f_replace(Interpreter&, const Value& v, const Args& a, int l, int c) {
  return Value::string(replace_all(to_str(v), string_arg(a, 0, "old", "replace", l, c),
                                   string_arg(a, 1, "new", "replace", l, c), int_arg(a, 2, "count", -1)));
}
Value f_tojson(Interpreter&, const Value& v, const Args& a, int, int) {
  int64_t indent = int_arg(a, 0, "indent", -1);
  bool sort_keys = arg_or(a, 99, "sort_keys", Value::boolean(false)).truthy();
  return Value::string(to_json(v, static_cast<int>(std::clamp<int64_t>(indent, -1, 64)), sort_keys));
}
Value f_join(Interpreter&, const Value& v, const Args& a, int l, int c) {
  std::string sep = string_arg(a, 0, "d", "join", l, c, "");
  const Value* attr = a.get(1, "attribute");
  std::string out;
  bool first = true;
  for (const auto& item : as_list(v, "join", l, c)) {
    if (!first) out += sep;
    first = false;
    out += to_str(attr && attr->is_string() ? get_path(item, attr->s, l, c) : item);
    if (out.size() > max_string_bytes) fail("join: string too large", l, c);
  }
  return Value::string(std::move(out));
}
Value f_default(Interpreter&, const Value& v, const Args& a, int, int) {
  bool boolean = arg_or(a, 1, "boolean", Value::boolean(false)).truthy();
  if (v.is_undefined() || (boolean && !v.truthy())) return arg_or(a, 0, "default_value", Value::string(""));
  return v;
}
Value f_first(Interpreter&, const Value& v, const Args&, int l, int c) {
  List items = as_list(v, "first", l, c);
  return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}
Value f_last(Interpreter&, const Value& v, const Args&, int l, int c) {
  List items = as_list(v, "last", l, c);
  return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}
Value f_list(Interpreter&, const Value& v, const Args&, int l, int c) { return Value::make_list(as_list(v, "list", l, c)); }
Value f_items(Interpreter&, const Value& v, const Args&, int l, int c) {
  if (v.is_undefined()) return generator({});
  if (!v.is_dict()) fail(std::string("items: expected a dict, got ") + v.type_name(), l, c);
  List out;
  for (const auto& [k, item] : v.dict->items) out.push_back(Value::make_list({Value::string(k), item}));
  return generator(std::move(out));
}
Value f_string(Interpreter&, const Value& v, const Args&, int, int) {
  if (v.is_string()) return v;  // soft_str keeps Markup
  return Value::string(to_str(v));
}
Value f_int(Interpreter&, const Value& v, const Args& a, int l, int c) {
  require_defined(v, l, c);
  Value dflt = arg_or(a, 0, "default", Value::integer(0));
  switch (v.kind) {
    case Value::Kind::integer: return v;
    case Value::Kind::boolean: return Value::integer(v.b);
    case Value::Kind::number:
      return std::isfinite(v.f) && std::fabs(v.f) < 9.2e18 ? Value::integer(static_cast<int64_t>(v.f)) : dflt;
    case Value::Kind::string: {
      std::string s = strip(v.s, whitespace, true, true);
      char* end = nullptr;
      errno = 0;
      long long i = std::strtoll(s.c_str(), &end, 10);
      if (!s.empty() && *end == '\0' && errno == 0) return Value::integer(i);
      double f = std::strtod(s.c_str(), &end);
      if (!s.empty() && *end == '\0' && std::isfinite(f) && std::fabs(f) < 9.2e18)
        return Value::integer(static_cast<int64_t>(f));
      return dflt;
    }
    default: return dflt;
  }
}
Value f_float(Interpreter&, const Value& v, const Args& a, int l, int c) {
  require_defined(v, l, c);
  Value dflt = arg_or(a, 0, "default", Value::number(0.0));
  if (v.is_numeric()) return Value::number(v.as_double());
  if (v.is_string()) {
    std::string s = strip(v.s, whitespace, true, true);
    char* end = nullptr;
    double f = std::strtod(s.c_str(), &end);
    if (!s.empty() && *end == '\0') return Value::number(f);
  }
  return dflt;
}
Value f_selectattr(Interpreter& in, const Value& v, const Args& a, int l, int c) {
  return generator(select_items(in, v, a, true, true, "selectattr", l, c));
}
Value f_rejectattr(Interpreter& in, const Value& v, const Args& a, int l, int c) {
  return generator(select_items(in, v, a, true, false, "rejectattr", l, c));
}
Value f_select(Interpreter& in, const Value& v, const Args& a, int l, int c) {
  return generator(select_items(in, v, a, false, true, "select", l, c));
}
Value f_reject(Interpreter& in, const Value& v, const Args& a, int l, int c) {
  return generator(select_items(in, v, a, false, false, "reject", l, c));
}
Value f_map(Interpreter& in, const Value& v, const Args& a, int l, int c) {
  List out;
  if (!v.truthy()) return generator({});  // as select: Jinja2 maps only a true value
  const Value* attr = a.get(99, "attribute");
  if (attr) {
    if (!attr->is_string()) fail("map: 'attribute' must be a string", l, c);
    const Value* dflt = a.get(99, "default");
    for (const auto& item : as_list(v, "map", l, c)) {
      Value got = get_path(item, attr->s, l, c);
      out.push_back(got.is_undefined() && dflt ? *dflt : got);
    }
    return generator(std::move(out));
  }
  if (a.positional.empty() || !a.positional[0].is_string()) fail("map needs a filter name or attribute=", l, c);
  const std::string& name = a.positional[0].s;
  if (!has_filter(name)) fail("map: unknown filter '" + name + "'", l, c);
  Args rest;
  rest.positional.assign(a.positional.begin() + 1, a.positional.end());
  rest.named = a.named;
  for (const auto& item : as_list(v, "map", l, c)) out.push_back(apply_filter(in, name, item, rest, l, c));
  return generator(std::move(out));
}
Value f_safe(Interpreter&, const Value& v, const Args&, int, int) {
  Value r = v.is_string() ? v : Value::string(to_str(v));
  r.safe = true;
  return r;
}
Value f_escape(Interpreter&, const Value& v, const Args&, int, int) {
  if (v.safe) return v;
  Value r = Value::string(escape_html(to_str(v)));
  r.safe = true;
  return r;
}
Value f_abs(Interpreter&, const Value& v, const Args&, int l, int c) {
  if (v.kind == Value::Kind::integer) {
    if (v.i == INT64_MIN) fail("integer overflow", l, c);
    return Value::integer(v.i < 0 ? -v.i : v.i);
  }
  if (v.is_numeric()) return Value::number(std::fabs(v.as_double()));
  fail(std::string("abs: expected a number, got ") + v.type_name(), l, c);
}
Value f_round(Interpreter&, const Value& v, const Args& a, int l, int c) {
  if (!v.is_numeric()) fail(std::string("round: expected a number, got ") + v.type_name(), l, c);
  int64_t precision = std::clamp<int64_t>(int_arg(a, 0, "precision", 0), -20, 20);
  std::string method = string_arg(a, 1, "method", "round", l, c, "common");
  double scale = std::pow(10.0, static_cast<double>(precision));
  double x = v.as_double() * scale;
  x = method == "floor" ? std::floor(x) : method == "ceil" ? std::ceil(x) : std::round(x);
  return Value::number(x / scale);
}
Value f_sort(Interpreter&, const Value& v, const Args& a, int l, int c) {
  List items = as_list(v, "sort", l, c);
  bool reverse = arg_or(a, 0, "reverse", Value::boolean(false)).truthy();
  bool case_sensitive = arg_or(a, 1, "case_sensitive", Value::boolean(false)).truthy();
  const Value* attr = a.get(2, "attribute");
  auto key = [&](const Value& item) {
    Value k = attr && attr->is_string() ? get_path(item, attr->s, l, c) : item;
    return k.is_string() && !case_sensitive ? Value::string(ascii_case(k.s, false)) : k;
  };
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    int r = compare(key(x), key(y), l, c);
    return reverse ? r > 0 : r < 0;
  });
  return Value::make_list(std::move(items));
}
Value f_dictsort(Interpreter& in, const Value& v, const Args& a, int l, int c) {
  require_defined(v, l, c);
  Value pairs = f_items(in, v, a, l, c);
  pairs.generator = false;
  std::stable_sort(pairs.list->begin(), pairs.list->end(), [&](const Value& x, const Value& y) {
    return compare((*x.list)[0], (*y.list)[0], l, c) < 0;
  });
  return pairs;
}
Value f_reverse(Interpreter&, const Value& v, const Args&, int l, int c) {
  if (v.is_string()) {
    List chars = as_list(v, "reverse", l, c);
    std::string out;
    for (auto it = chars.rbegin(); it != chars.rend(); ++it) out += it->s;
    return Value::string(std::move(out));
  }
  List items = as_list(v, "reverse", l, c);
  std::reverse(items.begin(), items.end());
  return Value::make_list(std::move(items));
}
Value f_unique(Interpreter&, const Value& v, const Args&, int l, int c) {
  List out;
  for (const auto& item : as_list(v, "unique", l, c)) {
    bool seen = false;
    for (const auto& o : out) seen = seen || equals(o, item);
    if (!seen) out.push_back(item);
  }
  return generator(std::move(out));
}
Value f_min(Interpreter&, const Value& v, const Args&, int l, int c) { return list_extreme(v, false, l, c); }
Value f_max(Interpreter&, const Value& v, const Args&, int l, int c) { return list_extreme(v, true, l, c); }
Value f_sum(Interpreter&, const Value& v, const Args& a, int l, int c) {
  const Value* attr = a.get(0, "attribute");
  Value total = arg_or(a, 1, "start", Value::integer(0));
  for (const auto& item : as_list(v, "sum", l, c)) {
    Value x = attr && attr->is_string() ? get_path(item, attr->s, l, c) : item;
    if (!x.is_numeric() || !total.is_numeric()) fail("sum: expected numbers", l, c);
    if (x.kind == Value::Kind::number || total.kind == Value::Kind::number) {
      total = Value::number(total.as_double() + x.as_double());
    } else {
      int64_t r;
      if (__builtin_add_overflow(static_cast<int64_t>(total.as_double()), static_cast<int64_t>(x.as_double()), &r))
        fail("integer overflow", l, c);
      total = Value::integer(r);
    }
  }
  return total;
}
Value f_indent(Interpreter&, const Value& v, const Args& a, int l, int c) {
  require_defined(v, l, c);
  const Value* w = a.get(0, "width");
  std::string pad = w && w->is_string() ? w->s : std::string(static_cast<size_t>(std::clamp<int64_t>(int_arg(a, 0, "width", 4), 0, 256)), ' ');
  bool first = arg_or(a, 1, "first", Value::boolean(false)).truthy();
  bool blank = arg_or(a, 2, "blank", Value::boolean(false)).truthy();
  std::string s = to_str(v), out;
  size_t pos = 0;
  bool first_line = true;
  while (true) {
    size_t nl = s.find('\n', pos);
    std::string line = s.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    bool indent = first_line ? first : (blank || !line.empty());
    if (indent) out += pad;
    out += line;
    if (out.size() > max_string_bytes) fail("indent: string too large", l, c);
    if (nl == std::string::npos) break;
    out += '\n';
    pos = nl + 1;
    first_line = false;
  }
  return Value::string(std::move(out));
}

struct FilterEntry {
  const char* name;
  Filter fn;
};
const FilterEntry filters[] = {
    {"trim", f_trim}, {"length", f_length}, {"count", f_length}, {"upper", f_upper},
    {"lower", f_lower}, {"title", f_title}, {"capitalize", f_capitalize}, {"replace", f_replace},
    {"tojson", f_tojson}, {"join", f_join}, {"default", f_default}, {"d", f_default},
    {"first", f_first}, {"last", f_last}, {"list", f_list}, {"items", f_items},
    {"string", f_string}, {"int", f_int}, {"float", f_float}, {"selectattr", f_selectattr},
    {"rejectattr", f_rejectattr}, {"select", f_select}, {"reject", f_reject}, {"map", f_map},
    {"safe", f_safe}, {"escape", f_escape}, {"e", f_escape}, {"abs", f_abs}, {"round", f_round},
    {"sort", f_sort}, {"dictsort", f_dictsort}, {"reverse", f_reverse}, {"unique", f_unique},
    {"min", f_min}, {"max", f_max}, {"sum", f_sum}, {"indent", f_indent},
};

const FilterEntry* find_filter(std::string_view name) {
  for (const auto& f : filters)
    if (name == f.name) return &f;
  return nullptr;
}

const char* const tests[] = {"defined", "undefined", "none", "boolean", "true", "false",
                             "integer", "float", "number", "string", "mapping", "iterable",
                             "sequence", "callable", "even", "odd", "divisibleby", "eq",
                             "equalto", "sameas", "ne", "lt", "lessthan", "le", "gt",
                             "greaterthan", "ge", "in", "lower", "upper"};

}  // namespace

std::string html_escape(const std::string& s) { return escape_html(s); }

bool has_filter(std::string_view name) { return find_filter(name) != nullptr; }

bool has_test(std::string_view name) {
  for (const char* t : tests)
    if (name == t) return true;
  return false;
}

Value apply_filter(Interpreter& in, const std::string& name, const Value& v, const Args& args,
                   int line, int column) {
  const FilterEntry* f = find_filter(name);
  if (!f) fail("unknown filter '" + name + "'", line, column);
  return f->fn(in, v, args, line, column);
}

bool apply_test(Interpreter&, const std::string& name, const Value& v, const Args& args, int line,
                int column) {
  using K = Value::Kind;
  auto operand = [&]() -> const Value& {
    if (args.positional.empty()) fail("test '" + name + "' needs an argument", line, column);
    return args.positional[0];
  };
  auto as_int = [&]() -> int64_t {
    if (v.is_undefined()) v.fail_undefined(line, column);
    if (v.kind == K::integer) return v.i;
    if (v.kind == K::number && std::floor(v.f) == v.f && std::fabs(v.f) < 9.2e18) return static_cast<int64_t>(v.f);
    fail("test '" + name + "' needs an integer, got " + v.type_name(), line, column);
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.kind == K::boolean;
  if (name == "true") return v.kind == K::boolean && v.b;
  if (name == "false") return v.kind == K::boolean && !v.b;
  if (name == "integer") return v.kind == K::integer;
  if (name == "float") return v.kind == K::number;
  if (name == "number") return v.is_numeric();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  // Jinja2 asks Python: Undefined can be iterated, has a length and __getitem__, and has
  // __call__ (calling it raises); a generator iterates but has no length.
  if (name == "iterable") return v.is_list() || v.is_dict() || v.is_string() || v.is_undefined();
  if (name == "sequence")
    return (v.is_list() && !v.generator) || v.is_dict() || v.is_string() || v.is_undefined();
  if (name == "callable") return v.kind == K::callable || v.is_undefined();
  if (name == "even") return as_int() % 2 == 0;
  if (name == "odd") return as_int() % 2 != 0;
  if (name == "divisibleby") {
    const Value& d = operand();
    if (d.kind != K::integer || d.i == 0) fail("divisibleby needs a non-zero integer", line, column);
    return d.i == -1 || as_int() % d.i == 0;
  }
  if (name == "eq" || name == "equalto") return equals(v, operand());
  if (name == "sameas") {
    const Value& o = operand();
    if (v.is_list() || v.is_dict()) return v.kind == o.kind && (v.is_list() ? v.list == o.list : v.dict == o.dict);
    return v.kind == o.kind && equals(v, o);
  }
  if (name == "ne") return !equals(v, operand());
  if (name == "lt" || name == "lessthan") return compare(v, operand(), line, column) < 0;
  if (name == "le") return compare(v, operand(), line, column) <= 0;
  if (name == "gt" || name == "greaterthan") return compare(v, operand(), line, column) > 0;
  if (name == "ge") return compare(v, operand(), line, column) >= 0;
  if (name == "in") {
    const Value& c = operand();
    if (c.is_list()) {
      for (const auto& x : *c.list)
        if (equals(x, v)) return true;
      return false;
    }
    if (c.is_dict()) return v.is_string() && c.dict->find(v.s);
    if (c.is_string()) return v.is_string() && c.s.find(v.s) != std::string::npos;
    return false;
  }
  if (name == "lower") return v.is_string() && ascii_case(v.s, false) == v.s;
  if (name == "upper") return v.is_string() && ascii_case(v.s, true) == v.s;
  fail("unknown test '" + name + "'", line, column);
}

Value call_method(const Value& obj, const std::string& name, const Args& args, int line,
                  int column, bool& found) {
  found = true;
  if (obj.is_string()) {
    const std::string& s = obj.s;
    auto chars = [&](const char* what) {
      return string_arg(args, 0, "chars", what, line, column, whitespace);
    };
    if (name == "strip") return Value::string(strip(s, chars("strip").c_str(), true, true));
    if (name == "lstrip") return Value::string(strip(s, chars("lstrip").c_str(), true, false));
    if (name == "rstrip") return Value::string(strip(s, chars("rstrip").c_str(), false, true));
    if (name == "upper") return Value::string(ascii_case(s, true));
    if (name == "lower") return Value::string(ascii_case(s, false));
    if (name == "title") return Value::string(title_case(s));
    if (name == "capitalize") {
      std::string r = ascii_case(s, false);
      if (!r.empty()) r[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(r[0])));
      return Value::string(r);
    }
    if (name == "replace")
      return Value::string(replace_all(s, string_arg(args, 0, "old", "replace", line, column),
                                       string_arg(args, 1, "new", "replace", line, column),
                                       int_arg(args, 2, "count", -1)));
    if (name == "startswith" || name == "endswith") {
      const Value* p = args.get(0, "prefix");
      if (!p) fail(name + " needs an argument", line, column);
      List options = p->is_list() ? *p->list : List{*p};
      for (const auto& o : options) {
        if (!o.is_string()) fail(name + " needs a string", line, column);
        bool hit = name == "startswith"
                       ? s.compare(0, o.s.size(), o.s) == 0
                       : s.size() >= o.s.size() && s.compare(s.size() - o.s.size(), o.s.size(), o.s) == 0;
        if (hit) return Value::boolean(true);
      }
      return Value::boolean(false);
    }
    if (name == "split") {
      const Value* sep = args.get(0, "sep");
      int64_t maxsplit = int_arg(args, 1, "maxsplit", -1);
      List parts;
      if (!sep || sep->is_none()) {  // runs of whitespace, no empty parts
        size_t pos = s.find_first_not_of(whitespace);
        while (pos != std::string::npos) {
          if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
            parts.push_back(Value::string(strip(s.substr(pos), whitespace, false, true)));
            break;
          }
          size_t end = s.find_first_of(whitespace, pos);
          parts.push_back(Value::string(s.substr(pos, end == std::string::npos ? std::string::npos : end - pos)));
          pos = end == std::string::npos ? end : s.find_first_not_of(whitespace, end);
        }
        return Value::make_list(std::move(parts));
      }
      if (!sep->is_string() || sep->s.empty()) fail("split: bad separator", line, column);
      size_t pos = 0;
      while (true) {
        size_t at = s.find(sep->s, pos);
        if (at == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit)) {
          parts.push_back(Value::string(s.substr(pos)));
          break;
        }
        parts.push_back(Value::string(s.substr(pos, at - pos)));
        pos = at + sep->s.size();
      }
      return Value::make_list(std::move(parts));
    }
    if (name == "find") {
      size_t at = s.find(string_arg(args, 0, "sub", "find", line, column));
      return Value::integer(at == std::string::npos ? -1 : static_cast<int64_t>(at));
    }
    if (name == "join") {
      const Value* items = args.get(0, "iterable");
      if (!items) fail("join needs an argument", line, column);
      std::string out;
      bool first = true;
      for (const auto& item : as_list(*items, "join", line, column)) {
        if (!first) out += s;
        first = false;
        out += to_str(item);
        if (out.size() > max_string_bytes) fail("join: string too large", line, column);
      }
      return Value::string(std::move(out));
    }
  } else if (obj.is_dict()) {
    const Dict& d = *obj.dict;
    if (name == "items") {
      List out;
      for (const auto& [k, v] : d.items) out.push_back(Value::make_list({Value::string(k), v}));
      return Value::make_list(std::move(out));
    }
    if (name == "keys") {
      List out;
      for (const auto& kv : d.items) out.push_back(Value::string(kv.first));
      return Value::make_list(std::move(out));
    }
    if (name == "values") {
      List out;
      for (const auto& kv : d.items) out.push_back(kv.second);
      return Value::make_list(std::move(out));
    }
    if (name == "get") {
      const Value* key = args.get(0, "key");
      if (!key) fail("get needs a key", line, column);
      const Value* v = key->is_string() ? d.find(key->s) : nullptr;
      return v ? *v : arg_or(args, 1, "default", Value::none());
    }
  }
  found = false;
  return Value::undefined();
}

namespace {

Value make_callable(const std::string& name,
                    std::function<Value(Interpreter&, const Args&, int, int)> call) {
  Value v;
  v.kind = Value::Kind::callable;
  v.fn = std::make_shared<Callable>();
  v.fn->name = name;
  v.fn->call = std::move(call);
  return v;
}

}  // namespace

Value make_global_function(const std::string& name) {
  if (name == "raise_exception")
    return make_callable(name, [](Interpreter&, const Args& a, int line, int column) -> Value {
      std::string msg = a.positional.empty() ? "raise_exception called" : to_str(a.positional[0]);
      fail("raise_exception: " + msg, line, column);
    });
  if (name == "range")
    return make_callable(name, [](Interpreter&, const Args& a, int line, int column) {
      std::vector<int64_t> n;
      for (const auto& v : a.positional) {
        if (v.kind != Value::Kind::integer) fail("range needs integers", line, column);
        n.push_back(v.i);
      }
      if (n.empty() || n.size() > 3) fail("range takes 1 to 3 integers", line, column);
      int64_t start = n.size() > 1 ? n[0] : 0, stop = n.size() > 1 ? n[1] : n[0];
      int64_t step = n.size() > 2 ? n[2] : 1;
      if (step == 0) fail("range step cannot be zero", line, column);
      List out;
      for (int64_t k = start; step > 0 ? k < stop : k > stop;) {
        if (out.size() >= max_list_items) fail("range too large", line, column);
        out.push_back(Value::integer(k));
        if (__builtin_add_overflow(k, step, &k)) break;
      }
      return Value::make_list(std::move(out));
    });
  if (name == "namespace" || name == "dict")
    return make_callable(name, [name](Interpreter&, const Args& a, int line, int column) {
      Value d = Value::make_dict();
      d.dict->is_namespace = name == "namespace";
      for (const auto& p : a.positional) {
        if (!p.is_dict()) fail(name + " takes a dict or name=value arguments", line, column);
        for (const auto& [k, v] : p.dict->items) d.dict->set(k, v);
      }
      for (const auto& [k, v] : a.named) d.dict->set(k, v);
      return d;
    });
  if (name == "strftime_now")
    return make_callable(name, [](Interpreter&, const Args& a, int line, int column) {
      if (a.positional.empty() || !a.positional[0].is_string()) fail("strftime_now needs a format string", line, column);
      std::time_t now = std::time(nullptr);
      std::tm tm{};
      localtime_r(&now, &tm);
      char buf[256];
      size_t n = std::strftime(buf, sizeof buf, a.positional[0].s.c_str(), &tm);
      return Value::string(std::string(buf, n));
    });
  return Value::undefined(name);
}

}  // namespace xent::jinja
