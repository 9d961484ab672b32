// Chat templates: real templates of each model family rendered against expected prompts that
// were written out by reading each template by hand, plus Jinja semantics, errors and limits.
#include <catch2/catch.hpp>

#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "formats/error.h"
#include "formats/gguf.h"
#include "runtime/chat/chat-template.h"
#include "xent.h"

using xent::ChatMessage;
using xent::ChatTemplate;
using nlohmann::json;
using ojson = nlohmann::ordered_json;  // keeps key order, as Python's dicts (and tojson) do

namespace {

const std::string sys = "You are a helpful assistant.";
const std::vector<ChatMessage> with_system = {
    {"system", sys},
    {"user", "Hello!"},
    {"assistant", "Hi there. How can I help?"},
    {"user", "What is 2+2?"},
};
const std::vector<ChatMessage> without_system(with_system.begin() + 1, with_system.end());

std::string render(const std::string& source, const std::vector<ChatMessage>& messages,
                   bool add_generation_prompt = true, const std::string& bos = "<s>",
                   const std::string& eos = "</s>", const json& extra = json::object()) {
  return ChatTemplate::parse(source)->render(messages, add_generation_prompt, bos, eos, extra);
}

std::string render_json(const std::string& source, const json& context) {
  return ChatTemplate::parse(source)->render_json(context);
}

// The text of the xent::Error that rendering (or parsing) `source` throws, or "" if none.
std::string error_of(const std::string& source, const json& context = json::object()) {
  try {
    ChatTemplate::parse(source)->render_json(context);
  } catch (const xent::Error& e) {
    return e.what();
  }
  return "";
}

// ---------------------------------------------------------------- the real templates, as shipped

// tokenizer.chat_template of /work/shared/models/tiny-llama-bpe-*.gguf (plain ChatML).
const std::string chatml_template =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% endif %}";

// Qwen/Qwen2.5-*-Instruct.
const std::string qwen25_template = R"JINJA({%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
)JINJA";

// HuggingFaceTB/SmolLM2-*-Instruct (its newlines are real newlines inside the string literals).
const std::string smollm2_template =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
    "'<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|im_start|>assistant\n' }}{% endif %}";

// meta-llama/Meta-Llama-3-8B-Instruct.
const std::string llama3_template =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim "
    "+ '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif "
    "%}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

// meta-llama/Llama-3.1-8B-Instruct.
const std::string llama31_template = R"JINJA({{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
)JINJA";

// mistralai/Mixtral-8x7B-Instruct-v0.1 (the v0.1 [INST] format).
const std::string mistral_v01_template =
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ "
    "'[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ "
    "message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles "
    "are supported!') }}{% endif %}{% endfor %}";

// mistralai/Mistral-Nemo-Instruct-2407 (the v3 format: system message joined to the last
// user turn, tools, namespace-counted alternation check).
const std::string mistral_nemo_template = R"JINJA({%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}

{#- This block checks for alternating user/assistant messages, skipping tool calling messages #}
{%- set ns = namespace() %}
{%- set ns.index = 0 %}
{%- for message in loop_messages %}
    {%- if not (message.role == "tool" or message.role == "tool_results" or (message.tool_calls is defined and message.tool_calls is not none)) %}
        {%- if (message["role"] == "user") != (ns.index % 2 == 0) %}
            {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
        {%- endif %}
        {%- set ns.index = ns.index + 1 %}
    {%- endif %}
{%- endfor %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- "[AVAILABLE_TOOLS][" }}
            {%- for tool in tools %}
                {%- set tool = tool.function %}
                {{- '{"type": "function", "function": {' }}
                {%- for key, val in tool.items() if key != "return" %}
                    {%- if val is string %}
                        {{- '"' + key + '": "' + val + '"' }}
                    {%- else %}
                        {{- '"' + key + '": ' + val|tojson }}
                    {%- endif %}
                    {%- if not loop.last %}
                        {{- ", " }}
                    {%- endif %}
                {%- endfor %}
                {{- "}}" }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- else %}
                    {{- "]" }}
                {%- endif %}
            {%- endfor %}
            {{- "[/AVAILABLE_TOOLS]" }}
            {%- endif %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST]" + system_message + "\n\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST]" + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif (message.tool_calls is defined and message.tool_calls is not none) %}
        {{- "[TOOL_CALLS][" }}
        {%- for tool_call in message.tool_calls %}
            {%- set out = tool_call.function|tojson %}
            {{- out[:-1] }}
            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}
                {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
            {%- endif %}
            {{- ', "id": "' + tool_call.id + '"}' }}
            {%- if not loop.last %}
                {{- ", " }}
            {%- else %}
                {{- "]" + eos_token }}
            {%- endif %}
        {%- endfor %}
    {%- elif message["role"] == "assistant" %}
        {{- message["content"] + eos_token}}
    {%- elif message["role"] == "tool_results" or message["role"] == "tool" %}
        {%- if message.content is defined and message.content.content is defined %}
            {%- set content = message.content.content %}
        {%- else %}
            {%- set content = message.content %}
        {%- endif %}
        {{- '[TOOL_RESULTS]{"content": ' + content|string + ", " }}
        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}
            {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
        {%- endif %}
        {{- '"call_id": "' + message.tool_call_id + '"}[/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}
)JINJA";

// google/gemma-2-*-it: no system role.
const std::string gemma2_template =
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not "
    "supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% "
    "set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ "
    "'<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor "
    "%}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}";

// google/gemma-3-*-it: the system message is merged into the first user turn.
const std::string gemma3_template = R"JINJA({{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
)JINJA";

// microsoft/Phi-3-mini-4k-instruct.
const std::string phi3_template =
    "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + "
    "message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + "
    "message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' "
    "%}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if "
    "add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}";

// HuggingFaceH4/zephyr-7b-beta: laid out over lines, so it relies on trim_blocks.
const std::string zephyr_template =
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + "
    "message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + "
    "message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ "
    "'<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and "
    "add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";

}  // namespace

// ---------------------------------------------------------------- families

TEST_CASE("ChatML template from the GGUF file", "[chat]") {
  auto reader = xent::gguf::Reader::open(std::string(XENT_SHARED_DIR) + "/models/tiny-llama-bpe-q8_0.gguf");
  auto source = reader->get_string("tokenizer.chat_template");
  REQUIRE(source);
  CHECK(*source == chatml_template);
  CHECK(xent::detect_chat_template_family(*source) == "chatml");
  CHECK(render(*source, with_system) ==
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nHello!<|im_end|>\n"
        "<|im_start|>assistant\nHi there. How can I help?<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n");
  CHECK(render(*source, {{"user", "Hi"}}, false) == "<|im_start|>user\nHi<|im_end|>\n");
}

TEST_CASE("Qwen2.5 template: default system message, given system message", "[chat]") {
  const std::string turns =
      "<|im_start|>user\nHello!<|im_end|>\n"
      "<|im_start|>assistant\nHi there. How can I help?<|im_end|>\n"
      "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
      "<|im_start|>assistant\n";
  CHECK(render(qwen25_template, without_system) ==
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
        "assistant.<|im_end|>\n" + turns);
  // The first system message goes in the header and is skipped by the loop.
  CHECK(render(qwen25_template, with_system) ==
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" + turns);
  CHECK(xent::detect_chat_template_family(qwen25_template) == "qwen2");
}

TEST_CASE("Qwen2.5 template: tools, a tool call and a tool response", "[chat]") {
  // Keys in sorted order, so nlohmann's ordering equals the insertion order Python keeps.
  json tool = {{"function",
                {{"description", "Get the weather"},
                 {"name", "get_weather"},
                 {"parameters",
                  {{"properties", {{"city", {{"type", "string"}}}}},
                   {"required", {"city"}},
                   {"type", "object"}}}}},
               {"type", "function"}};
  json messages = json::array({
      {{"role", "system"}, {"content", sys}},
      {{"role", "user"}, {"content", "What's the weather in Paris?"}},
      {{"role", "assistant"},
       {"content", ""},
       {"tool_calls",
        {{{"type", "function"},
          {"function", {{"name", "get_weather"}, {"arguments", {{"city", "Paris"}}}}}}}}},
      {{"role", "tool"}, {"content", "{\"temp\": 18}"}},
  });
  json context = {{"messages", messages}, {"tools", {tool}}, {"add_generation_prompt", true}};
  CHECK(render_json(qwen25_template, context) ==
        "<|im_start|>system\nYou are a helpful assistant.\n\n# Tools\n\nYou may call one or more "
        "functions to assist with the user query.\n\nYou are provided with function signatures "
        "within <tools></tools> XML tags:\n<tools>\n"
        "{\"function\": {\"description\": \"Get the weather\", \"name\": \"get_weather\", "
        "\"parameters\": {\"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": "
        "[\"city\"], \"type\": \"object\"}}, \"type\": \"function\"}"
        "\n</tools>\n\nFor each function call, return a json object with function name and "
        "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": "
        "<function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n"
        "<|im_start|>user\nWhat's the weather in Paris?<|im_end|>\n"
        "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
        "{\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n"
        "<|im_start|>user\n<tool_response>\n{\"temp\": 18}\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n");
}

TEST_CASE("SmolLM2 template adds its default system prompt", "[chat]") {
  const std::string turns =
      "<|im_start|>user\nHello!<|im_end|>\n"
      "<|im_start|>assistant\nHi there. How can I help?<|im_end|>\n"
      "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
      "<|im_start|>assistant\n";
  CHECK(render(smollm2_template, without_system) ==
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
        "Face<|im_end|>\n" + turns);
  CHECK(render(smollm2_template, with_system) ==
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" + turns);
  CHECK(xent::detect_chat_template_family(smollm2_template) == "smollm2");
}

TEST_CASE("Llama 3 template: bos, header ids, eot_id, trimmed content", "[chat]") {
  std::vector<ChatMessage> messages = with_system;
  messages[3].content = "  What is 2+2?\n";  // `| trim` binds to the content alone
  CHECK(render(llama3_template, messages, true, "<|begin_of_text|>", "<|eot_id|>") ==
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful "
        "assistant.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHi there. How can I help?<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n");
  CHECK(xent::detect_chat_template_family(llama3_template) == "llama3");
}

TEST_CASE("Llama 3.1 template: dated system header, date_string from extra", "[chat]") {
  const std::string turns =
      "You are a helpful assistant.<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\nHi there. How can I help?<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n";
  CHECK(render(llama31_template, with_system, true, "<|begin_of_text|>", "<|eot_id|>") ==
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n" + turns);
  CHECK(render(llama31_template, with_system, true, "<|begin_of_text|>", "<|eot_id|>",
               {{"date_string", "01 Jan 2025"}}) ==
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 01 Jan 2025\n\n" + turns);
}

TEST_CASE("Llama 3.1 template: tools go into the first user message", "[chat]") {
  json tool = {{"function", {{"name", "f"}, {"parameters", {{"type", "object"}}}}}, {"type", "function"}};
  json context = {{"messages", json::array({{{"role", "user"}, {"content", "Hi "}},
                                            {{"role", "assistant"},
                                             {"tool_calls", {{{"function", {{"name", "f"}, {"arguments", {{"x", 1}}}}}}}}},
                                            {{"role", "tool"}, {"content", {{"ok", true}}}}})},
                  {"tools", {tool}},
                  {"bos_token", "<B>"},
                  {"add_generation_prompt", false}};
  CHECK(render_json(llama31_template, context) ==
        "<B><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\n"
        "Given the following functions, please respond with a JSON for a function call with its "
        "proper arguments that best answers the given prompt.\n\n"
        "Respond in the format {\"name\": function name, \"parameters\": dictionary of argument "
        "name and its value}.Do not use variables.\n\n"
        "{\n    \"function\": {\n        \"name\": \"f\",\n        \"parameters\": {\n"
        "            \"type\": \"object\"\n        }\n    },\n    \"type\": \"function\"\n}\n\n"
        "Hi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"f\", \"parameters\": "
        "{\"x\": 1}}<|eot_id|>"
        "<|start_header_id|>ipython<|end_header_id|>\n\n{\"ok\": true}<|eot_id|>");
}

TEST_CASE("Mistral v0.1 template: [INST] turns and alternation errors", "[chat]") {
  CHECK(render(mistral_v01_template, without_system) ==
        "<s>[INST] Hello! [/INST]Hi there. How can I help?</s>[INST] What is 2+2? [/INST]");
  CHECK(xent::detect_chat_template_family(mistral_v01_template) == "mistral");
  try {
    render(mistral_v01_template, {{"user", "a"}, {"user", "b"}});
    FAIL("expected an error");
  } catch (const xent::Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("Conversation roles must alternate user/assistant/user/assistant/..."));
  }
  CHECK_THROWS_WITH(render(mistral_v01_template, with_system),
                    Catch::Contains("Conversation roles must alternate"));
}

TEST_CASE("Mistral Nemo (v3) template: system joined to the last user turn", "[chat]") {
  CHECK(render(mistral_nemo_template, with_system) ==
        "<s>[INST]Hello![/INST]Hi there. How can I help?</s>"
        "[INST]You are a helpful assistant.\n\nWhat is 2+2?[/INST]");
  CHECK_THROWS_WITH(render(mistral_nemo_template, {{"system", "s"}, {"assistant", "a"}}),
                    Catch::Contains("After the optional system message, conversation roles must "
                                    "alternate user/assistant/user/assistant/..."));
  // Tools go before the last user message; `message == user_messages[-1]` compares dicts.
  json tool = {{"type", "function"}, {"function", {{"name", "f"}, {"description", "does f"}, {"parameters", {{"type", "object"}}}}}};
  json context = {{"messages", json::array({{{"role", "user"}, {"content", "a"}},
                                            {{"role", "assistant"}, {"content", "b"}},
                                            {{"role", "user"}, {"content", "c"}}})},
                  {"tools", {tool}},
                  {"bos_token", "<s>"},
                  {"eos_token", "</s>"}};
  CHECK(render_json(mistral_nemo_template, context) ==
        "<s>[INST]a[/INST]b</s>[AVAILABLE_TOOLS][{\"type\": \"function\", \"function\": "
        "{\"description\": \"does f\", \"name\": \"f\", \"parameters\": {\"type\": \"object\"}}}]"
        "[/AVAILABLE_TOOLS][INST]c[/INST]");
}

TEST_CASE("Gemma 2 template: role model, system raises", "[chat]") {
  CHECK(render(gemma2_template, without_system, true, "<bos>", "<eos>") ==
        "<bos><start_of_turn>user\nHello!<end_of_turn>\n"
        "<start_of_turn>model\nHi there. How can I help?<end_of_turn>\n"
        "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n"
        "<start_of_turn>model\n");
  CHECK_THROWS_WITH(render(gemma2_template, with_system), Catch::Contains("System role not supported"));
  CHECK(xent::detect_chat_template_family(gemma2_template) == "gemma");
}

TEST_CASE("Gemma 3 template: system merged into the first user turn", "[chat]") {
  CHECK(render(gemma3_template, with_system, true, "<bos>", "<eos>") ==
        "<bos><start_of_turn>user\nYou are a helpful assistant.\n\nHello!<end_of_turn>\n"
        "<start_of_turn>model\nHi there. How can I help?<end_of_turn>\n"
        "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n"
        "<start_of_turn>model\n");
  // List content (the multimodal form) goes through the `is iterable` branch.
  json context = {{"bos_token", "<bos>"},
                  {"messages", json::array({{{"role", "user"},
                                             {"content", json::array({{{"type", "image"}},
                                                                      {{"type", "text"}, {"text", " Describe. "}}})}}})},
                  {"add_generation_prompt", false}};
  CHECK(render_json(gemma3_template, context) ==
        "<bos><start_of_turn>user\n<start_of_image>Describe.<end_of_turn>\n");
}

TEST_CASE("Phi-3 template", "[chat]") {
  const std::string turns =
      "<|system|>\nYou are a helpful assistant.<|end|>\n"
      "<|user|>\nHello!<|end|>\n"
      "<|assistant|>\nHi there. How can I help?<|end|>\n"
      "<|user|>\nWhat is 2+2?<|end|>\n";
  CHECK(render(phi3_template, with_system, true, "<s>", "<|endoftext|>") == turns + "<|assistant|>\n");
  CHECK(render(phi3_template, with_system, false, "<s>", "<|endoftext|>") == turns + "<|endoftext|>");
  CHECK(xent::detect_chat_template_family(phi3_template) == "phi3");
}

TEST_CASE("Zephyr template relies on trim_blocks", "[chat]") {
  CHECK(render(zephyr_template, {{"system", "Be a pirate"}, {"user", "How many?"}}) ==
        "<|system|>\nBe a pirate</s>\n<|user|>\nHow many?</s>\n<|assistant|>\n");
  CHECK(xent::detect_chat_template_family(zephyr_template) == "zephyr");
}

// ---------------------------------------------------------------- the real templates, from files

namespace {

// tests/runtime/chat/templates/<name>: the chat_template text as the model ships it.
std::string template_file(const std::string& name) {
  std::ifstream in(std::string(XENT_SOURCE_DIR) + "/tests/runtime/chat/templates/" + name, std::ios::binary);
  REQUIRE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string render_ordered(const std::string& source, const ojson& context) {
  return ChatTemplate::parse(source)->render_ordered_json(context);
}

const ojson weather_tool = ojson::parse(R"({"type": "function", "function": {"name": "get_weather",
    "description": "Get the weather", "parameters": {"type": "object",
    "properties": {"city": {"type": "string"}}, "required": ["city"]}}})");
const std::string weather_tool_json =
    "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the "
    "weather\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": "
    "\"string\"}}, \"required\": [\"city\"]}}}";
// json.dumps(weather_tool, indent=4)
const std::string weather_tool_json4 =
    "{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_weather\",\n"
    "        \"description\": \"Get the weather\",\n        \"parameters\": {\n"
    "            \"type\": \"object\",\n            \"properties\": {\n"
    "                \"city\": {\n                    \"type\": \"string\"\n                }\n"
    "            },\n            \"required\": [\n                \"city\"\n            ]\n"
    "        }\n    }\n}";

}  // namespace

TEST_CASE("Qwen3 template: system, turns, enable_thinking", "[chat]") {
  const std::string t = template_file("Qwen-Qwen3-0.6B.jinja");
  CHECK(xent::detect_chat_template_family(t) == "chatml");
  const std::string turns =
      "<|im_start|>user\nHello!<|im_end|>\n"
      "<|im_start|>assistant\nHi there. How can I help?<|im_end|>\n"
      "<|im_start|>user\nWhat is 2+2?<|im_end|>\n";
  // No default system message; the first system message is the header and skipped in the loop.
  CHECK(render(t, with_system, true, "", "<|im_end|>") ==
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" + turns + "<|im_start|>assistant\n");
  CHECK(render(t, without_system, false) == turns);
  // enable_thinking=false pre-fills an empty think block; true (or absent) leaves it to the model.
  CHECK(render(t, without_system, true, "", "", {{"enable_thinking", false}}) ==
        turns + "<|im_start|>assistant\n<think>\n\n</think>\n\n");
  CHECK(render(t, without_system, true, "", "", {{"enable_thinking", true}}) == turns + "<|im_start|>assistant\n");
}

TEST_CASE("Qwen3 template: <think> kept only after the last user query", "[chat]") {
  const std::string t = template_file("Qwen-Qwen3-0.6B.jinja");
  ojson context = ojson::parse(R"({"add_generation_prompt": false, "messages": [
      {"role": "user", "content": "What is 2+2?"},
      {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n4"},
      {"role": "user", "content": "And 3+3?"},
      {"role": "assistant", "content": "6", "reasoning_content": "\nthree plus three\n"}]})");
  // The earlier answer loses its reasoning (split at </think>); the last keeps
  // reasoning_content, stripped of newlines, in a think block.
  CHECK(render_ordered(t, context) ==
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n4<|im_end|>\n"
        "<|im_start|>user\nAnd 3+3?<|im_end|>\n"
        "<|im_start|>assistant\n<think>\nthree plus three\n</think>\n\n6<|im_end|>\n");
}

TEST_CASE("Qwen3 template: tools, tool calls (object and string arguments), tool responses", "[chat]") {
  const std::string t = template_file("Qwen-Qwen3-0.6B.jinja");
  ojson context = ojson::parse(R"({"add_generation_prompt": true, "messages": [
      {"role": "system", "content": "You are a helpful assistant."},
      {"role": "user", "content": "Weather in Paris and Rome?"},
      {"role": "assistant", "content": "<think>\nNeed two calls.\n</think>\n\nLet me check.", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
        {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}}]},
      {"role": "tool", "content": "{\"temp\": 18}"},
      {"role": "tool", "content": "{\"temp\": 24}"}]})");
  context["tools"] = ojson::array({weather_tool});
  CHECK(render_ordered(t, context) ==
        "<|im_start|>system\nYou are a helpful assistant.\n\n# Tools\n\nYou may call one or more "
        "functions to assist with the user query.\n\nYou are provided with function signatures "
        "within <tools></tools> XML tags:\n<tools>\n" + weather_tool_json +
        "\n</tools>\n\nFor each function call, return a json object with function name and "
        "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": "
        "<function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n"
        "<|im_start|>user\nWeather in Paris and Rome?<|im_end|>\n"
        // After the last user query and with reasoning: the think block stays.
        "<|im_start|>assistant\n<think>\nNeed two calls.\n</think>\n\nLet me check.\n"
        "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n"
        "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}\n</tool_call><|im_end|>\n"
        // Consecutive tool messages share one user turn.
        "<|im_start|>user\n<tool_response>\n{\"temp\": 18}\n</tool_response>\n"
        "<tool_response>\n{\"temp\": 24}\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n");

  // Content null (not a string) counts as ''; no tools at all leaves `tools` undefined.
  ojson plain = ojson::parse(R"({"add_generation_prompt": false, "messages": [
      {"role": "user", "content": "Weather?"},
      {"role": "assistant", "content": null, "tool_calls": [
        {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
      {"role": "tool", "content": "18C"},
      {"role": "assistant", "content": "It is 18C."}]})");
  CHECK(render_ordered(t, plain) ==
        "<|im_start|>user\nWeather?<|im_end|>\n"
        "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
        "{\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n"
        "<|im_start|>user\n<tool_response>\n18C\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n<think>\n\n</think>\n\nIt is 18C.<|im_end|>\n");
}

// The C API for conversations with tools (xent serve's path): the JSON text a client sent,
// its key order kept in `tojson`, so the prompt equals the one ChatTemplate renders.
TEST_CASE("xent_chat_apply_template_json: messages and tools as JSON text, key order kept, errors", "[chat]") {
  const std::string t = template_file("Qwen-Qwen3-0.6B.jinja");
  const ojson messages = ojson::parse(R"([
      {"role": "user", "content": "Weather in Paris?"},
      {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "18C"}])");
  const std::string m = messages.dump(), v = ojson{{"tools", ojson::array({weather_tool})}}.dump();
  const int32_t n = xent_chat_apply_template_json(nullptr, t.c_str(), m.c_str(), v.c_str(), true, nullptr, 0);
  REQUIRE(n > 0);
  std::string out(static_cast<size_t>(n) + 1, '\0');
  REQUIRE(xent_chat_apply_template_json(nullptr, t.c_str(), m.c_str(), v.c_str(), true, out.data(), n + 1) == n);
  out.resize(static_cast<size_t>(n));
  ojson context = {{"messages", messages}, {"tools", ojson::array({weather_tool})}, {"add_generation_prompt", true},
                   {"bos_token", ""}, {"eos_token", ""}};
  CHECK(out == render_ordered(t, context));
  // "type" before "function", "name" before "description": the client's order, not sorted.
  CHECK(out.find(weather_tool_json) != std::string::npos);
  CHECK(out.find("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>") !=
        std::string::npos);
  CHECK(out.find("<tool_response>\n18C\n</tool_response>") != std::string::npos);

  // Without variables, tools is none: the same as the plain API's prompt.
  const std::string plain_msgs = R"([{"role": "user", "content": "Hi"}])";
  const xent_chat_message plain = {"user", "Hi"};
  const int32_t a = xent_chat_apply_template_json(nullptr, "chatml", plain_msgs.c_str(), nullptr, true, nullptr, 0);
  CHECK(a == xent_chat_apply_template(nullptr, "chatml", &plain, 1, true, nullptr, 0));
  CHECK(a == static_cast<int32_t>(std::string("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n").size()));

  // Errors are a negative result with a reason, never a crash.
  CHECK(xent_chat_apply_template_json(nullptr, "chatml", "[{\"role\": ", nullptr, true, nullptr, 0) < 0);
  CHECK(std::string(xent_last_error()).find("invalid JSON") != std::string::npos);
  CHECK(xent_chat_apply_template_json(nullptr, "chatml", "[{\"content\": \"x\"}]", nullptr, true, nullptr, 0) < 0);
  CHECK(std::string(xent_last_error()).find("message 0") != std::string::npos);
  CHECK(xent_chat_apply_template_json(nullptr, "chatml", "{}", nullptr, true, nullptr, 0) < 0);
  CHECK(xent_chat_apply_template_json(nullptr, "chatml", "[]", "[1]", true, nullptr, 0) < 0);
  CHECK(std::string(xent_last_error()).find("variables") != std::string::npos);
  CHECK(xent_chat_apply_template_json(nullptr, "chatml", nullptr, nullptr, true, nullptr, 0) < 0);
}

TEST_CASE("DeepSeek-R1-Distill-Qwen template: system first, </think> stripped, <think> prompt", "[chat]") {
  const std::string t = template_file("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja");
  std::vector<ChatMessage> messages = with_system;
  messages.push_back({"assistant", "<think>\n2 plus 2\n</think>\n\n4"});
  messages.push_back({"user", "Thanks"});
  const std::string bos = "<｜begin▁of▁sentence｜>";
  const std::string body =
      bos + "You are a helpful assistant.<｜User｜>Hello!<｜Assistant｜>Hi there. How can I "
      "help?<｜end▁of▁sentence｜><｜User｜>What is 2+2?<｜Assistant｜>\n\n4<｜end▁of▁sentence｜>"
      "<｜User｜>Thanks";
  CHECK(render(t, messages, true, bos, "<｜end▁of▁sentence｜>") == body + "<｜Assistant｜><think>\n");
  CHECK(render(t, messages, false, bos, "<｜end▁of▁sentence｜>") == body);
}

TEST_CASE("DeepSeek-R1-Distill-Qwen template: tool calls and tool outputs", "[chat]") {
  const std::string t = template_file("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja");
  ojson context = ojson::parse(R"({"bos_token": "<B>", "add_generation_prompt": true, "messages": [
      {"role": "user", "content": "Weather?"},
      {"role": "assistant", "content": null, "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
        {"type": "function", "function": {"name": "get_time", "arguments": "{\"tz\": \"CET\"}"}}]},
      {"role": "tool", "content": "{\"temp\": 18}"},
      {"role": "tool", "content": "sunny"},
      {"role": "assistant", "content": "It is 18 and sunny."}]})");
  const std::string calls =
      "<B><｜User｜>Weather?<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function"
      "<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜>"
      "\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{\"tz\": \"CET\"}\n```"
      "<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜>"
      "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>{\"temp\": 18}<｜tool▁output▁end｜>"
      "\n<｜tool▁output▁begin｜>sunny<｜tool▁output▁end｜>";
  CHECK(render_ordered(t, context) ==
        calls + "<｜tool▁outputs▁end｜>It is 18 and sunny.<｜end▁of▁sentence｜><｜Assistant｜><think>\n");
  // Ending on tool outputs closes them and asks for no assistant turn.
  context["messages"].erase(4);
  CHECK(render_ordered(t, context) == calls + "<｜tool▁outputs▁end｜>");
}

TEST_CASE("Llama 3.2 template: date_string, strftime_now, system header", "[chat]") {
  const std::string t = template_file("meta-llama-Llama-3.2-3B-Instruct.jinja");
  CHECK(xent::detect_chat_template_family(t) == "llama3");
  const std::string turns =
      "You are a helpful assistant.<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\nHi there. How can I help?<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>";
  const std::string head = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                           "Cutting Knowledge Date: December 2023\nToday Date: ";
  CHECK(render(t, with_system, true, "<|begin_of_text|>", "<|eot_id|>", {{"date_string", "26 Jul 2024"}}) ==
        head + "26 Jul 2024\n\n" + turns + "<|start_header_id|>assistant<|end_header_id|>\n\n");
  // Without date_string, `strftime_now is defined` and gives today's date ("%d %b %Y").
  auto today = [] {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[32];
    return std::string(buf, std::strftime(buf, sizeof buf, "%d %b %Y", &tm));
  };
  std::string before = today();
  std::string out = render(t, with_system, false, "<|begin_of_text|>", "<|eot_id|>");
  std::string after = today();
  CHECK((out == head + before + "\n\n" + turns || out == head + after + "\n\n" + turns));
}

TEST_CASE("Llama 3.2 template: tools in the first user message, a tool call, tool results", "[chat]") {
  const std::string t = template_file("meta-llama-Llama-3.2-3B-Instruct.jinja");
  ojson context = ojson::parse(R"({"bos_token": "<|begin_of_text|>", "date_string": "02 Mar 2025",
      "add_generation_prompt": true, "messages": [
      {"role": "system", "content": "You are a helpful assistant."},
      {"role": "user", "content": "Weather in Paris?"},
      {"role": "assistant", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
      {"role": "tool", "content": {"temp": 18}},
      {"role": "ipython", "content": "sunny"}]})");
  context["tools"] = ojson::array({weather_tool});
  const std::string instructions =
      "Respond in the format {\"name\": function name, \"parameters\": dictionary of argument "
      "name and its value}.Do not use variables.\n\n";
  CHECK(render_ordered(t, context) ==
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 02 Mar 2025\n\n"
        "You are a helpful assistant.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nGiven the following functions, please respond "
        "with a JSON for a function call with its proper arguments that best answers the given "
        "prompt.\n\n" + instructions + weather_tool_json4 + "\n\nWeather in Paris?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"get_weather\", "
        "\"parameters\": {\"city\": \"Paris\"}}<|eot_id|>"
        "<|start_header_id|>ipython<|end_header_id|>\n\n{\"temp\": 18}<|eot_id|>"
        // A string is iterable in Jinja2, so a string result goes through tojson too.
        "<|start_header_id|>ipython<|end_header_id|>\n\n\"sunny\"<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n");

  ojson in_system = ojson::parse(R"({"bos_token": "<B>", "date_string": "02 Mar 2025",
      "tools_in_user_message": false, "add_generation_prompt": false,
      "messages": [{"role": "user", "content": "Weather?"}]})");
  in_system["tools"] = ojson::array({weather_tool});
  CHECK(render_ordered(t, in_system) ==
        "<B><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 02 Mar 2025\n\n"
        "You have access to the following functions. To call a function, please respond with "
        "JSON for a function call." + instructions + weather_tool_json4 + "\n\n<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWeather?<|eot_id|>");

  ojson no_user = ojson::parse(R"({"messages": [{"role": "system", "content": "s"}]})");
  no_user["tools"] = ojson::array({weather_tool});
  CHECK_THROWS_WITH(render_ordered(t, no_user), Catch::Contains("Cannot put tools in the first user message"));
  ojson two_calls = context;
  two_calls["messages"][2]["tool_calls"].push_back(two_calls["messages"][2]["tool_calls"][0]);
  CHECK_THROWS_WITH(render_ordered(t, two_calls), Catch::Contains("only supports single tool-calls"));
}

TEST_CASE("Phi-3.5-mini template: empty system skipped, eos without generation prompt", "[chat]") {
  const std::string t = template_file("microsoft-Phi-3.5-mini-instruct.jinja");
  CHECK(xent::detect_chat_template_family(t) == "phi3");
  CHECK(render(t, with_system, true, "<s>", "<|endoftext|>") ==
        "<|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\nHello!<|end|>\n"
        "<|assistant|>\nHi there. How can I help?<|end|>\n<|user|>\nWhat is 2+2?<|end|>\n"
        "<|assistant|>\n");
  CHECK(render(t, {{"system", ""}, {"user", "Hello!"}, {"assistant", "Hi."}}, false, "<s>", "<|endoftext|>") ==
        "<|user|>\nHello!<|end|>\n<|assistant|>\nHi.<|end|>\n<|endoftext|>");
}

TEST_CASE("Phi-4-mini template: tools on the system message, no newlines", "[chat]") {
  const std::string t = template_file("microsoft-Phi-4-mini-instruct.jinja");
  const std::string tools = "[{\"name\": \"get_weather\", \"description\": \"Get the weather\"}]";
  ojson context = ojson::parse(R"({"eos_token": "<|endoftext|>", "add_generation_prompt": true, "messages": [
      {"role": "system", "content": "You are a helpful assistant."},
      {"role": "user", "content": "Hello!"},
      {"role": "assistant", "content": "Hi there. How can I help?"},
      {"role": "user", "content": "What is 2+2?"}]})");
  context["messages"][0]["tools"] = tools;
  const std::string turns =
      "<|user|>Hello!<|end|><|assistant|>Hi there. How can I help?<|end|><|user|>What is 2+2?<|end|>";
  CHECK(render_ordered(t, context) ==
        "<|system|>You are a helpful assistant.<|tool|>" + tools + "<|/tool|><|end|>" + turns + "<|assistant|>");
  // `tools` present but none is the plain system turn; so is no `tools` key.
  context["messages"][0]["tools"] = nullptr;
  context["add_generation_prompt"] = false;
  CHECK(render_ordered(t, context) == "<|system|>You are a helpful assistant.<|end|>" + turns + "<|endoftext|>");
  CHECK(render(t, with_system, false, "", "<|endoftext|>") ==
        "<|system|>You are a helpful assistant.<|end|>" + turns + "<|endoftext|>");
}

TEST_CASE("Functionary v3.1 template: selectattr over tools = none, Markup-escaped tool list", "[chat]") {
  const std::string t = template_file("meetkai-functionary-medium-v3.1.jinja");
  // Without tools, `none | selectattr(...)` is empty (this failed with "cannot iterate over none").
  CHECK(render(t, with_system, true, "<|begin_of_text|>", "<|eot_id|>") ==
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n\n"
        "Cutting Knowledge Date: December 2023\n\n<|eot_id|>"
        "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHi there. How can I help?<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n");
  ojson context = ojson::parse(R"({"bos_token": "<B>", "add_generation_prompt": true, "messages": [
      {"role": "user", "content": "Weather?"},
      {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
      {"role": "tool", "content": "18C"}]})");
  context["tools"] = ojson::array({weather_tool});
  // `"..."|safe + x` is Markup + str, which HTML-escapes x: the JSON's quotes become &#34;.
  CHECK(render_ordered(t, context) ==
        "<B><|start_header_id|>system<|end_header_id|>\n\n\nCutting Knowledge Date: December 2023\n\n"
        "\nYou have access to the following functions:\n\n"
        "Use the function 'get_weather' to 'Get the weather'\n"
        "{&#34;name&#34;: &#34;get_weather&#34;, &#34;description&#34;: &#34;Get the weather&#34;, "
        "&#34;parameters&#34;: {&#34;type&#34;: &#34;object&#34;, &#34;properties&#34;: {&#34;city&#34;: "
        "{&#34;type&#34;: &#34;string&#34;}}, &#34;required&#34;: [&#34;city&#34;]}}\n\n"
        "\nThink very carefully before calling functions.\nIf a you choose to call a function ONLY "
        "reply in the following format:\n<{start_tag}={function_name}>{parameters}{end_tag}\nwhere\n\n"
        "start_tag => `<function`\nparameters => a JSON dict with the function argument name as key "
        "and function argument value as value.\nend_tag => `</function>`\n\nHere is an example,\n"
        "<function=example_function_name>{\"example_name\": \"example_value\"}</function>\n\n"
        "Reminder:\n- If looking for real time information use relevant functions before falling "
        "back to brave_search\n- Function calls MUST follow the specified format, start with "
        "<function= and end with </function>\n- Required parameters MUST be specified\n- Only call "
        "one function at a time\n- Put the entire function call reply on one line\n\n<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWeather?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n<function=get_weather>{\"city\": "
        "\"Paris\"}</function><|eom_id|>"
        "<|start_header_id|>ipython<|end_header_id|>\n\n18C<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

// ---------------------------------------------------------------- built-ins

TEST_CASE("Built-in templates render and are recognised as their own family", "[chat]") {
  auto names = xent::builtin_chat_template_names();
  REQUIRE(names.size() >= 8);
  for (const auto& name : names) {
    INFO(name);
    std::string source = xent::builtin_chat_template(name);
    CHECK(xent::detect_chat_template_family(source) == name);
    std::string out = render(source, with_system, true, "<s>", "</s>");
    CHECK_THAT(out, Catch::Contains("Hello!"));
    CHECK_THAT(out, Catch::Contains("What is 2+2?"));
    CHECK_THAT(out, Catch::Contains("You are a helpful assistant."));
  }
  CHECK(render(xent::builtin_chat_template("chatml"), with_system) == render(chatml_template, with_system));
  CHECK(render(xent::builtin_chat_template("phi3"), with_system, false, "", "<|endoftext|>") ==
        render(phi3_template, with_system, false, "", "<|endoftext|>"));
  CHECK(render(xent::builtin_chat_template("smollm2"), without_system) == render(smollm2_template, without_system));
  CHECK(render(xent::builtin_chat_template("qwen2"), without_system) == render(qwen25_template, without_system));
  CHECK(render(xent::builtin_chat_template("llama3"), with_system, true, "<|begin_of_text|>") ==
        render(llama3_template, with_system, true, "<|begin_of_text|>"));
  CHECK(render(xent::builtin_chat_template("gemma"), with_system, true, "<bos>") ==
        render(gemma3_template, with_system, true, "<bos>"));
  CHECK(render(xent::builtin_chat_template("llama2"), with_system) ==
        "<s>[INST] <<SYS>>\nYou are a helpful assistant.\n<</SYS>>\n\nHello! [/INST] Hi there. "
        "How can I help? </s><s>[INST] What is 2+2? [/INST]");
  CHECK(render(xent::builtin_chat_template("mistral"), with_system) ==
        "<s>[INST] You are a helpful assistant.\n\nHello! [/INST]Hi there. How can I help?</s>"
        "[INST] What is 2+2? [/INST]");
  CHECK_THROWS_WITH(render(xent::builtin_chat_template("llama2"), {{"user", "a"}, {"user", "b"}}),
                    Catch::Contains("alternate"));
  CHECK_THROWS_WITH(xent::builtin_chat_template("nope"), Catch::Contains("chatml") && Catch::Contains("llama3"));
  CHECK(xent::detect_chat_template_family("{{ messages }}") == "");
}

// ---------------------------------------------------------------- whitespace

TEST_CASE("Whitespace: trim_blocks, lstrip_blocks, - and + modifiers", "[chat]") {
  CHECK(render_json("  {% if true %}\n    x\n  {% endif %}\ny", json::object()) == "    x\ny");
  CHECK(render_json("a  {%- if true -%}  b  {%- endif -%}  c", json::object()) == "abc");
  CHECK(render_json("a {{- 'b' -}} c", json::object()) == "abc");
  CHECK(render_json("{{ 'a' }}\n{{ 'b' }}", json::object()) == "a\nb");  // no trim after }}
  CHECK(render_json("  {%+ if true %}x{% endif %}", json::object()) == "  x");
  CHECK(render_json("{% if true +%}\nx{% endif %}", json::object()) == "\nx");
  CHECK(render_json("a\n  {# note #}\nb", json::object()) == "a\nb");
  CHECK(render_json("a {#- note -#} b", json::object()) == "ab");
  CHECK(render_json("x {% if true %}y{% endif %}", json::object()) == "x y");  // not at line start
  CHECK(render_json("x\n", json::object()) == "x");  // keep_trailing_newline is off
  CHECK(render_json("x\n\n", json::object()) == "x\n");
  CHECK(render_json("{% for i in [1, 2] %}\n{{ i }}\n{% endfor %}\n", json::object()) == "1\n2\n");
}

// ---------------------------------------------------------------- expressions

TEST_CASE("Jinja expressions, filters, tests and methods", "[chat]") {
  auto r = [](const std::string& s, const json& ctx = json::object()) { return render_json(s, ctx); };
  CHECK(r("{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 1 / 4 }}") ==
        "7 3 -4 -2 1024 0.25");
  CHECK(r("{{ 'a' ~ 1 ~ none }} {{ 'ab' * 2 }} {{ [1] + [2] }} {{ 3.0 }} {{ true }}") ==
        "a1None abab [1, 2] 3.0 True");
  CHECK(r("{{ 'a' if x else 'b' }} {{ x is defined }} {{ x is not defined }} {{ x }}|") ==
        "b False True |");
  CHECK(r("{{ m.a.b }}|{{ m['a'] is mapping }}|{{ m.a.b is none }}", {{"m", {{"a", {{"b", nullptr}}}}}}) ==
        "None|True|True");
  CHECK(r("{{ [1, 2, 3][1:] }} {{ [1, 2, 3][::-1] }} {{ 'hello'[1:3] }} {{ [1, 2, 3][-1] }}") ==
        "[2, 3] [3, 2, 1] el 3");
  CHECK(r("{{ 2 in [1, 2] }} {{ 'b' not in 'abc' }} {{ 'k' in {'k': 1} }} {{ 1 < 2 < 3 }}") ==
        "True False True True");
  CHECK(r("{{ '  Hi  ' | trim }}|{{ 'hi' | upper }}|{{ 'HI' | lower }}|{{ 'hello world' | title }}|"
          "{{ 'hELLO' | capitalize }}|{{ 'a-b' | replace('-', '+') }}") ==
        "Hi|HI|hi|Hello World|Hello|a+b");
  CHECK(r("{{ [1, 2] | length }} {{ 'héllo' | length }} {{ [3, 1] | first }} {{ [3, 1] | last }} "
          "{{ ['a', 'b'] | join(', ') }} {{ x | default('d') }} {{ '' | default('e', true) }}") ==
        "2 5 3 1 a, b d e");
  CHECK(r("{{ {'b': 1, 'a': [1, 'x']} | tojson }}") == "{\"b\": 1, \"a\": [1, \"x\"]}");
  CHECK(r("{{ {'a': [1]} | tojson(indent=2) }}") == "{\n  \"a\": [\n    1\n  ]\n}");
  CHECK(r("{{ 'é\"\\n' | tojson }}") == "\"é\\\"\\n\"");
  CHECK(r("{% for k, v in {'a': 1, 'b': 2} | items %}{{ k }}={{ v }};{% endfor %}") == "a=1;b=2;");
  CHECK(r("{% for k, v in d.items() %}{{ k }}{{ v }}{% endfor %} {{ d.keys() | list }} {{ d.get('z', 0) }}",
          {{"d", {{"a", 1}}}}) == "a1 ['a'] 0");
  CHECK(r("{{ '42' | int + 1 }} {{ 3.9 | int }} {{ 'x' | int }} {{ 5 | string ~ '!' }}") == "43 3 0 5!");
  json people = {{{"name", "a"}, {"ok", true}}, {{"name", "b"}, {"ok", false}}, {{"name", "c"}}};
  CHECK(r("{{ p | selectattr('ok') | map(attribute='name') | join }} "
          "{{ p | rejectattr('ok', 'defined') | map(attribute='name') | list }} "
          "{{ p | selectattr('name', 'equalto', 'b') | list | length }}",
          {{"p", people}}) == "a ['c'] 1");
  CHECK(r("{{ [1, 2, 3, 4] | select('even') | list }} {{ ['a', 'B'] | map('upper') | list }}") ==
        "[2, 4] ['A', 'B']");
  CHECK(r("{{ '<b>' | escape }} {{ '<b>' | safe }}") == "&lt;b&gt; <b>");
  CHECK(r("{{ ' a b '.strip() }}|{{ 'xxaxx'.lstrip('x') }}|{{ 'a  b'.split() }}|{{ 'a,b'.split(',') }}|"
          "{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith(('x', 'c')) }}|{{ 'Ab'.upper() }}{{ 'Ab'.lower() }}|"
          "{{ 'aXa'.replace('a', 'b') }}|{{ 'x  '.rstrip() }}|") ==
        "a b|axx|['a', 'b']|['a', 'b']|True|True|ABab|bXb|x|");
  CHECK(r("{{ x is string }}{{ 1 is number }}{{ 1 is integer }}{{ 1.5 is float }}{{ [] is iterable }}"
          "{{ none is none }}{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ true is boolean }}",
          {{"x", "s"}}) == "TrueTrueTrueTrueTrueTrueTrueTrueTrueTrue");
  CHECK(r("{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ range(3, 0, -1) | list }}") ==
        "[0, 1, 2] [1, 3, 5] [3, 2, 1]");
}

TEST_CASE("Jinja statements: loops, scoping, namespace, macros", "[chat]") {
  auto r = [](const std::string& s, const json& ctx = json::object()) { return render_json(s, ctx); };
  CHECK(r("{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ x }}"
          "{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}") ==
        "103aTrueFalse3;212bFalseFalse3;321cFalseTrue3;");
  CHECK(r("{% for x in [1, 2, 3, 4] if x is even %}{{ x }}/{{ loop.length }} {% endfor %}") == "2/2 4/2 ");
  CHECK(r("{% for x in [] %}a{% else %}empty{% endfor %}") == "empty");
  CHECK(r("{% for x in [1, 2, 3, 4] %}{% if x == 2 %}{% continue %}{% endif %}"
          "{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}") == "13");
  // `set` inside a loop does not leak out of it; a namespace does.
  CHECK(r("{% set found = false %}{% for x in [1] %}{% set found = true %}{% endfor %}{{ found }}") == "False");
  CHECK(r("{% set ns = namespace(found=false) %}{% for x in [1] %}{% set ns.found = true %}{% endfor %}"
          "{{ ns.found }}") == "True");
  CHECK(r("{% set a, b = [1, 2] %}{{ b }}{{ a }}") == "21");
  CHECK(r("{% set block %}x{{ 1 + 1 }}{% endset %}[{{ block }}]") == "[x2]");
  CHECK(r("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
          "{{ greet('a') }} {{ greet('b', punct='?') }}") == "Hi a! Hi b?");
  CHECK(r("{% if a %}1{% elif b %}2{% else %}3{% endif %}", {{"b", 1}}) == "2");
  CHECK(r("{{ strftime_now('%Y') | length }}") == "4");
  CHECK(r("{% generation %}x{% endgeneration %}") == "x");
}

// ---------------------------------------------------------------- undefined values

// Expected values are Jinja2 3.1's (the default Undefined that transformers uses).
TEST_CASE("Undefined values: empty, falsy and defaultable, as in Jinja2", "[chat]") {
  auto r = [](const std::string& s, const json& ctx = json::object()) { return render_json(s, ctx); };
  json user = {{"user", {{"name", "a"}}}};
  CHECK(r("{% for m in missing %}never{% endfor %}"
          "{% if missing is defined %}yes{% else %}no{% endif %}|{{ missing | default('d') }}|"
          "{{ missing }}|{{ missing | length }}|{{ missing is none }}|{{ missing == none }}|"
          "{{ none == missing }}|{{ missing != none }}|{{ not missing }}|{{ missing is undefined }}",
          user) == "no|d||0|False|False|False|True|True|True");
  // A missing key or attribute of a value is undefined too, and so is a macro argument
  // that was not passed.
  CHECK(r("{{ user.nickname | default('anon') }}|{{ user.nickname is defined }}|{{ user['x'] is defined }}|"
          "{{ user.nickname }}|{% for x in user.nickname %}x{% endfor %}|{{ user.nickname | list }}",
          user) == "anon|False|False|||[]");
  CHECK(r("{{ n.x is defined }}|{{ n.x }}|{{ s.x }}|{{ l[5] is defined }}|{{ l[-9] }}|{{ 'ab'[7] }}",
          {{"n", nullptr}, {"s", "str"}, {"l", {1}}}) == "False|||False||");
  CHECK(r("{% macro m(a, b) %}[{{ a }}{{ b is defined }}]{% endmacro %}{{ m(1) }}") == "[1False]");
  // The filters that only iterate, print or count take it as empty.
  CHECK(r("{{ u | trim }}|{{ u | upper }}|{{ u | join(',') }}|{{ u | string }}|{{ u | sort }}|"
          "{{ u | select | list }}|{{ u | map(attribute='x') | list }}|{{ u | sum }}|{{ u | first }}|"
          "{{ u | items | list }}|{{ u ~ 'x' }}|{{ 'a' in u }}|{{ u in [1] }}|{{ u and 1 }}|{{ u or 2 }}") ==
        "||||[]|[]|[]|0||[]|x|False|False||2");
  // What Python says of Undefined: it iterates, has a length and __call__; it is no string
  // or number, and only equal to another undefined.
  CHECK(r("{{ u is iterable }}{{ u is sequence }}{{ u is callable }}{{ u is string }}{{ u is number }}"
          "{{ u is mapping }}{{ u == u }}{{ u == 0 }}{{ [u] }}") ==
        "TrueTrueTrueFalseFalseFalseTrueFalse[Undefined]");
  CHECK(r("{% for x in [1, 2] %}{{ loop.previtem is defined }}{{ loop.nextitem is defined }};{% endfor %}") ==
        "FalseTrue;TrueFalse;");
}

TEST_CASE("Undefined values: using one as an object or number names it", "[chat]") {
  json user = {{"user", {{"name", "a"}}}, {"l", {1}}};
  CHECK(error_of("{{ missing.attr }}") == "chat template: 'missing' is undefined at line 1, column 11");
  CHECK_THAT(error_of("{{ user.nickname.first }}", user),
             Catch::Contains("'dict object' has no attribute 'nickname'") && Catch::Contains("column 17"));
  CHECK_THAT(error_of("{{ user['nickname']['x'] }}", user), Catch::Contains("'dict object' has no attribute 'nickname'"));
  CHECK_THAT(error_of("{{ l[3].x }}", user), Catch::Contains("list object has no element 3"));
  CHECK_THAT(error_of("{{ n.x.y }}", {{"n", nullptr}}), Catch::Contains("'None' has no attribute 'x'"));
  CHECK_THAT(error_of("{% if missing.attr is defined %}{% endif %}"), Catch::Contains("'missing' is undefined"));
  CHECK_THAT(error_of("{{ missing.strip() }}"), Catch::Contains("'missing' is undefined"));
  CHECK_THAT(error_of("{{ missing[0] }}"), Catch::Contains("'missing' is undefined"));
  CHECK_THAT(error_of("{{ missing[1:] }}"), Catch::Contains("'missing' is undefined"));
  CHECK_THAT(error_of("{{ missing() }}"), Catch::Contains("'missing' is undefined"));
  CHECK_THAT(error_of("{{ user.nick + 'x' }}", user), Catch::Contains("'dict object' has no attribute 'nick'"));
  CHECK_THAT(error_of("{{ 1 + missing }}"), Catch::Contains("'missing' is undefined"));
  CHECK_THAT(error_of("{{ -missing }}"), Catch::Contains("'missing' is undefined"));
  CHECK_THAT(error_of("{{ missing < 1 }}"), Catch::Contains("'missing' is undefined"));
  CHECK_THAT(error_of("{{ missing | int }}"), Catch::Contains("'missing' is undefined"));
  CHECK_THAT(error_of("{{ missing | tojson }}"), Catch::Contains("not JSON serializable"));
  CHECK_THAT(error_of("{{ [1] | map(attribute='a.b') | list }}"), Catch::Contains("'int object' has no attribute 'a'"));
  CHECK_THAT(error_of("{% for x in [1] %}{{ loop.previtem.name }}{% endfor %}"),
             Catch::Contains("there is no previous item"));
  CHECK_THAT(error_of("{{ ([] | first).name }}"), Catch::Contains("No first item, sequence was empty."));
  CHECK_THAT(error_of("{% macro m(a) %}{{ a.x }}{% endmacro %}{{ m() }}"),
             Catch::Contains("parameter 'a' was not provided"));
  CHECK_THAT(error_of("{% set ns = namespace() %}{{ ns.q.r }}"), Catch::Contains("'namespace object' has no attribute 'q'"));
  // none is not undefined: iterating it is an error in Jinja2 as well.
  CHECK_THAT(error_of("{% for x in n %}{% endfor %}", {{"n", nullptr}}), Catch::Contains("cannot iterate over none"));
}

TEST_CASE("Generators and Markup behave as Jinja2's", "[chat]") {
  auto r = [](const std::string& s, const json& ctx = json::object()) { return render_json(s, ctx); };
  json p = {{"p", {{{"name", "a"}, {"ok", true}}, {{"name", "b"}}}}, {"e", json::array()}, {"n", nullptr}};
  // select and map take a false value (none) as nothing, as they test `if value` first.
  CHECK(r("{{ n | selectattr('type', 'equalto', 'x') | list | length }}|{{ n | map(attribute='x') | list }}|"
          "{{ n | reject | list }}|{{ 0 | select | list }}", p) == "0|[]|[]|[]");
  // Their results are generators: always true, iterable, but with no length or JSON.
  CHECK(r("{% if e | selectattr('ok') %}gen{% endif %}|{% if e | selectattr('ok') | list %}list{% endif %}|"
          "{{ p | map(attribute='name') | join(',') }}|{{ p | map(attribute='name') | first }}|"
          "{{ 'b' in p | map(attribute='name') }}|{{ (p | map(attribute='name'))[0] is defined }}|"
          "{% for x in p | selectattr('name') %}{{ loop.index }}/{{ loop.length }}{% endfor %}", p) ==
        "gen||a,b|a|True|False|1/22/2");
  CHECK_THAT(error_of("{{ p | selectattr('ok') | length }}", p), Catch::Contains("has no len()"));
  CHECK_THAT(error_of("{{ p | map(attribute='name') | tojson }}", p), Catch::Contains("not JSON serializable"));
  // Markup (from `safe` or `escape`) + a plain string escapes the plain side; `~` does not.
  CHECK(r("{{ 'a'|safe + '<b>' }}|{{ '<b>' + 'a'|safe }}|{{ '<b>' ~ 'a'|safe }}|{{ ('<'|safe + '<') + '<' }}|"
          "{{ ('<'|e)|e }}|{{ '<'|safe|trim + '\"' }}|{{ ('a'|safe) * 2 + '&' }}|{{ '<' + '<' }}") ==
        "a&lt;b&gt;|&lt;b&gt;a|<b>a|<&lt;&lt;|&lt;|<&#34;|aa&amp;|<<");
}

TEST_CASE("render() passes tools and documents as none, as apply_chat_template does", "[chat]") {
  const std::string probe = "{{ tools is defined }} {{ tools is none }} {{ documents is none }}";
  CHECK(render(probe, {}, false) == "True True True");
  CHECK(render(probe, {}, false, "", "", {{"tools", json::array({1, 2})}}) == "True False True");
  CHECK(render_json(probe, json::object()) == "False False False");  // full control: nothing added
}

// ---------------------------------------------------------------- errors and limits

TEST_CASE("Errors name the construct and its position", "[chat]") {
  CHECK_THROWS_WITH(ChatTemplate::parse("{{ x | frobnicate }}"),
                    Catch::Contains("unknown filter 'frobnicate'") && Catch::Contains("line 1, column 6"));
  CHECK_THROWS_WITH(ChatTemplate::parse("{{ x is frob }}"), Catch::Contains("unknown test 'frob'"));
  CHECK_THROWS_WITH(ChatTemplate::parse("ab\n{{ x "), Catch::Contains("unterminated '{{'") && Catch::Contains("line 2"));
  CHECK_THROWS_WITH(ChatTemplate::parse("{% if x %}abc"), Catch::Contains("unterminated 'if' block"));
  CHECK_THROWS_WITH(ChatTemplate::parse("{# abc"), Catch::Contains("unterminated comment"));
  CHECK_THROWS_WITH(ChatTemplate::parse("{{ 'abc }}"), Catch::Contains("unterminated string"));
  CHECK_THROWS_WITH(ChatTemplate::parse("a\nb\n  {% include 'x' %}"),
                    Catch::Contains("unsupported construct 'include' at line 3, column 6"));
  CHECK_THROWS_WITH(ChatTemplate::parse("{% endfor %}"), Catch::Contains("unexpected 'endfor'"));
  CHECK_THROWS_WITH(ChatTemplate::parse("{% frob %}"), Catch::Contains("unknown tag 'frob'"));
  CHECK_THROWS_WITH(ChatTemplate::parse("{{ 1 + }}"), Catch::Contains("expected an expression"));
  CHECK(error_of("{{ raise_exception('bad turn order') }}").find("bad turn order") != std::string::npos);
  CHECK(error_of("{{ x + 1 }}").find("'x' is undefined") != std::string::npos);
  CHECK(error_of("{{ 1 // 0 }}").find("division by zero") != std::string::npos);
  CHECK(error_of("{{ nope() }}").find("'nope' is undefined") != std::string::npos);
  CHECK(error_of("{% set s = 'x' %}{% set s.a = 1 %}").find("namespace") != std::string::npos);
  CHECK(error_of("{{ 9223372036854775807 + 1 }}").find("overflow") != std::string::npos);
}

TEST_CASE("Hostile templates fail cleanly instead of crashing or hanging", "[chat]") {
  // Deep nesting: parsing is bounded well before the stack is.
  CHECK_THROWS_WITH(ChatTemplate::parse("{{ " + std::string(100000, '(') + "1" + std::string(100000, ')') + " }}"),
                    Catch::Contains("nesting too deep"));
  CHECK_THROWS_WITH(ChatTemplate::parse("{{ " + std::string(100000, '[') + " }}"), Catch::Contains("nesting too deep"));
  std::string ifs;
  for (int k = 0; k < 20000; ++k) ifs += "{% if true %}";
  CHECK_THROWS_WITH(ChatTemplate::parse(ifs), Catch::Contains("nesting too deep"));
  std::string nots = "{{ ";
  for (int k = 0; k < 100000; ++k) nots += "not ";
  CHECK_THROWS_WITH(ChatTemplate::parse(nots + "x }}"), Catch::Contains("nesting too deep"));
  // Moderate nesting still works.
  CHECK(render_json("{{ " + std::string(20, '(') + "1" + std::string(20, ')') + " }}", json::object()) == "1");
  // Unbounded recursion, loops and growth.
  CHECK(error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}").find("too deeply") != std::string::npos);
  CHECK(error_of("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}")
            .find("too many steps") != std::string::npos);
  CHECK(error_of("{{ range(1000000000) | length }}").find("range too large") != std::string::npos);
  CHECK(error_of("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}").find("too large") != std::string::npos);
  CHECK(error_of("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}")
            .find("too large") != std::string::npos);
  CHECK(error_of("{{ 'x' * 9223372036854775807 }}").find("too large") != std::string::npos);
  CHECK(error_of("{% set ns = namespace() %}{% set ns.me = [ns] %}").find("inside itself") != std::string::npos);
  CHECK(error_of("{% set a = namespace() %}{% set b = namespace(x=a) %}{% set a.y = {'k': b} %}")
            .find("inside itself") != std::string::npos);
  CHECK(error_of("{{ [1, 2][::0] }}").find("slice step") != std::string::npos);
}
