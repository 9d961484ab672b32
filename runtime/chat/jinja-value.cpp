// The Python-like values of the chat-template interpreter: construction from JSON, truth,
// equality and ordering, and the str()/repr()/json.dumps() spellings templates print.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "runtime/chat/jinja.h"

namespace xent::jinja {

Value Value::undefined(std::string why) {
  Value v;
  v.s = std::move(why);
  return v;
}

Value Value::undefined_name(const std::string& name) { return undefined("'" + name + "' is undefined"); }

namespace {
// Jinja2's object_type_repr: how its undefined-messages name the type of an object.
std::string python_type(const Value& obj) {
  switch (obj.kind) {
    case Value::Kind::none: return "None";
    case Value::Kind::boolean: return "bool object";
    case Value::Kind::integer: return "int object";
    case Value::Kind::number: return "float object";
    case Value::Kind::string: return "str object";
    case Value::Kind::list: return obj.generator ? "generator object" : "list object";
    case Value::Kind::dict: return obj.dict->is_namespace ? "namespace object" : "dict object";
    case Value::Kind::callable: return "function object";
    case Value::Kind::undefined: return "Undefined";
  }
  return "object";
}
}  // namespace

Value Value::no_attribute(const Value& obj, const std::string& attr) {
  std::string why = "'";  // appended, not `"'" + ...`, which trips GCC 12's -Wrestrict
  why += python_type(obj);
  why += "' has no attribute '";
  why += attr;
  why += "'";
  return undefined(std::move(why));
}

Value Value::no_element(const Value& obj, const Value& key) {
  if (key.is_string()) return no_attribute(obj, key.s);
  return undefined(python_type(obj) + " has no element " + to_repr(key));
}

void Value::fail_undefined(int line, int column) const { fail(s, line, column); }
Value Value::none() {
  Value v;
  v.kind = Kind::none;
  return v;
}
Value Value::boolean(bool b) {
  Value v;
  v.kind = Kind::boolean;
  v.b = b;
  return v;
}
Value Value::integer(int64_t i) {
  Value v;
  v.kind = Kind::integer;
  v.i = i;
  return v;
}
Value Value::number(double f) {
  Value v;
  v.kind = Kind::number;
  v.f = f;
  return v;
}
Value Value::string(std::string s) {
  Value v;
  v.kind = Kind::string;
  v.s = std::move(s);
  return v;
}
Value Value::make_list(List items) {
  Value v;
  v.kind = Kind::list;
  v.list = std::make_shared<List>(std::move(items));
  return v;
}
Value Value::make_dict() {
  Value v;
  v.kind = Kind::dict;
  v.dict = std::make_shared<Dict>();
  return v;
}

namespace {
template <class Json>
Value value_from_json(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null: return Value::none();
    case Json::value_t::boolean: return Value::boolean(j.template get<bool>());
    case Json::value_t::number_integer: return Value::integer(j.template get<int64_t>());
    case Json::value_t::number_unsigned: {
      uint64_t u = j.template get<uint64_t>();
      return u > static_cast<uint64_t>(INT64_MAX) ? Value::number(static_cast<double>(u))
                                                  : Value::integer(static_cast<int64_t>(u));
    }
    case Json::value_t::number_float: return Value::number(j.template get<double>());
    case Json::value_t::string: return Value::string(j.template get<std::string>());
    case Json::value_t::array: {
      List items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(value_from_json(e));
      return Value::make_list(std::move(items));
    }
    case Json::value_t::object: {
      Value d = Value::make_dict();
      for (auto it = j.begin(); it != j.end(); ++it) d.dict->set(it.key(), value_from_json(it.value()));
      return d;
    }
    default: return Value::undefined();
  }
}
}  // namespace

Value Value::from_json(const nlohmann::json& j) { return value_from_json(j); }
Value Value::from_json(const nlohmann::ordered_json& j) { return value_from_json(j); }

double Value::as_double() const {
  switch (kind) {
    case Kind::boolean: return b ? 1.0 : 0.0;
    case Kind::integer: return static_cast<double>(i);
    case Kind::number: return f;
    default: return 0.0;
  }
}

bool Value::truthy() const {
  switch (kind) {
    case Kind::undefined: case Kind::none: return false;
    case Kind::boolean: return b;
    case Kind::integer: return i != 0;
    case Kind::number: return f != 0.0;
    case Kind::string: return !s.empty();
    case Kind::list: return generator || !list->empty();
    case Kind::dict: return dict->is_namespace || !dict->items.empty();
    case Kind::callable: return true;
  }
  return false;
}

const char* Value::type_name() const {
  switch (kind) {
    case Kind::undefined: return "undefined";
    case Kind::none: return "none";
    case Kind::boolean: return "bool";
    case Kind::integer: return "int";
    case Kind::number: return "float";
    case Kind::string: return "string";
    case Kind::list: return "list";
    case Kind::dict: return dict->is_namespace ? "namespace" : "dict";
    case Kind::callable: return "function";
  }
  return "?";
}

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}

void Dict::set(const std::string& key, Value v) {
  for (auto& [k, old] : items)
    if (k == key) {
      old = std::move(v);
      return;
    }
  items.emplace_back(key, std::move(v));
}

const Value* Args::get(size_t index, std::string_view name) const {
  for (const auto& [k, v] : named)
    if (k == name) return &v;
  return index < positional.size() ? &positional[index] : nullptr;
}

namespace {
bool equals_at(const Value& a, const Value& b, int depth) {
  using K = Value::Kind;
  if (depth > 128) fail("value nested too deeply to compare");
  if (a.is_numeric() && b.is_numeric()) {
    if (a.kind != K::number && b.kind != K::number)
      return (a.kind == K::boolean ? a.b : a.i) == (b.kind == K::boolean ? b.b : b.i);
    return a.as_double() == b.as_double();
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case K::undefined: case K::none: return true;
    case K::string: return a.s == b.s;
    case K::list:
      if (a.list->size() != b.list->size()) return false;
      for (size_t k = 0; k < a.list->size(); ++k)
        if (!equals_at((*a.list)[k], (*b.list)[k], depth + 1)) return false;
      return true;
    case K::dict:
      if (a.dict == b.dict) return true;
      if (a.dict->is_namespace || b.dict->is_namespace) return false;
      if (a.dict->items.size() != b.dict->items.size()) return false;
      for (const auto& [k, v] : a.dict->items) {
        const Value* other = b.dict->find(k);
        if (!other || !equals_at(v, *other, depth + 1)) return false;
      }
      return true;
    case K::callable: return a.fn == b.fn;
    default: return false;
  }
}
}  // namespace

bool equals(const Value& a, const Value& b) { return equals_at(a, b, 0); }

int compare(const Value& a, const Value& b, int line, int column) {
  for (const Value* v : {&a, &b})
    if (v->is_undefined()) v->fail_undefined(line, column);
  if (a.is_numeric() && b.is_numeric()) {
    double x = a.as_double(), y = b.as_double();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) return a.s < b.s ? -1 : a.s > b.s ? 1 : 0;
  if (a.is_list() && b.is_list()) {
    size_t n = std::min(a.list->size(), b.list->size());
    for (size_t k = 0; k < n; ++k) {
      int c = compare((*a.list)[k], (*b.list)[k], line, column);
      if (c != 0) return c;
    }
    return a.list->size() < b.list->size() ? -1 : a.list->size() > b.list->size() ? 1 : 0;
  }
  fail(std::string("cannot compare ") + a.type_name() + " with " + b.type_name(), line, column);
}

namespace {

// Python's repr() of a float: the shortest digits that read back the same value.
std::string float_repr(double f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  char buf[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, f);
    if (std::strtod(buf, nullptr) == f) break;
  }
  std::string s = buf;
  size_t e = s.find('e');
  if (e != std::string::npos) {
    // C writes 1e+20 and 1e-05; Python writes 1e+20 and 1e-05 too, but switches to
    // exponents only from 1e16 on, where %g switches at the precision.
    int exp10 = std::atoi(s.c_str() + e + 1);
    if (exp10 >= -4 && exp10 < 16) {
      std::snprintf(buf, sizeof buf, "%.17f", f);
      std::string fixed = buf;
      // Trim to the shortest that reads back the same value.
      for (size_t keep = fixed.find('.') + 2; keep <= fixed.size(); ++keep) {
        std::string cut = fixed.substr(0, keep);
        if (std::strtod(cut.c_str(), nullptr) == f) return cut;
      }
      return fixed;
    }
    return s;
  }
  if (s.find('.') == std::string::npos) s += ".0";
  return s;
}

std::string quote_repr(const std::string& s) {
  char q = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
  std::string out(1, q);
  for (char c : s) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c == q) {
          out += '\\';
          out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += q;
  return out;
}

void json_string(std::string& out, const std::string& s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

// Values can contain themselves through namespace attributes, so printing, JSON and
// equality stop at a fixed depth instead of recursing forever.
constexpr int max_value_depth = 128;

void json_into(std::string& out, const Value& v, int indent, bool sort_keys, int level) {
  if (out.size() > max_string_bytes) fail("tojson output too large");
  if (level > max_value_depth) fail("value nested too deeply for tojson");
  using K = Value::Kind;
  auto newline = [&](int lvl) {
    if (indent < 0) return;
    out += '\n';
    out.append(static_cast<size_t>(indent) * static_cast<size_t>(lvl), ' ');
  };
  // json.dumps uses ", " between items without indent and "," with it.
  const char* item_sep = indent < 0 ? ", " : ",";
  switch (v.kind) {
    case K::undefined: fail("Object of type Undefined is not JSON serializable (" + v.s + ")");
    case K::none: out += "null"; break;
    case K::boolean: out += v.b ? "true" : "false"; break;
    case K::integer: out += std::to_string(v.i); break;
    case K::number:
      if (std::isnan(v.f)) out += "NaN";
      else if (std::isinf(v.f)) out += v.f > 0 ? "Infinity" : "-Infinity";
      else out += float_repr(v.f);
      break;
    case K::string: json_string(out, v.s); break;
    case K::list:
      if (v.generator) fail("Object of type generator is not JSON serializable (add '| list')");
      if (v.list->empty()) {
        out += "[]";
        break;
      }
      out += '[';
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k) out += item_sep;
        newline(level + 1);
        json_into(out, (*v.list)[k], indent, sort_keys, level + 1);
      }
      newline(level);
      out += ']';
      break;
    case K::dict: {
      if (v.dict->items.empty()) {
        out += "{}";
        break;
      }
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& kv : v.dict->items) items.push_back(&kv);
      if (sort_keys)
        std::sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
      out += '{';
      for (size_t k = 0; k < items.size(); ++k) {
        if (k) out += item_sep;
        newline(level + 1);
        json_string(out, items[k]->first);
        out += ": ";
        json_into(out, items[k]->second, indent, sort_keys, level + 1);
      }
      newline(level);
      out += '}';
      break;
    }
    case K::callable: fail("cannot convert a function to JSON");
  }
}

}  // namespace

std::string to_str(const Value& v) {
  switch (v.kind) {
    case Value::Kind::undefined: return {};
    case Value::Kind::string: return v.s;
    default: return to_repr(v);
  }
}

namespace {
std::string repr_at(const Value& v, int depth) {
  using K = Value::Kind;
  if (depth > max_value_depth) fail("value nested too deeply to print");
  switch (v.kind) {
    case K::undefined: return "Undefined";  // str() of it is "", repr() is not
    case K::none: return "None";
    case K::boolean: return v.b ? "True" : "False";
    case K::integer: return std::to_string(v.i);
    case K::number: return float_repr(v.f);
    case K::string: return quote_repr(v.s);
    case K::list: {
      if (v.generator) return "<generator object>";
      std::string out = "[";
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k) out += ", ";
        out += repr_at((*v.list)[k], depth + 1);
        if (out.size() > max_string_bytes) fail("value too large to print");
      }
      return out + "]";
    }
    case K::dict: {
      if (v.dict->is_namespace) return "<Namespace>";
      std::string out = "{";
      bool first = true;
      for (const auto& [k, item] : v.dict->items) {
        if (!first) out += ", ";
        first = false;
        out += quote_repr(k) + ": " + repr_at(item, depth + 1);
        if (out.size() > max_string_bytes) fail("value too large to print");
      }
      return out + "}";
    }
    case K::callable: return "<function " + v.fn->name + ">";
  }
  return {};
}
}  // namespace

std::string to_repr(const Value& v) { return repr_at(v, 0); }

std::string to_json(const Value& v, int indent, bool sort_keys) {
  std::string out;
  json_into(out, v, indent, sort_keys, 0);
  return out;
}

}  // namespace xent::jinja
