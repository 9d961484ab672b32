// `xent serve`: the OpenAI-style request schema (every field type- and range-checked, so
// bad input becomes a 4xx, never a crash) and the response and stream-chunk JSON.
#include <algorithm>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "serve.h"

namespace xent::app::serve {

json error_body(const std::string& message, const std::string& type, const std::string& code) {
  json e = {{"message", message}, {"type", type}};
  e["code"] = code.empty() ? json(nullptr) : json(code);
  return json{{"error", e}};
}

ApiError bad_request(const std::string& message, const std::string& code) {
  return ApiError(400, "invalid_request_error", message, code);
}

namespace {

bool present(const json& body, const char* key) { return body.contains(key) && !body.at(key).is_null(); }

int64_t get_int(const json& body, const char* key, int64_t fallback, int64_t lo, int64_t hi) {
  if (!present(body, key)) return fallback;
  const json& v = body.at(key);
  if (!v.is_number_integer()) throw bad_request(std::string("'") + key + "' must be an integer");
  const int64_t x = v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)
                        ? INT64_MAX
                        : v.get<int64_t>();
  if (x < lo || x > hi)
    throw bad_request(std::string("'") + key + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return x;
}

double get_number(const json& body, const char* key, double fallback, double lo, double hi) {
  if (!present(body, key)) return fallback;
  const json& v = body.at(key);
  if (!v.is_number()) throw bad_request(std::string("'") + key + "' must be a number");
  const double x = v.get<double>();
  if (!(x >= lo && x <= hi))
    throw bad_request(std::string("'") + key + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return x;
}

bool get_bool(const json& body, const char* key, bool fallback) {
  if (!present(body, key)) return fallback;
  if (!body.at(key).is_boolean()) throw bad_request(std::string("'") + key + "' must be a boolean");
  return body.at(key).get<bool>();
}

std::string get_string(const json& body, const char* key, const std::string& fallback) {
  if (!present(body, key)) return fallback;
  if (!body.at(key).is_string()) throw bad_request(std::string("'") + key + "' must be a string");
  return body.at(key).get<std::string>();
}

void check_model(const json& body, const ServerInfo& info) {
  const std::string name = get_string(body, "model", "");
  if (name.empty() || name == info.model_id || name == info.model_id + ".gguf") return;
  throw ApiError(404, "invalid_request_error", "the model '" + name + "' does not exist; this server has '" +
                                                   info.model_id + "'", "model_not_found");
}

int32_t count_tokens(const ServerInfo& info, const std::string& text) {
  const int32_t n = xent_tokenize(info.model, text.data(), static_cast<int32_t>(text.size()), nullptr, 0, true, true);
  if (n == INT32_MIN) throw bad_request(std::string("cannot tokenize the prompt: ") + xent_last_error());
  return n < 0 ? -n : n;
}

// Compiles the request's grammar once on a sampler of its own, so that a bad one is this
// request's 400 and not a failure after it waited for a slot.
void check_grammar(const ServerInfo& info, const GenerationRequest& req) {
  const xent_sampler_params p = xent_sampler_default_params();
  std::unique_ptr<xent_sampler, decltype(&xent_sampler_free)> s(xent_sampler_create(&p), xent_sampler_free);
  if (!s) throw ApiError(500, "server_error", std::string("cannot create a sampler: ") + xent_last_error());
  if (xent_sampler_set_grammar(s.get(), info.model, req.grammar.c_str(), nullptr) != XENT_OK)
    throw bad_request(req.grammar_source + ": " + xent_last_error(), "invalid_grammar");
}

const json& object_field(const json& body, const char* key, const std::string& where) {
  const json& v = body.at(key);
  if (!v.is_object()) throw bad_request("'" + where + "' must be an object");
  return v;
}

// What constrains the output: OpenAI's response_format, llama-server's grammar (GBNF) and
// json_schema, Ollama's format ("json" or a schema). At most one of them, and none beside a
// tool_choice that forces a call (which has set the grammar already).
void parse_output_format(const json& body, const ServerInfo& info, GenerationRequest& req) {
  std::string grammar, source;
  auto take = [&](std::string g, std::string from) {
    if (!source.empty() || !req.grammar.empty())
      throw bad_request("'" + from + "' cannot be combined with '" + (source.empty() ? req.grammar_source : source) +
                            "': only one may constrain the output",
                        "conflicting_constraints");
    grammar = std::move(g);
    source = std::move(from);
  };
  const json any_object = {{"type", "object"}};
  if (present(body, "response_format")) {
    const json& rf = object_field(body, "response_format", "response_format");
    const std::string type = get_string(rf, "type", "");
    if (type == "json_object") {
      // llama-server also takes a schema here.
      const json& schema = present(rf, "schema") ? object_field(rf, "schema", "response_format.schema") : any_object;
      take(schema_grammar(schema, "response_format.schema"), "response_format");
    } else if (type == "json_schema") {
      if (!present(rf, "json_schema")) throw bad_request("'response_format.json_schema' is required for type json_schema");
      const json& js = object_field(rf, "json_schema", "response_format.json_schema");
      get_string(js, "name", "");  // type-checked; the name only labels the schema
      get_bool(js, "strict", false);
      const json& schema = present(js, "schema") ? object_field(js, "schema", "response_format.json_schema.schema")
                                                 : any_object;
      take(schema_grammar(schema, "response_format.json_schema.schema"), "response_format");
    } else if (type != "text") {
      throw bad_request("'response_format.type' must be text, json_object or json_schema");
    }
  }
  if (present(body, "grammar")) {
    const std::string g = get_string(body, "grammar", "");
    if (!g.empty()) take(g, "grammar");
  }
  if (present(body, "json_schema"))
    take(schema_grammar(object_field(body, "json_schema", "json_schema"), "json_schema"), "json_schema");
  if (present(body, "format")) {
    const json& f = body.at("format");
    if (f.is_string() && f.get<std::string>() == "json") take(schema_grammar(any_object, "format"), "format");
    else if (f.is_object()) take(schema_grammar(f, "format"), "format");
    else if (!(f.is_string() && f.get<std::string>().empty()))
      throw bad_request("'format' must be \"json\" or a JSON schema object");
  }
  if (!source.empty()) {
    req.grammar = std::move(grammar);
    req.grammar_source = std::move(source);
  }
  if (!req.grammar.empty()) check_grammar(info, req);
}

// The fields both endpoints share: sampling, limits, stop strings, streaming, the output's
// grammar.
void parse_common(const json& body, const ServerInfo& info, GenerationRequest& req, const char* max_tokens_key) {
  check_model(body, info);
  if (get_int(body, "n", 1, 1, 1) != 1) throw bad_request("'n' must be 1");
  req.stream = get_bool(body, "stream", false);
  if (present(body, "stream_options")) {
    const json& so = body.at("stream_options");
    if (!so.is_object()) throw bad_request("'stream_options' must be an object");
    req.include_usage = get_bool(so, "include_usage", false);
  }
  xent_sampler_params& s = req.sampling;
  s = xent_sampler_default_params();
  s.temperature = static_cast<float>(get_number(body, "temperature", s.temperature, 0.0, 2.0));
  s.top_p = static_cast<float>(get_number(body, "top_p", s.top_p, 0.0, 1.0));
  s.top_k = static_cast<int32_t>(get_int(body, "top_k", s.top_k, 0, 1 << 20));
  s.min_p = static_cast<float>(get_number(body, "min_p", s.min_p, 0.0, 1.0));
  s.presence_penalty = static_cast<float>(get_number(body, "presence_penalty", 0.0, -2.0, 2.0));
  s.frequency_penalty = static_cast<float>(get_number(body, "frequency_penalty", 0.0, -2.0, 2.0));
  s.repeat_penalty = static_cast<float>(get_number(body, "repeat_penalty", 1.0, 0.01, 10.0));
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  s.seed = static_cast<uint64_t>(get_int(body, "seed", static_cast<int64_t>(now & 0x7fffffffffff), 0, INT64_MAX));

  if (present(body, "lora")) {
    const json& l = body.at("lora");
    if (!l.is_array()) throw bad_request("'lora' must be an array of {\"id\", \"scale\"} objects");
    if (info.n_lora == 0 && !l.empty()) throw bad_request("'lora': no LoRA adapters are loaded (--lora)");
    req.lora.assign(static_cast<size_t>(info.n_lora), 0.0f);
    for (const json& e : l) {
      if (!e.is_object() || !e.contains("id"))
        throw bad_request("'lora' must be an array of {\"id\", \"scale\"} objects");
      const int64_t id = get_int(e, "id", 0, 0, info.n_lora - 1);
      req.lora[static_cast<size_t>(id)] = static_cast<float>(get_number(e, "scale", 1.0, -100.0, 100.0));
    }
  }

  if (present(body, "stop")) {
    const json& st = body.at("stop");
    std::vector<json> items;
    if (st.is_string()) items.push_back(st);
    else if (st.is_array()) items.assign(st.begin(), st.end());
    else throw bad_request("'stop' must be a string or an array of strings");
    if (items.size() > 4) throw bad_request("'stop' holds at most 4 strings");
    for (const json& x : items) {
      if (!x.is_string()) throw bad_request("'stop' must be a string or an array of strings");
      const std::string v = x.get<std::string>();
      if (v.size() > 256) throw bad_request("a stop string is longer than 256 bytes");
      if (!v.empty()) req.stop.push_back(v);
    }
  }

  parse_output_format(body, info, req);

  req.n_prompt = count_tokens(info, req.prompt);
  if (req.n_prompt == 0) throw bad_request("the prompt is empty");
  if (req.n_prompt >= info.n_ctx)
    throw bad_request("the prompt has " + std::to_string(req.n_prompt) + " tokens; this server's context holds " +
                          std::to_string(info.n_ctx),
                      "context_length_exceeded");
  const int64_t room = info.n_ctx - req.n_prompt;
  const char* key = present(body, max_tokens_key) ? max_tokens_key : "max_tokens";
  if (present(body, key)) {
    const int64_t m = get_int(body, key, 0, 1, info.max_tokens_limit);
    if (m > room)
      throw bad_request("the prompt (" + std::to_string(req.n_prompt) + " tokens) and " + key + " (" +
                            std::to_string(m) + ") exceed the context of " + std::to_string(info.n_ctx) + " tokens",
                        "context_length_exceeded");
    req.max_tokens = static_cast<int>(m);
  } else {
    req.max_tokens = static_cast<int>(std::min<int64_t>(room, info.max_tokens_limit));
  }
}

std::string message_content(const json& m, size_t i) {
  if (!m.contains("content") || m.at("content").is_null()) return "";
  const json& c = m.at("content");
  if (c.is_string()) return c.get<std::string>();
  if (!c.is_array()) throw bad_request("messages[" + std::to_string(i) + "].content must be a string or an array");
  std::string out;
  for (const json& part : c) {
    if (!part.is_object() || get_string(part, "type", "") != "text" || !part.contains("text") ||
        !part.at("text").is_string())
      throw bad_request("messages[" + std::to_string(i) + "].content: only {\"type\": \"text\", \"text\": ...} parts are supported");
    out += part.at("text").get<std::string>();
  }
  return out;
}

std::string render_chat(const ServerInfo& info, const char* tmpl, const json& messages, const json& variables) {
  const std::string m = messages.dump(-1, ' ', false, json::error_handler_t::replace);
  const std::string v = variables.dump(-1, ' ', false, json::error_handler_t::replace);
  const int32_t n = xent_chat_apply_template_json(info.model, tmpl, m.c_str(), v.c_str(), true, nullptr, 0);
  if (n < 0) throw bad_request(std::string("cannot apply the chat template: ") + xent_last_error());
  std::string text(static_cast<size_t>(n) + 1, '\0');
  if (xent_chat_apply_template_json(info.model, tmpl, m.c_str(), v.c_str(), true, text.data(), n + 1) != n)
    throw ApiError(500, "server_error", std::string("chat template: ") + xent_last_error());
  text.resize(static_cast<size_t>(n));
  return text;
}

// An assistant message's earlier calls, for the template: arguments as a JSON object (the
// API sends a string), as transformers' templates read them (tojson, items()).
json history_tool_calls(const json& calls, const std::string& at) {
  if (!calls.is_array()) throw bad_request(at + ".tool_calls must be an array");
  json out = json::array();
  for (size_t k = 0; k < calls.size(); ++k) {
    const json& c = calls[k];
    const std::string where = at + ".tool_calls[" + std::to_string(k) + "]";
    if (!c.is_object() || !present(c, "function") || !c.at("function").is_object())
      throw bad_request(where + " must be {\"id\", \"type\": \"function\", \"function\": {\"name\", \"arguments\"}}");
    const json& f = c.at("function");
    const std::string name = get_string(f, "name", "");
    if (name.empty()) throw bad_request(where + ".function.name is required");
    json args = json::object();
    if (present(f, "arguments")) {
      const json& a = f.at("arguments");
      if (a.is_string()) args = json::parse(a.get<std::string>(), nullptr, false);
      else args = a;
      if (!args.is_object()) throw bad_request(where + ".function.arguments must be a JSON object (or its text)");
    }
    out.push_back({{"id", get_string(c, "id", "")},
                   {"type", "function"},
                   {"function", {{"name", name}, {"arguments", args}}}});
  }
  return out;
}

struct ToolRequest {
  json list = json::array();  // the tools as the client wrote them
  bool rendered = false;      // the template gets them (tools given, tool_choice not "none")
};

bool valid_tool_name(const std::string& n) {
  if (n.empty() || n.size() > 64) return false;
  for (const char c : n)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return false;
  return true;
}

// tools, tool_choice and parallel_tool_calls. "auto": the reply is searched for calls;
// "required" or a named function: a grammar makes the reply a call; "none": the template
// does not get the tools and the reply is text.
ToolRequest parse_tools(const json& body, GenerationRequest& req) {
  ToolRequest t;
  std::vector<Tool> tools;
  if (present(body, "tools")) {
    const json& list = body.at("tools");
    if (!list.is_array()) throw bad_request("'tools' must be an array");
    if (list.size() > 128) throw bad_request("'tools' holds at most 128 tools");
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string at = "tools[" + std::to_string(i) + "]";
      const json& tool = list[i];
      if (!tool.is_object() || get_string(tool, "type", "") != "function" || !present(tool, "function"))
        throw bad_request(at + " must be {\"type\": \"function\", \"function\": {\"name\", \"parameters\"}}");
      const json& f = object_field(tool, "function", at + ".function");
      const std::string name = get_string(f, "name", "");
      if (!valid_tool_name(name))
        throw bad_request(at + ".function.name must be 1 to 64 letters, digits, '_' or '-'");
      for (const Tool& other : tools)
        if (other.name == name) throw bad_request(at + ": a second tool named '" + name + "'");
      get_string(f, "description", "");
      const json params = present(f, "parameters")
                              ? object_field(f, "parameters", at + ".function.parameters")
                              : json{{"type", "object"}, {"properties", json::object()}};
      tools.push_back({name, params});
    }
    t.list = list;
  }
  const char* choices = "'tool_choice' must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": ...}}";
  std::string choice = tools.empty() ? "none" : "auto", named;
  if (present(body, "tool_choice")) {
    const json& c = body.at("tool_choice");
    if (c.is_string()) {
      choice = c.get<std::string>();
      if (choice != "none" && choice != "auto" && choice != "required") throw bad_request(choices);
    } else if (c.is_object()) {
      if (get_string(c, "type", "") != "function" || !present(c, "function") || !c.at("function").is_object())
        throw bad_request(choices);
      named = get_string(c.at("function"), "name", "");
      choice = "function";
      if (std::none_of(tools.begin(), tools.end(), [&](const Tool& x) { return x.name == named; }))
        throw bad_request("'tool_choice' names the function '" + named + "', which is not in 'tools'");
    } else {
      throw bad_request(choices);
    }
  }
  const bool forced = choice == "required" || choice == "function";
  if (forced && tools.empty()) throw bad_request("'tool_choice' " + choice + " needs 'tools'");
  const bool parallel = get_bool(body, "parallel_tool_calls", true);
  if (choice == "none" || tools.empty()) return t;
  t.rendered = true;
  req.parse_tools = true;
  for (const Tool& x : tools) req.tool_names.push_back(x.name);
  // Llama's <|python_tag|> and Mistral's [TOOL_CALLS] are control tokens.
  req.render_special = req.tool_syntax != ToolSyntax::hermes;
  if (forced) {
    std::vector<Tool> allowed;
    for (const Tool& x : tools)
      if (named.empty() || x.name == named) allowed.push_back(x);
    req.grammar = tool_call_grammar(req.tool_syntax, allowed, parallel);
    req.grammar_source = "tool_choice";
  }
  return t;
}

}  // namespace

GenerationRequest parse_completion_request(const json& body, const ServerInfo& info) {
  GenerationRequest req;
  if (!body.contains("prompt")) throw bad_request("'prompt' is required");
  const json& p = body.at("prompt");
  if (p.is_string()) req.prompt = p.get<std::string>();
  else if (p.is_array() && p.size() == 1 && p[0].is_string()) req.prompt = p[0].get<std::string>();
  else throw bad_request("'prompt' must be a string (or an array of one string)");
  if (get_bool(body, "echo", false)) throw bad_request("'echo' is not supported");
  if (present(body, "logprobs")) throw bad_request("'logprobs' is not supported");
  parse_common(body, info, req, "max_tokens");
  return req;
}

GenerationRequest parse_chat_request(const json& body, const ServerInfo& info) {
  GenerationRequest req;
  req.chat = true;
  if (!body.contains("messages") || !body.at("messages").is_array() || body.at("messages").empty())
    throw bad_request("'messages' must be a non-empty array");
  const json& msgs = body.at("messages");
  if (msgs.size() > 1024) throw bad_request("too many messages");
  // --chat-template, else the model's; models without one (a plain GPT-2) get ChatML.
  std::string source = info.chat_template.empty() ? xent_model_chat_template(info.model) : info.chat_template;
  if (source.empty()) source = "chatml";
  const char* tmpl = source.c_str();
  req.tool_syntax = tool_syntax_of(source);
  const ToolRequest tools = parse_tools(body, req);

  json messages = json::array();
  for (size_t i = 0; i < msgs.size(); ++i) {
    const json& m = msgs[i];
    const std::string at = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) throw bad_request(at + " must be an object");
    const std::string role = get_string(m, "role", "");
    if (role != "system" && role != "user" && role != "assistant" && role != "developer" && role != "tool")
      throw bad_request(at + ".role must be system, user, assistant or tool");
    json out = {{"role", role == "developer" ? "system" : role}, {"content", message_content(m, i)}};
    if (role == "assistant" && present(m, "tool_calls")) {
      out["tool_calls"] = history_tool_calls(m.at("tool_calls"), at);
    }
    if (role == "tool") {
      out["tool_call_id"] = get_string(m, "tool_call_id", "");
      if (present(m, "name")) out["name"] = get_string(m, "name", "");
    }
    messages.push_back(std::move(out));
  }
  json variables = json::object();
  if (tools.rendered) variables["tools"] = tools.list;
  std::string text = render_chat(info, tmpl, messages, variables);
  // A template that does not read `tools` (plain ChatML) is told about them in the system
  // message instead, and sees the calls in the history written as the model would write them.
  if (tools.rendered && text == render_chat(info, tmpl, messages, json::object())) {
    const std::string about = tools_system_text(req.tool_syntax, tools.list);
    if (messages[0]["role"] == "system")
      messages[0]["content"] = messages[0]["content"].get<std::string>() + "\n\n" + about;
    else
      messages.insert(messages.begin(), json{{"role", "system"}, {"content", about}});
    for (json& m : messages)
      if (m.contains("tool_calls")) {
        const std::string calls = tool_calls_text(req.tool_syntax, m.at("tool_calls"));
        const std::string content = m["content"].get<std::string>();
        m["content"] = content.empty() ? calls : content + "\n" + calls;
        m.erase("tool_calls");
      }
    text = render_chat(info, tmpl, messages, json::object());
  }
  req.prompt = std::move(text);
  parse_common(body, info, req, "max_completion_tokens");
  return req;
}

AutocompleteRequest parse_autocomplete_request(const json& body) {
  AutocompleteRequest req;
  if (!body.contains("text") || !body.at("text").is_string()) throw bad_request("'text' must be a string");
  req.text = body.at("text").get<std::string>();
  req.session = get_string(body, "session", "");
  if (req.session.size() > 128) throw bad_request("'session' is longer than 128 bytes");
  xent_autocomplete_params& p = req.params;
  p = xent_autocomplete_default_params();
  p.n_suggestions = static_cast<int32_t>(get_int(body, "n", p.n_suggestions, 1, 16));
  p.max_words = static_cast<int32_t>(get_int(body, "max_words", p.max_words, 1, 8));
  p.min_probability = static_cast<float>(get_number(body, "min_p", p.min_probability, 0.0, 1.0));
  p.beam_width = static_cast<int32_t>(get_int(body, "beam", p.beam_width, 1, 64));
  if (present(body, "blocklist")) {
    const json& b = body.at("blocklist");
    if (!b.is_array() || b.size() > 1000) throw bad_request("'blocklist' must be an array of at most 1000 words");
    for (const json& w : b) {
      if (!w.is_string()) throw bad_request("'blocklist' must hold strings");
      std::string s = w.get<std::string>();
      if (s.find_first_of(",\n") != std::string::npos) throw bad_request("a blocklist word holds a comma or newline");
      req.blocklist += s + ",";
    }
  }
  return req;
}

std::string new_request_id(bool chat) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return std::string(chat ? "chatcmpl-" : "cmpl-") + buf;
}

json usage_json(const GenerationResult& r) {
  return {{"prompt_tokens", r.n_prompt},
          {"completion_tokens", r.n_completion},
          {"total_tokens", r.n_prompt + r.n_completion},
          {"prompt_tokens_details", {{"cached_tokens", r.n_cached}}}};
}

json timings_json(const GenerationResult& r) {
  return {{"prompt_ms", r.prompt_ms},
          {"predicted_ms", r.generate_ms},
          {"cached_tokens", r.n_cached},
          {"predicted_per_second", r.generate_ms > 0 ? 1000.0 * r.n_completion / r.generate_ms : 0.0}};
}

static int64_t unix_time() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

json tool_calls_json(const std::vector<ToolCall>& calls, bool with_index) {
  json list = json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    json c = json::object();
    if (with_index) c["index"] = i;
    c["id"] = calls[i].id;
    c["type"] = "function";
    c["function"] = {{"name", calls[i].name}, {"arguments", calls[i].arguments}};
    list.push_back(std::move(c));
  }
  return list;
}

json completion_response(const GenerationRequest& req, const GenerationResult& r, const ServerInfo& info,
                         const std::string& id) {
  json choice = {{"index", 0}, {"finish_reason", r.finish_reason}};
  if (req.chat && req.parse_tools) {
    const ChatReply reply = parse_tool_calls(req.tool_syntax, r.text, req.tool_names);
    choice["message"] = {{"role", "assistant"}, {"content", reply.has_content ? json(reply.content) : json(nullptr)}};
    if (!reply.calls.empty()) {
      choice["message"]["tool_calls"] = tool_calls_json(reply.calls, false);
      choice["finish_reason"] = "tool_calls";
    }
  } else if (req.chat) {
    choice["message"] = {{"role", "assistant"}, {"content", r.text}};
  } else {
    choice["text"] = r.text;
    choice["logprobs"] = nullptr;
  }
  return {{"id", id},
          {"object", req.chat ? "chat.completion" : "text_completion"},
          {"created", unix_time()},
          {"model", info.model_id},
          {"choices", json::array({choice})},
          {"usage", usage_json(r)},
          {"timings", timings_json(r)}};
}

json stream_chunk(const GenerationRequest& req, const std::string& delta, const std::string* finish_reason,
                  const ServerInfo& info, const std::string& id, bool first) {
  json choice = {{"index", 0}, {"finish_reason", finish_reason ? json(*finish_reason) : json(nullptr)}};
  if (req.chat) {
    json d = json::object();
    if (first) d["role"] = "assistant";
    if (!finish_reason) d["content"] = delta;
    choice["delta"] = d;
  } else {
    choice["text"] = delta;
    choice["logprobs"] = nullptr;
  }
  return {{"id", id},
          {"object", req.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", unix_time()},
          {"model", info.model_id},
          {"choices", json::array({choice})}};
}

json tool_calls_chunk(const std::vector<ToolCall>& calls, const ServerInfo& info, const std::string& id, bool first) {
  json d = json::object();
  if (first) d["role"] = "assistant";
  d["tool_calls"] = tool_calls_json(calls, true);
  json choice = {{"index", 0}, {"delta", d}, {"finish_reason", nullptr}};
  return {{"id", id},
          {"object", "chat.completion.chunk"},
          {"created", unix_time()},
          {"model", info.model_id},
          {"choices", json::array({choice})}};
}

}  // namespace xent::app::serve
