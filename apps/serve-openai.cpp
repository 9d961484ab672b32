// `xent serve`: the OpenAI-style request schema (every field type- and range-checked, so
// bad input becomes a 4xx, never a crash) and the response and stream-chunk JSON.
#include <chrono>
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

// The fields both endpoints share: sampling, limits, stop strings, streaming.
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
  std::vector<std::string> roles, contents;
  for (size_t i = 0; i < msgs.size(); ++i) {
    const json& m = msgs[i];
    if (!m.is_object()) throw bad_request("messages[" + std::to_string(i) + "] must be an object");
    const std::string role = get_string(m, "role", "");
    if (role != "system" && role != "user" && role != "assistant" && role != "developer")
      throw bad_request("messages[" + std::to_string(i) + "].role must be system, user or assistant");
    roles.push_back(role == "developer" ? "system" : role);
    contents.push_back(message_content(m, i));
  }
  std::vector<xent_chat_message> cm(msgs.size());
  for (size_t i = 0; i < cm.size(); ++i) cm[i] = {roles[i].c_str(), contents[i].c_str()};
  // Models without a template of their own (a plain GPT-2) still get a usable format.
  const char* tmpl = xent_model_chat_template(info.model)[0] ? nullptr : "chatml";
  const int32_t n = xent_chat_apply_template(info.model, tmpl, cm.data(), cm.size(), true, nullptr, 0);
  if (n < 0) throw bad_request(std::string("cannot apply the chat template: ") + xent_last_error());
  std::string text(static_cast<size_t>(n) + 1, '\0');
  if (xent_chat_apply_template(info.model, tmpl, cm.data(), cm.size(), true, text.data(), n + 1) != n)
    throw ApiError(500, "server_error", std::string("chat template: ") + xent_last_error());
  text.resize(static_cast<size_t>(n));
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

json completion_response(const GenerationRequest& req, const GenerationResult& r, const ServerInfo& info,
                         const std::string& id) {
  json choice = {{"index", 0}, {"finish_reason", r.finish_reason}};
  if (req.chat) {
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

}  // namespace xent::app::serve
