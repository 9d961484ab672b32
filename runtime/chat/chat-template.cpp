// ChatTemplate's public face over the Jinja interpreter (jinja-*.cpp), plus the built-in
// templates and the family guess used for "using chatml template" messages.
#include "runtime/chat/chat-template.h"

#include "runtime/chat/jinja.h"

namespace xent {

std::unique_ptr<ChatTemplate> ChatTemplate::parse(std::string_view source) {
  std::unique_ptr<ChatTemplate> t(new ChatTemplate());
  t->tmpl_ = jinja::parse(source);
  return t;
}

ChatTemplate::~ChatTemplate() = default;

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages,
                                 bool add_generation_prompt, const std::string& bos_token,
                                 const std::string& eos_token, const nlohmann::json& extra) const {
  if (!extra.is_object()) throw Error("chat template: extra variables must be a JSON object");
  nlohmann::json context = extra;
  nlohmann::json list = nlohmann::json::array();
  for (const auto& m : messages) list.push_back({{"role", m.role}, {"content", m.content}});
  context["messages"] = std::move(list);
  // apply_chat_template always passes these two, None when the caller has none, so
  // `tools is defined` is true and `tools is none` decides.
  for (const char* key : {"tools", "documents"})
    if (!context.contains(key)) context[key] = nullptr;
  context["add_generation_prompt"] = add_generation_prompt;
  context["bos_token"] = bos_token;
  context["eos_token"] = eos_token;
  return jinja::render(*tmpl_, jinja::Value::from_json(context));
}

std::string ChatTemplate::render_conversation(const nlohmann::ordered_json& messages,
                                              const nlohmann::ordered_json& variables, bool add_generation_prompt,
                                              const std::string& bos_token, const std::string& eos_token) const {
  if (!messages.is_array()) throw Error("chat template: messages must be a JSON array");
  for (size_t i = 0; i < messages.size(); ++i)
    if (!messages[i].is_object() || !messages[i].contains("role") || !messages[i].at("role").is_string())
      throw Error("chat template: message " + std::to_string(i) + " is not an object with a string role");
  if (!variables.is_null() && !variables.is_object()) throw Error("chat template: variables must be a JSON object");
  nlohmann::ordered_json context = variables.is_null() ? nlohmann::ordered_json::object() : variables;
  context["messages"] = messages;
  for (const char* key : {"tools", "documents"})
    if (!context.contains(key)) context[key] = nullptr;
  context["add_generation_prompt"] = add_generation_prompt;
  context["bos_token"] = bos_token;
  context["eos_token"] = eos_token;
  return jinja::render(*tmpl_, jinja::Value::from_json(context));
}

std::string ChatTemplate::render_json(const nlohmann::json& context) const {
  return jinja::render(*tmpl_, jinja::Value::from_json(context));
}

std::string ChatTemplate::render_ordered_json(const nlohmann::ordered_json& context) const {
  return jinja::render(*tmpl_, jinja::Value::from_json(context));
}

namespace {

// Our own spellings of each family's prompt format. Every line is a whitespace-trimmed tag,
// so the layout of this source never leaks into prompts.
constexpr const char* alternate_check =
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{- raise_exception('conversation roles must alternate user/assistant/user/assistant/...') -}}"
    "{%- endif -%}\n";

constexpr const char* split_system =
    "{%- if messages and messages[0]['role'] == 'system' -%}\n"
    "  {%- set system = messages[0]['content'] -%}\n"
    "  {%- set rest = messages[1:] -%}\n"
    "{%- else -%}\n"
    "  {%- set system = '' -%}\n"
    "  {%- set rest = messages -%}\n"
    "{%- endif -%}\n";

std::string chatml_with_default_system(const char* default_system) {
  return std::string(
             "{%- if not messages or messages[0]['role'] != 'system' -%}\n"
             "  {{- '<|im_start|>system\\n") +
         default_system +
         "<|im_end|>\\n' -}}\n"
         "{%- endif -%}\n"
         "{%- for message in messages -%}\n"
         "  {{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}\n"
         "{%- endfor -%}\n"
         "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}\n";
}

struct Builtin {
  const char* name;
  std::string source;
};

const std::vector<Builtin>& builtins() {
  static const std::vector<Builtin> list = {
      {"chatml",
       "{%- for message in messages -%}\n"
       "  {{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}\n"
       "{%- endfor -%}\n"
       "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}\n"},
      {"llama2", std::string(split_system) +
                     "{%- for message in rest -%}\n" + alternate_check +
                     "  {%- if message['role'] == 'user' -%}\n"
                     "    {%- set text = message['content'] | trim -%}\n"
                     "    {%- if loop.first and system -%}\n"
                     "      {%- set text = '<<SYS>>\\n' + system | trim + '\\n<</SYS>>\\n\\n' + text -%}\n"
                     "    {%- endif -%}\n"
                     "    {{- bos_token + '[INST] ' + text + ' [/INST]' -}}\n"
                     "  {%- else -%}\n"
                     "    {{- ' ' + message['content'] | trim + ' ' + eos_token -}}\n"
                     "  {%- endif -%}\n"
                     "{%- endfor -%}\n"},
      {"llama3",
       "{{- bos_token -}}\n"
       "{%- for message in messages -%}\n"
       "  {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' -}}\n"
       "{%- endfor -%}\n"
       "{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}{%- endif -%}\n"},
      {"mistral", std::string(split_system) +
                      "{{- bos_token -}}\n"
                      "{%- for message in rest -%}\n" + alternate_check +
                      "  {%- if message['role'] == 'user' -%}\n"
                      "    {{- '[INST] ' + (system + '\\n\\n' if loop.first and system else '') + message['content'] + ' [/INST]' -}}\n"
                      "  {%- else -%}\n"
                      "    {{- message['content'] + eos_token -}}\n"
                      "  {%- endif -%}\n"
                      "{%- endfor -%}\n"},
      {"gemma", std::string("{{- bos_token -}}\n") + split_system +
                    "{%- for message in rest -%}\n" + alternate_check +
                    "  {%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}\n"
                    "  {%- set prefix = system + '\\n\\n' if loop.first and system else '' -%}\n"
                    "  {{- '<start_of_turn>' + role + '\\n' + prefix + message['content'] | trim + '<end_of_turn>\\n' -}}\n"
                    "{%- endfor -%}\n"
                    "{%- if add_generation_prompt -%}{{- '<start_of_turn>model\\n' -}}{%- endif -%}\n"},
      {"phi3",
       "{%- for message in messages -%}\n"
       "  {{- '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' -}}\n"
       "{%- endfor -%}\n"
       "{%- if add_generation_prompt -%}{{- '<|assistant|>\\n' -}}{%- else -%}{{- eos_token -}}{%- endif -%}\n"},
      {"zephyr",
       "{%- for message in messages -%}\n"
       "  {{- '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' -}}\n"
       "{%- endfor -%}\n"
       "{%- if add_generation_prompt -%}{{- '<|assistant|>\\n' -}}{%- endif -%}\n"},
      {"smollm2", chatml_with_default_system("You are a helpful AI assistant named SmolLM, trained by Hugging Face")},
      {"qwen2", chatml_with_default_system("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")},
  };
  return list;
}

}  // namespace

std::string builtin_chat_template(std::string_view name) {
  std::string names;
  for (const auto& b : builtins()) {
    if (name == b.name) return b.source;
    names += names.empty() ? "" : ", ";
    names += b.name;
  }
  throw Error("unknown chat template '" + std::string(name) + "' (valid names: " + names + ")");
}

std::vector<std::string> builtin_chat_template_names() {
  std::vector<std::string> names;
  for (const auto& b : builtins()) names.push_back(b.name);
  return names;
}

std::string detect_chat_template_family(std::string_view source) {
  auto has = [&](const char* s) { return source.find(s) != std::string_view::npos; };
  if (has("<|start_header_id|>")) return "llama3";
  if (has("<start_of_turn>")) return "gemma";
  if (has("<|im_start|>")) {
    if (has("SmolLM")) return "smollm2";
    if (has("You are Qwen")) return "qwen2";
    return "chatml";
  }
  if (has("[INST]")) return has("<<SYS>>") ? "llama2" : "mistral";
  if (has("<|assistant|>")) return has("<|end|>") ? "phi3" : "zephyr";
  return "";
}

}  // namespace xent
