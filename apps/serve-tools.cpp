// `xent serve`: tool calls and structured output — the grammar that forces a call, the
// calls found back in a reply's text (per template family), and what a template that does
// not read `tools` is told instead.
#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "serve.h"

namespace xent::app::serve {

namespace {

bool blank(const std::string& s, size_t from = 0, size_t to = std::string::npos) {
  to = std::min(to, s.size());
  for (size_t i = from; i < to; ++i)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') return false;
  return true;
}

size_t skip_space(const std::string& s, size_t p) {
  while (p < s.size() && (s[p] == ' ' || s[p] == '\t' || s[p] == '\n' || s[p] == '\r')) ++p;
  return p;
}

bool starts_with_at(const std::string& s, size_t p, const std::string& what) {
  return s.compare(p, what.size(), what) == 0;
}

// The end (one past) of the JSON object or array that starts at s[p], by bracket depth
// outside strings; npos when it does not close. The text is then parsed for real.
size_t json_value_end(const std::string& s, size_t p) {
  if (p >= s.size() || (s[p] != '{' && s[p] != '[')) return std::string::npos;
  int depth = 0;
  bool in_string = false;
  for (size_t i = p; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return i + 1;
    }
  }
  return std::string::npos;
}

bool parse_json_at(const std::string& s, size_t p, json* out, size_t* end) {
  const size_t e = json_value_end(s, p);
  if (e == std::string::npos) return false;
  *out = json::parse(s.begin() + static_cast<std::ptrdiff_t>(p), s.begin() + static_cast<std::ptrdiff_t>(e), nullptr,
                     false);
  if (out->is_discarded()) return false;
  *end = e;
  return true;
}

// {"name": ..., <args_key>: {...}} with a known name; arguments written as a JSON string
// of an object are taken too (some models do).
bool call_from_json(const json& j, const std::vector<std::string>& names, ToolCall* call) {
  if (!j.is_object() || !j.contains("name") || !j.at("name").is_string()) return false;
  const std::string name = j.at("name").get<std::string>();
  if (std::find(names.begin(), names.end(), name) == names.end()) return false;
  const json* args = nullptr;
  for (const char* key : {"arguments", "parameters"})
    if (!args && j.contains(key)) args = &j.at(key);
  if (!args) return false;
  json a = *args;
  if (a.is_string()) a = json::parse(a.get<std::string>(), nullptr, false);
  if (!a.is_object()) return false;
  call->id = new_tool_call_id();
  call->name = name;
  call->arguments = a.dump();
  return true;
}

ChatReply plain(const std::string& text) {
  ChatReply r;
  r.has_content = !blank(text);
  r.content = text;
  return r;
}

// The text a call begins with; llama3 calls may also begin with a bare '{', mistral ones
// with a bare '[' (the control token not rendered, or a grammar that spells none).
const char* call_marker(ToolSyntax s) {
  switch (s) {
    case ToolSyntax::hermes: return "<tool_call>";
    case ToolSyntax::llama3: return "<|python_tag|>";
    case ToolSyntax::mistral: return "[TOOL_CALLS]";
  }
  return "";
}
char bare_call_start(ToolSyntax s) { return s == ToolSyntax::llama3 ? '{' : s == ToolSyntax::mistral ? '[' : 0; }

bool parse_hermes(const std::string& text, size_t at, const std::vector<std::string>& names, ChatReply* r) {
  const std::string open = "<tool_call>", close = "</tool_call>";
  size_t p = at;
  std::string after;
  while (true) {
    p = skip_space(text, p);
    if (p >= text.size()) break;
    if (!starts_with_at(text, p, open)) {
      if (r->calls.empty()) return false;
      after = text.substr(p);  // prose after the calls stays content
      break;
    }
    p = skip_space(text, p + open.size());
    json j;
    size_t end = 0;
    ToolCall call;
    if (!parse_json_at(text, p, &j, &end) || !call_from_json(j, names, &call)) return false;
    r->calls.push_back(std::move(call));
    p = skip_space(text, end);
    if (starts_with_at(text, p, close)) p += close.size();
    else if (p < text.size()) return false;  // a closing tag may only be missing at the end
  }
  r->content = text.substr(0, at) + after;
  r->has_content = !blank(r->content);
  return !r->calls.empty();
}

bool parse_llama3(const std::string& text, size_t at, const std::vector<std::string>& names, ChatReply* r) {
  size_t p = at;
  if (starts_with_at(text, p, call_marker(ToolSyntax::llama3))) p += std::string(call_marker(ToolSyntax::llama3)).size();
  // One object, or several separated by ';' (as Llama 3.2 sometimes writes parallel calls).
  while (true) {
    p = skip_space(text, p);
    json j;
    size_t end = 0;
    ToolCall call;
    if (!parse_json_at(text, p, &j, &end) || !call_from_json(j, names, &call)) return false;
    r->calls.push_back(std::move(call));
    p = skip_space(text, end);
    if (p >= text.size()) break;
    if (text[p] != ';') return false;
    ++p;
    if (blank(text, p)) break;
  }
  r->content = text.substr(0, at);
  r->has_content = !blank(r->content);
  return true;
}

bool parse_mistral(const std::string& text, size_t at, const std::vector<std::string>& names, ChatReply* r) {
  const std::string marker = call_marker(ToolSyntax::mistral), args = "[ARGS]";
  size_t p = at;
  while (p < text.size()) {
    if (starts_with_at(text, p, marker)) p = skip_space(text, p + marker.size());
    json j;
    size_t end = 0;
    if (p < text.size() && text[p] == '[') {
      // [TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]
      if (!parse_json_at(text, p, &j, &end) || !j.is_array() || j.empty()) return false;
      for (const json& c : j) {
        ToolCall call;
        if (!call_from_json(c, names, &call)) return false;
        r->calls.push_back(std::move(call));
      }
    } else {
      // The newer form: [TOOL_CALLS]name[ARGS]{...}
      const size_t a = text.find(args, p);
      if (a == std::string::npos) return false;
      json obj = {{"name", text.substr(p, a - p)}};
      if (!parse_json_at(text, a + args.size(), &j, &end)) return false;
      obj["arguments"] = j;
      ToolCall call;
      if (!call_from_json(obj, names, &call)) return false;
      r->calls.push_back(std::move(call));
    }
    p = skip_space(text, end);
    if (p < text.size() && !starts_with_at(text, p, marker)) return false;
  }
  r->content = text.substr(0, at);
  r->has_content = !blank(r->content);
  return !r->calls.empty();
}

// Where the first call begins: its marker, or (llama3, mistral) a bare opening bracket as
// the first thing written; npos when the text holds no call.
size_t call_start(ToolSyntax syntax, const std::string& text) {
  const size_t first = skip_space(text, 0);
  const char bare = bare_call_start(syntax);
  if (bare && first < text.size() && text[first] == bare) return first;
  return text.find(call_marker(syntax));
}

}  // namespace

ToolSyntax tool_syntax_of(const std::string& source) {
  // A built-in's name (--chat-template llama3).
  if (source == "llama3") return ToolSyntax::llama3;
  if (source == "mistral" || source == "llama2") return ToolSyntax::mistral;
  auto has = [&](const char* s) { return source.find(s) != std::string::npos; };
  if (has("<tool_call>")) return ToolSyntax::hermes;
  if (has("[TOOL_CALLS]")) return ToolSyntax::mistral;
  if (has("<|python_tag|>") || has("<|start_header_id|>")) return ToolSyntax::llama3;
  if (has("[INST]")) return ToolSyntax::mistral;
  return ToolSyntax::hermes;
}

const char* tool_syntax_name(ToolSyntax s) {
  switch (s) {
    case ToolSyntax::hermes: return "hermes";
    case ToolSyntax::llama3: return "llama3";
    case ToolSyntax::mistral: return "mistral";
  }
  return "?";
}

ChatReply parse_tool_calls(ToolSyntax syntax, const std::string& text, const std::vector<std::string>& names) {
  const size_t at = call_start(syntax, text);
  if (at == std::string::npos) return plain(text);
  ChatReply r;
  bool ok = false;
  switch (syntax) {
    case ToolSyntax::hermes: ok = parse_hermes(text, at, names, &r); break;
    case ToolSyntax::llama3: ok = parse_llama3(text, at, names, &r); break;
    case ToolSyntax::mistral: ok = parse_mistral(text, at, names, &r); break;
  }
  return ok ? r : plain(text);
}

std::string ToolCallGate::push(const std::string& delta) {
  text_ += delta;
  if (held_) return "";
  const size_t first = skip_space(text_, 0);
  if (first == text_.size()) return "";  // only whitespace so far: content or not, later
  const char bare = bare_call_start(syntax_);
  if (sent_ == 0 && bare && text_[first] == bare) {
    held_ = true;
    return "";
  }
  const std::string marker = call_marker(syntax_);
  const size_t at = text_.find(marker, sent_);
  if (at != std::string::npos) {
    held_ = true;
    if (sent_ == 0 && blank(text_, 0, at)) return "";
    std::string out = text_.substr(sent_, at - sent_);
    sent_ = at;
    return out;
  }
  // Hold a tail that may be the start of the marker.
  size_t hold = 0;
  for (size_t k = std::min(marker.size() - 1, text_.size() - sent_); k > 0; --k)
    if (text_.compare(text_.size() - k, k, marker, 0, k) == 0) {
      hold = k;
      break;
    }
  std::string out = text_.substr(sent_, text_.size() - hold - sent_);
  sent_ = text_.size() - hold;
  return out;
}

// ---- grammars -----------------------------------------------------------------------

std::string schema_grammar(const json& schema, const std::string& what) {
  const std::string text = schema.dump();
  char* g = xent_json_schema_to_grammar(text.c_str());
  if (!g) throw bad_request(what + ": " + xent_last_error(), "invalid_schema");
  std::string out(g);
  xent_string_free(g);
  return out;
}

std::string prefix_grammar_rules(const std::string& gbnf, const std::string& prefix) {
  auto word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  };
  std::string out;
  out.reserve(gbnf.size() + gbnf.size() / 8);
  size_t i = 0;
  while (i < gbnf.size()) {
    const char c = gbnf[i];
    if (c == '"' || c == '[') {  // a literal or a class: copied with its escapes
      const char end = c == '"' ? '"' : ']';
      size_t j = i + 1;
      while (j < gbnf.size() && gbnf[j] != end) j += gbnf[j] == '\\' ? 2 : 1;
      j = std::min(j + 1, gbnf.size());
      out.append(gbnf, i, j - i);
      i = j;
    } else if (c == '#') {  // a comment, to the end of the line
      const size_t j = std::min(gbnf.find('\n', i), gbnf.size());
      out.append(gbnf, i, j - i);
      i = j;
    } else if (c == '{') {  // a repetition count {m,n}
      const size_t j = std::min(gbnf.find('}', i) + 1, gbnf.size());
      out.append(gbnf, i, j - i);
      i = j;
    } else if (word(c)) {
      size_t j = i;
      while (j < gbnf.size() && word(gbnf[j])) ++j;
      out += prefix;
      out.append(gbnf, i, j - i);
      i = j;
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

std::string tool_call_grammar(ToolSyntax syntax, const std::vector<Tool>& tools, bool parallel) {
  const char* args_key = syntax == ToolSyntax::llama3 ? "parameters" : "arguments";
  std::string rules, calls;
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string prefix = "t" + std::to_string(i) + "-";
    rules += prefix_grammar_rules(schema_grammar(tools[i].parameters, "tools[" + tools[i].name + "].parameters"), prefix);
    rules += "\n";
    // Names are [A-Za-z0-9_-] (checked when the request is read): safe in a literal.
    rules += "xent-call-" + std::to_string(i) + " ::= \"{\\\"name\\\": \\\"" + tools[i].name + "\\\", \\\"" +
             args_key + "\\\": \" " + prefix + "root \"}\"\n";
    calls += (i ? " | " : "") + std::string("xent-call-") + std::to_string(i);
  }
  rules += "xent-calls ::= " + calls + "\n";
  switch (syntax) {
    case ToolSyntax::hermes:
      rules += "xent-tagged ::= \"<tool_call>\\n\" xent-calls \"\\n</tool_call>\"\n";
      rules += parallel ? "root ::= xent-tagged (\"\\n\" xent-tagged)*\n" : "root ::= xent-tagged\n";
      break;
    case ToolSyntax::llama3:  // the format has no list of calls: one
      rules += "root ::= xent-calls\n";
      break;
    case ToolSyntax::mistral:  // the bare list; [TOOL_CALLS] is a control token no grammar spells
      rules += parallel ? "root ::= \"[\" xent-calls (\", \" xent-calls)* \"]\"\n" : "root ::= \"[\" xent-calls \"]\"\n";
      break;
  }
  return rules;
}

// ---- what templates without tools see -----------------------------------------------

std::string tool_calls_text(ToolSyntax syntax, const json& tool_calls) {
  json list = json::array();
  for (const json& tc : tool_calls) {
    const json& f = tc.contains("function") ? tc.at("function") : tc;
    json args = f.value("arguments", json::object());
    if (args.is_string()) {
      json parsed = json::parse(args.get<std::string>(), nullptr, false);
      if (!parsed.is_discarded()) args = parsed;
    }
    list.push_back({{"name", f.value("name", "")}, {syntax == ToolSyntax::llama3 ? "parameters" : "arguments", args}});
  }
  std::string out;
  switch (syntax) {
    case ToolSyntax::hermes:
      for (const json& c : list) out += (out.empty() ? "" : "\n") + std::string("<tool_call>\n") + c.dump() + "\n</tool_call>";
      break;
    case ToolSyntax::llama3:
      for (const json& c : list) out += (out.empty() ? "" : "; ") + c.dump();
      break;
    case ToolSyntax::mistral: out = "[TOOL_CALLS]" + list.dump(); break;
  }
  return out;
}

std::string tools_system_text(ToolSyntax syntax, const json& tools) {
  std::string out = "You can call these functions (name, description, JSON schema of the arguments):\n";
  for (const json& t : tools) out += (t.contains("function") ? t.at("function") : t).dump() + "\n";
  out += "To call one, answer with nothing but the call, written as: ";
  json example = {{"name", "FUNCTION_NAME"}, {syntax == ToolSyntax::llama3 ? "parameters" : "arguments", {{"ARGUMENT", "VALUE"}}}};
  switch (syntax) {
    case ToolSyntax::hermes: out += "<tool_call>\n" + example.dump() + "\n</tool_call>"; break;
    case ToolSyntax::llama3: out += example.dump(); break;
    case ToolSyntax::mistral: out += "[TOOL_CALLS][" + example.dump() + "]"; break;
  }
  return out;
}

std::string new_tool_call_id() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string id = "call_";
  for (int i = 0; i < 24; ++i) id += kAlphabet[rng() % (sizeof kAlphabet - 1)];
  return id;
}

}  // namespace xent::app::serve
