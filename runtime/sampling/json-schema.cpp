#include "runtime/sampling/json-schema.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "formats/error.h"

namespace xent {

namespace {

// Ordered, so that properties come out in the order the schema lists them.
using Json = nlohmann::ordered_json;

constexpr uint64_t kMaxRepeat = 10000;  // Grammar::parse refuses larger {m,n} bounds

[[noreturn]] void fail(const std::string& what) { throw Error("json schema: " + what); }

// "#/properties/a~1b" for the pointer "/properties/a~1b"; "#" for the whole schema.
std::string where(const std::string& ptr) { return "#" + ptr; }

std::string pointer_token(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

// A GBNF string literal that matches exactly these bytes.
std::string literal(std::string_view bytes) {
  static const char* hex = "0123456789ABCDEF";
  std::string out = "\"";
  for (char ch : bytes) {
    const auto b = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') out += '\\', out += ch;
    else if (ch == '\n') out += "\\n";
    else if (ch == '\r') out += "\\r";
    else if (ch == '\t') out += "\\t";
    else if (b < 0x20 || b == 0x7F) out += "\\x", out += hex[b >> 4], out += hex[b & 15];
    else out += ch;
  }
  return out + "\"";
}

// One code point inside a GBNF character class.
std::string class_char(uint32_t cp) {
  if ((cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return std::string(1, static_cast<char>(cp));
  char buf[16];
  if (cp < 0x100) std::snprintf(buf, sizeof buf, "\\x%02X", cp);
  else if (cp < 0x10000) std::snprintf(buf, sizeof buf, "\\u%04X", cp);
  else std::snprintf(buf, sizeof buf, "\\U%08X", cp);
  return buf;
}

std::vector<uint32_t> code_points(const std::string& s) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const int n = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    uint32_t cp = n == 1 ? b : n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
    for (int k = 1; k < n && i + static_cast<size_t>(k) < s.size(); ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + static_cast<size_t>(k)]) & 0x3F);
    out.push_back(cp);
    i += static_cast<size_t>(n);
  }
  return out;
}

bool is_annotation(const std::string& k) {
  static const std::set<std::string> names = {"title",      "description", "default",  "examples",
                                              "$schema",    "$id",         "$comment", "deprecated",
                                              "readOnly",   "writeOnly",   "$defs",    "definitions"};
  return names.count(k) != 0;
}

bool is_supported(const std::string& k) {
  static const std::set<std::string> names = {
      "type",       "enum",       "const",       "anyOf",                "oneOf",    "allOf",
      "$ref",       "properties", "required",    "additionalProperties", "items",    "minItems",
      "maxItems",   "minLength",  "maxLength",   "format"};
  return is_annotation(k) || names.count(k) != 0;
}

bool type_matches(const Json& v, const std::string& type) {
  if (type == "string") return v.is_string();
  if (type == "number") return v.is_number();
  if (type == "integer") return v.is_number_integer() || (v.is_number_float() && v.get<double>() == static_cast<double>(static_cast<int64_t>(v.get<double>())));
  if (type == "boolean") return v.is_boolean();
  if (type == "null") return v.is_null();
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  return false;
}

// The rules every schema may use, written once each. Reserved as names from the start so
// that a rule named after a property or a definition never takes one.
const std::vector<std::pair<std::string, std::string>>& fixed_rules() {
  static const std::vector<std::pair<std::string, std::string>> rules = {
      // Bounded: one space, or a line break and an indent of at most 16.
      {"ws", R"(( " " | "\n" [ \t]{0,16} )?)"},
      {"hex", R"([0-9a-fA-F])"},
      // \u escapes stop short of the surrogates, which a JSON parser may refuse alone.
      {"char", R"([^"\\\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" ( [0-9a-cA-Ce-fE-F] hex{3} | [dD] [0-7] hex{2} ) ))"},
      {"string", R"("\"" char* "\"")"},
      {"integer", R"("-"? ( "0" | [1-9] [0-9]{0,15} ))"},
      {"number", R"(integer ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,2} )?)"},
      {"boolean", R"("true" | "false")"},
      {"null", R"("null")"},
      {"value", R"(object | array | string | number | boolean | null)"},
      {"object", R"("{" ws ( string ws ":" ws value ws ( "," ws string ws ":" ws value ws )* )? "}")"},
      {"array", R"("[" ws ( value ws ( "," ws value ws )* )? "]")"},
      // Valid calendar days (February to 28, years 1000-2999), as date.fromisoformat reads them.
      {"date", R"([12] [0-9]{3} "-" ( ( "0" [13578] | "1" [02] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] ) | ( "0" [469] | "11" ) "-" ( "0" [1-9] | [12] [0-9] | "30" ) | "02-" ( "0" [1-9] | "1" [0-9] | "2" [0-8] ) ))"},
      // RFC 3339 full-time: the offset is required.
      {"time", R"(( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? ( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ))"},
      {"date-time", R"(date "T" time)"},
      {"uuid", R"(hex{8} "-" hex{4} "-" hex{4} "-" hex{4} "-" hex{12})"},
  };
  return rules;
}

// Which fixed rules each fixed rule uses, to write only what the grammar needs.
const std::map<std::string, std::vector<std::string>>& fixed_uses() {
  static const std::map<std::string, std::vector<std::string>> uses = {
      {"char", {"hex"}},          {"string", {"char"}},
      {"number", {"integer"}},    {"value", {"object", "array", "string", "number", "boolean", "null"}},
      {"object", {"ws", "string", "value"}}, {"array", {"ws", "value"}},
      {"date-time", {"date", "time"}},       {"uuid", {"hex"}},
  };
  return uses;
}

class Converter {
 public:
  explicit Converter(const Json& root) : root_(root) {
    for (const auto& [name, body] : fixed_rules()) taken_.insert(name), (void)body;
    taken_.insert("root");
  }

  std::string run() {
    const std::string top = visit(root_, "", "value");
    std::string out = "root ::= " + top + "\n";
    for (const auto& [name, body] : fixed_rules())
      if (used_fixed_.count(name)) out += name + " ::= " + body + "\n";
    for (const auto& [name, body] : rules_) out += name + " ::= " + body + "\n";
    return out;
  }

 private:
  // A fixed rule by name, marking it (and what it uses) as written.
  std::string fixed(const std::string& name) {
    if (used_fixed_.insert(name).second) {
      auto it = fixed_uses().find(name);
      if (it != fixed_uses().end())
        for (const std::string& dep : it->second) fixed(dep);
    }
    return name;
  }

  std::string unique_name(const std::string& hint) {
    std::string base;
    for (char c : hint) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      if (ok) base += c;
      else if (!base.empty() && base.back() != '-') base += '-';
    }
    while (!base.empty() && base.back() == '-') base.pop_back();
    if (base.empty()) base = "r";
    std::string name = base;
    for (int i = 1; taken_.count(name); ++i) name = base + "-" + std::to_string(i);
    taken_.insert(name);
    return name;
  }

  // A rule with this body (an existing one if another schema part made the same).
  std::string rule(const std::string& hint, const std::string& body) {
    auto it = by_body_.find(body);
    if (it != by_body_.end()) return it->second;
    const std::string name = unique_name(hint);
    rules_.emplace_back(name, body);
    by_body_[body] = name;
    return name;
  }

  void check_keywords(const Json& s, const std::string& ptr) {
    for (auto it = s.begin(); it != s.end(); ++it) {
      const std::string& k = it.key();
      if (k == "pattern")
        fail("keyword 'pattern' at " + where(ptr + "/pattern") + " is not supported (no regular expressions)");
      if (!is_supported(k)) fail("unsupported keyword '" + k + "' at " + where(ptr + "/" + pointer_token(k)));
    }
  }

  uint64_t count(const Json& s, const char* key, const std::string& ptr) {
    const Json& v = s.at(key);
    if (!v.is_number_integer() || v.get<int64_t>() < 0)
      fail("'" + std::string(key) + "' at " + where(ptr + "/" + key) + " must be a non-negative integer");
    const auto n = v.get<uint64_t>();
    if (n > kMaxRepeat) fail("'" + std::string(key) + "' at " + where(ptr + "/" + key) + " is past " + std::to_string(kMaxRepeat));
    return n;
  }

  const Json& resolve(const std::string& ref, const std::string& ptr) {
    if (ref.empty() || ref[0] != '#')
      fail("$ref '" + ref + "' at " + where(ptr) + ": only references inside the schema (#/$defs/..., #/definitions/...) are supported");
    const Json* at = &root_;
    size_t i = 1;
    if (i < ref.size() && ref[i] != '/') fail("$ref '" + ref + "' at " + where(ptr) + ": anchors are not supported");
    while (i < ref.size()) {
      const size_t next = ref.find('/', i + 1);
      std::string token = ref.substr(i + 1, next == std::string::npos ? std::string::npos : next - i - 1);
      std::string decoded;
      for (size_t k = 0; k < token.size(); ++k) {
        if (token[k] == '~' && k + 1 < token.size() && (token[k + 1] == '0' || token[k + 1] == '1'))
          decoded += token[++k] == '0' ? '~' : '/';
        else decoded += token[k];
      }
      if (at->is_object() && at->contains(decoded)) at = &(*at)[decoded];
      else if (at->is_array() && !decoded.empty() && decoded.find_first_not_of("0123456789") == std::string::npos &&
               std::stoul(decoded) < at->size())
        at = &(*at)[std::stoul(decoded)];
      else fail("$ref '" + ref + "' at " + where(ptr) + " points to nothing");
      i = next == std::string::npos ? ref.size() : next;
    }
    return *at;
  }

  std::string visit_ref(const std::string& ref, const std::string& ptr) {
    auto it = ref_rules_.find(ref);
    if (it != ref_rules_.end()) return it->second;
    const Json& target = resolve(ref, ptr);
    const size_t slash = ref.rfind('/');
    const std::string name = unique_name(ref == "#" ? "root-schema" : ref.substr(slash + 1));
    ref_rules_[ref] = name;  // before visiting: a recursive schema refers to the rule by name
    const size_t at = rules_.size();
    rules_.emplace_back(name, "");
    const std::string body = visit(target, ref.substr(1), name);
    rules_[at].second = body;
    return name;
  }

  std::string alternatives(const Json& list, const char* key, const std::string& ptr, const std::string& hint) {
    if (!list.is_array() || list.empty()) fail("'" + std::string(key) + "' at " + where(ptr + "/" + key) + " must be a non-empty array");
    std::string body;
    for (size_t i = 0; i < list.size(); ++i) {
      if (i) body += " | ";
      body += visit(list[i], ptr + "/" + key + "/" + std::to_string(i), hint + "-" + std::to_string(i));
    }
    return rule(hint, body);
  }

  // allOf of object schemas: one object schema with every branch's properties and required.
  std::string visit_all_of(const Json& s, const std::string& ptr, const std::string& hint) {
    const Json& list = s.at("allOf");
    if (!list.is_array() || list.empty()) fail("'allOf' at " + where(ptr + "/allOf") + " must be a non-empty array");
    Json merged = Json::object();
    merged["type"] = "object";
    merged["properties"] = Json::object();
    merged["required"] = Json::array();
    auto take = [&](const Json& part, const std::string& part_ptr, bool is_self) {
      for (auto it = part.begin(); it != part.end(); ++it) {
        const std::string& k = it.key();
        if (is_annotation(k) || (is_self && k == "allOf")) continue;
        if (k == "type") {
          if (it.value() != "object")
            fail("allOf at " + where(ptr) + ": only object schemas can be combined (" + where(part_ptr + "/type") + " is not)");
        } else if (k == "properties") {
          if (!it.value().is_object()) fail("'properties' at " + where(part_ptr + "/properties") + " must be an object");
          for (auto p = it.value().begin(); p != it.value().end(); ++p) {
            if (merged["properties"].contains(p.key()) && merged["properties"][p.key()] != p.value())
              fail("allOf at " + where(ptr) + ": property '" + p.key() + "' has two different schemas");
            merged["properties"][p.key()] = p.value();
          }
        } else if (k == "required") {
          if (!it.value().is_array()) fail("'required' at " + where(part_ptr + "/required") + " must be an array");
          for (const Json& r : it.value()) merged["required"].push_back(r);
        } else {
          fail("allOf at " + where(ptr) + ": keyword '" + k + "' at " + where(part_ptr + "/" + pointer_token(k)) +
               " cannot be combined (allOf takes object schemas with properties and required)");
        }
      }
    };
    take(s, ptr, true);
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string part_ptr = ptr + "/allOf/" + std::to_string(i);
      const Json* part = &list[i];
      std::set<std::string> seen;
      while (part->is_object() && part->contains("$ref")) {
        const std::string ref = (*part)["$ref"].is_string() ? (*part)["$ref"].get<std::string>() : "";
        if (!seen.insert(ref).second) fail("allOf at " + where(ptr) + ": $ref '" + ref + "' refers to itself");
        if (part->size() != 1) fail("allOf at " + where(part_ptr) + ": $ref with other keywords cannot be combined");
        part = &resolve(ref, part_ptr);
      }
      if (!part->is_object()) fail("allOf at " + where(part_ptr) + ": only object schemas can be combined");
      check_keywords(*part, part_ptr);
      take(*part, part_ptr, false);
    }
    return visit(merged, ptr, hint);
  }

  // The schema at ptr as a GBNF expression: a rule name or a literal.
  std::string visit(const Json& s, const std::string& ptr, const std::string& hint) {
    if (s.is_boolean()) {
      if (!s.get<bool>()) fail("the schema at " + where(ptr) + " is false: it admits no value");
      return fixed("value");
    }
    if (!s.is_object()) fail("the schema at " + where(ptr) + " must be an object or a boolean");
    check_keywords(s, ptr);
    auto constraining = [&](const char* except) {
      std::string other;
      for (auto it = s.begin(); it != s.end(); ++it)
        if (!is_annotation(it.key()) && it.key() != except) other = it.key();
      return other;
    };

    if (s.contains("$ref")) {
      if (!s["$ref"].is_string()) fail("'$ref' at " + where(ptr + "/$ref") + " must be a string");
      const std::string other = constraining("$ref");
      if (!other.empty()) fail("'" + other + "' beside $ref at " + where(ptr) + " is not supported");
      return visit_ref(s["$ref"].get<std::string>(), ptr);
    }
    if (s.contains("const")) return literal(s["const"].dump());
    for (const char* key : {"anyOf", "oneOf"}) {
      if (!s.contains(key)) continue;
      const std::string other = constraining(key);
      if (!other.empty()) fail("'" + other + "' beside " + key + " at " + where(ptr) + " is not supported");
      return alternatives(s[key], key, ptr, hint);
    }
    if (s.contains("allOf")) return visit_all_of(s, ptr, hint);

    std::vector<std::string> types;
    if (s.contains("type")) {
      const Json& t = s["type"];
      if (t.is_string()) types.push_back(t.get<std::string>());
      else if (t.is_array() && !t.empty()) {
        for (const Json& e : t) {
          if (!e.is_string()) fail("'type' at " + where(ptr + "/type") + " must be a string or an array of strings");
          types.push_back(e.get<std::string>());
        }
      } else fail("'type' at " + where(ptr + "/type") + " must be a string or a non-empty array of strings");
      static const std::set<std::string> known = {"string", "number", "integer", "boolean", "null", "object", "array"};
      for (const std::string& type : types)
        if (!known.count(type)) fail("unknown type '" + type + "' at " + where(ptr + "/type"));
    }

    if (s.contains("enum")) {
      const Json& values = s["enum"];
      if (!values.is_array()) fail("'enum' at " + where(ptr + "/enum") + " must be an array");
      std::string body;
      for (const Json& v : values) {
        bool fits = types.empty();
        for (const std::string& type : types) fits = fits || type_matches(v, type);
        if (!fits) continue;
        if (!body.empty()) body += " | ";
        body += literal(v.dump());
      }
      if (body.empty()) fail("'enum' at " + where(ptr + "/enum") + " admits no value");
      return rule(hint, body);
    }

    if (types.empty()) {  // implied by the keywords, else any value
      if (s.contains("properties") || s.contains("required") || s.contains("additionalProperties")) types = {"object"};
      else if (s.contains("items") || s.contains("minItems") || s.contains("maxItems")) types = {"array"};
      else if (s.contains("minLength") || s.contains("maxLength") || s.contains("format")) types = {"string"};
      else return fixed("value");
    }
    if (types.size() == 1) return typed(s, types[0], ptr, hint);
    std::string body;
    for (const std::string& type : types) {
      if (!body.empty()) body += " | ";
      body += typed(s, type, ptr, hint + "-" + type);
    }
    return rule(hint, body);
  }

  std::string typed(const Json& s, const std::string& type, const std::string& ptr, const std::string& hint) {
    if (type == "string") return string_schema(s, ptr, hint);
    if (type == "object") return object_schema(s, ptr, hint);
    if (type == "array") return array_schema(s, ptr, hint);
    return fixed(type);  // number, integer, boolean, null
  }

  std::string string_schema(const Json& s, const std::string& ptr, const std::string& hint) {
    if (s.contains("format")) {
      const Json& f = s["format"];
      const std::string name = f.is_string() ? f.get<std::string>() : "";
      if (name != "date" && name != "time" && name != "date-time" && name != "uuid")
        fail("format " + f.dump() + " at " + where(ptr + "/format") + " is not supported (date, time, date-time and uuid are)");
      if (s.contains("minLength") || s.contains("maxLength"))
        fail("minLength/maxLength beside format at " + where(ptr) + " are not supported");
      return rule(hint, "\"\\\"\" " + fixed(name) + " \"\\\"\"");
    }
    const uint64_t min = s.contains("minLength") ? count(s, "minLength", ptr) : 0;
    const bool bounded = s.contains("maxLength");
    const uint64_t max = bounded ? count(s, "maxLength", ptr) : 0;
    if (bounded && max < min) fail("maxLength < minLength at " + where(ptr) + ": no string fits");
    if (min == 0 && !bounded) return fixed("string");
    fixed("char");
    const std::string reps = bounded ? (min == max ? "{" + std::to_string(min) + "}"
                                                   : "{" + std::to_string(min) + "," + std::to_string(max) + "}")
                                     : "{" + std::to_string(min) + ",}";
    return rule(hint, "\"\\\"\" " + (max == 0 && bounded ? std::string() : "char" + reps + " ") + "\"\\\"\"");
  }

  std::string array_schema(const Json& s, const std::string& ptr, const std::string& hint) {
    const uint64_t min = s.contains("minItems") ? count(s, "minItems", ptr) : 0;
    const bool bounded = s.contains("maxItems");
    const uint64_t max = bounded ? count(s, "maxItems", ptr) : 0;
    if (bounded && max < min) fail("maxItems < minItems at " + where(ptr) + ": no array fits");
    fixed("ws");
    if (bounded && max == 0) return rule(hint, R"("[" ws "]")");
    const std::string item = s.contains("items") ? visit(s["items"], ptr + "/items", hint + "-item") : fixed("value");
    const std::string more = "( \",\" ws " + item + " ws )";
    std::string reps;
    const uint64_t lo = min > 0 ? min - 1 : 0;
    if (!bounded) reps = lo == 0 ? "*" : "{" + std::to_string(lo) + ",}";
    else if (max - 1 == lo) reps = "{" + std::to_string(lo) + "}";
    else reps = "{" + std::to_string(lo) + "," + std::to_string(max - 1) + "}";
    const std::string items = item + " ws " + (reps == "{0}" ? "" : more + reps + " ");
    return rule(hint, "\"[\" ws " + (min == 0 ? "( " + items + ")? " : items) + "\"]\"");
  }

  // A JSON string (without backslashes, so that no escape can spell one) that is none of
  // words: a trie of the words where each node may end (if it is no word), go on with a
  // character that leaves the trie, or follow a child.
  std::string key_except(const std::vector<std::string>& words, const std::string& hint) {
    struct Node {
      std::map<uint32_t, size_t> kids;
      bool word = false;
    };
    std::vector<Node> trie(1);
    for (const std::string& w : words) {
      // A key with a quote, a backslash or a control character is written with an escape,
      // which these keys never contain: it cannot collide.
      if (w.find_first_of("\"\\") != std::string::npos ||
          std::any_of(w.begin(), w.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }))
        continue;
      size_t at = 0;
      for (uint32_t cp : code_points(w)) {
        auto it = trie[at].kids.find(cp);
        if (it == trie[at].kids.end()) {
          trie.emplace_back();
          it = trie[at].kids.emplace(cp, trie.size() - 1).first;
        }
        at = it->second;
      }
      trie[at].word = true;
    }
    const std::string rest = rule("key-rest", R"([^"\\\x00-\x1F]* "\"")");
    std::vector<std::string> names(trie.size());
    for (size_t n = trie.size(); n-- > 0;) {  // children come after their parent
      std::string body = trie[n].word ? "" : "\"\\\"\"";
      std::string cls = "[^\"\\\\\\x00-\\x1F";
      for (const auto& [cp, kid] : trie[n].kids) cls += class_char(cp);
      cls += "]";
      body += (body.empty() ? "" : " | ") + cls + " " + rest;
      for (const auto& [cp, kid] : trie[n].kids) body += " | [" + class_char(cp) + "] " + names[kid];
      names[n] = rule(hint + "-key", body);
    }
    return rule(hint + "-key", "\"\\\"\" " + names[0]);
  }

  std::string object_schema(const Json& s, const std::string& ptr, const std::string& hint) {
    fixed("ws");
    struct Prop {
      std::string key, value;  // value: a GBNF expression
      bool required;
    };
    std::vector<Prop> props;
    std::set<std::string> required;
    if (s.contains("required")) {
      const Json& r = s["required"];
      if (!r.is_array()) fail("'required' at " + where(ptr + "/required") + " must be an array of strings");
      for (const Json& name : r) {
        if (!name.is_string()) fail("'required' at " + where(ptr + "/required") + " must be an array of strings");
        required.insert(name.get<std::string>());
      }
    }
    std::set<std::string> declared;
    if (s.contains("properties")) {
      const Json& p = s["properties"];
      if (!p.is_object()) fail("'properties' at " + where(ptr + "/properties") + " must be an object");
      for (auto it = p.begin(); it != p.end(); ++it) {
        const std::string value = visit(it.value(), ptr + "/properties/" + pointer_token(it.key()), hint + "-" + it.key());
        props.push_back({it.key(), value, required.count(it.key()) != 0});
        declared.insert(it.key());
      }
    }
    const bool closed = s.contains("additionalProperties") && s["additionalProperties"].is_boolean() &&
                        !s["additionalProperties"].get<bool>();
    for (const std::string& name : required) {  // required but not described: any value
      if (declared.count(name)) continue;
      if (closed) fail("'" + name + "' is required at " + where(ptr) + " but additionalProperties is false and it is not a property");
      props.push_back({name, fixed("value"), true});
      declared.insert(name);
    }

    // Extra members: additionalProperties true or a schema; by default only when the
    // object lists no properties (an object with extra members would be valid too, but a
    // model is better kept to the ones the schema names).
    std::string extra;
    const bool has_additional = s.contains("additionalProperties");
    const Json additional = has_additional ? s["additionalProperties"] : Json(props.empty());
    if (!(additional.is_boolean() && !additional.get<bool>())) {
      const std::string value = additional.is_boolean() ? fixed("value")
                                                        : visit(additional, ptr + "/additionalProperties", hint + "-extra");
      std::vector<std::string> names;
      for (const Prop& p : props) names.push_back(p.key);
      const std::string key = props.empty() ? fixed("string") : key_except(names, hint);
      extra = rule(hint + "-extra-member", key + " ws \":\" ws " + value + " ws");
    }
    if (props.empty() && extra.empty()) return rule(hint, R"("{" ws "}")");

    // tail(i, emitted): members i.. given whether one came before (then each needs a comma).
    std::map<std::pair<size_t, bool>, std::string> memo;
    std::function<std::string(size_t, bool)> tail = [&](size_t i, bool emitted) -> std::string {
      auto it = memo.find({i, emitted});
      if (it != memo.end()) return it->second;
      std::string body;
      if (i == props.size()) {
        if (extra.empty()) body = "";
        else if (emitted) body = "( \",\" ws " + extra + " )*";
        else body = "( " + extra + " ( \",\" ws " + extra + " )* )?";
      } else {
        const Prop& p = props[i];
        const std::string member = (emitted ? "\",\" ws " : "") + literal(Json(p.key).dump()) + " ws \":\" ws " + p.value + " ws";
        const std::string next = tail(i + 1, true);
        body = member + (next.empty() ? "" : " " + next);
        if (!p.required) {
          const std::string skip = tail(i + 1, emitted);
          body = "( " + body + " )" + (skip.empty() ? "?" : " | " + skip);
          if (!skip.empty()) body = "( " + body + " )";
        }
      }
      const std::string name = body.empty() ? "" : rule(hint + "-" + std::to_string(i), body);
      memo[{i, emitted}] = name;
      return name;
    };
    const std::string members = tail(0, false);
    return rule(hint, "\"{\" ws " + (members.empty() ? "" : members + " ") + "\"}\"");
  }

  const Json& root_;
  std::set<std::string> taken_;
  std::set<std::string> used_fixed_;
  std::vector<std::pair<std::string, std::string>> rules_;
  std::map<std::string, std::string> by_body_;
  std::map<std::string, std::string> ref_rules_;
};

}  // namespace

std::string json_schema_to_gbnf(std::string_view schema_json) {
  Json schema;
  try {
    schema = Json::parse(schema_json);
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for 1e999
    fail(std::string("not valid JSON: ") + e.what());
  }
  return Converter(schema).run();
}

}  // namespace xent
