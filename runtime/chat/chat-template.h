// Chat templates: renders a conversation into the prompt text a model was trained on, from
// the Jinja2 source stored in GGUF's `tokenizer.chat_template` or a built-in by family name.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace xent {

namespace jinja {
struct Template;
}

struct ChatMessage {
  std::string role;
  std::string content;
};

// Renders like Hugging Face's apply_chat_template: Jinja2 with trim_blocks and lstrip_blocks
// on, loop controls (break/continue), raise_exception, strftime_now and a tojson without HTML
// escaping. Rendering is const and keeps no state, so one template serves many threads.
class ChatTemplate {
 public:
  // Parses once; throws xent::Error ("chat template: unsupported construct 'include' at
  // line 3, column 5") on a syntax error, an unknown filter or test, or an unsupported tag.
  static std::unique_ptr<ChatTemplate> parse(std::string_view source);
  ~ChatTemplate();

  // Variables: messages, add_generation_prompt, bos_token, eos_token, and those in `extra`
  // (tools, date_string, ...); tools and documents are none unless `extra` has them, as in
  // transformers' apply_chat_template. Throws xent::Error on a runtime error; for raise_exception(msg)
  // the error text contains msg.
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                     const std::string& bos_token, const std::string& eos_token,
                     const nlohmann::json& extra = nlohmann::json::object()) const;
  // A conversation as OpenAI's API and transformers write it: `messages` an array of objects
  // (role, content, and what the template reads: tool_calls, tool_call_id, name, ...), kept in
  // the client's key order; the members of `variables` (tools, documents, enable_thinking, ...)
  // become variables too. tools and documents are none unless given. Throws xent::Error on a
  // message that is not an object without a string role, or a runtime error.
  std::string render_conversation(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& variables,
                                  bool add_generation_prompt, const std::string& bos_token,
                                  const std::string& eos_token) const;
  // Full control: `context` is a JSON object whose members become the template's variables.
  // Keys of JSON objects are seen in nlohmann::json's (sorted) order; to keep a client's key
  // order in `tojson` output (tool schemas), as Python would, pass an ordered_json.
  std::string render_json(const nlohmann::json& context) const;
  std::string render_ordered_json(const nlohmann::ordered_json& context) const;

 private:
  ChatTemplate() = default;
  std::unique_ptr<jinja::Template> tmpl_;
};

// Built-in templates for --chat-template: "chatml", "llama2", "llama3", "mistral", "gemma",
// "phi3", "zephyr", "smollm2", "qwen2". Returns the Jinja source; throws xent::Error listing
// the valid names if `name` is unknown.
std::string builtin_chat_template(std::string_view name);
std::vector<std::string> builtin_chat_template_names();

// Guesses the family of a template source from its marker tokens, e.g. "chatml", "llama3";
// "" when none matches.
std::string detect_chat_template_family(std::string_view source);

}  // namespace xent
