// Jinja template source (as a GGUF file's tokenizer.chat_template would hold it) x a fixed
// conversation: parse, then render with and without the generation prompt and with tools.
// The engine's limits (runtime/chat/jinja.h: depth, steps, string and list sizes) must
// turn every loop, recursion and blow-up into xent::Error; libFuzzer's -timeout and
// -rss_limit_mb catch one that does not.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "formats/error.h"
#include "fuzz-common.h"
#include "runtime/chat/chat-template.h"

namespace {

const std::vector<xent::ChatMessage> kConversation = {
    {"system", "You are terse."},
    {"user", "Hello, \"world\" <|im_end|> {{ not a template }}"},
    {"assistant", "Hi. \xe2\x96\x81 \xf0\x9f\x99\x82"},
    {"user", "List three numbers:\n1.\t"},
};

const nlohmann::json& extra() {
  static const nlohmann::json e = nlohmann::json::parse(R"({
    "tools": [{"type": "function", "function": {"name": "get_time", "description": "now",
               "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}}}],
    "date_string": "07 Dec 2026"})");
  return e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view source(reinterpret_cast<const char*>(data), size);
  std::unique_ptr<xent::ChatTemplate> t;
  try {
    t = xent::ChatTemplate::parse(source);
  } catch (const xent::Error&) {
    return 0;
  } catch (const std::exception& e) {
    xent::fuzz::unexpected_exception(e);
  }
  for (int k = 0; k < 2; ++k) {
    try {
      const std::string out = k == 0 ? t->render(kConversation, true, "<s>", "</s>")
                                     : t->render(kConversation, false, "<s>", "</s>", extra());
      if (out.size() > (64u << 20)) xent::fuzz::finding("output size", std::to_string(out.size()) + " bytes");
    } catch (const xent::Error&) {
    } catch (const std::exception& e) {
      xent::fuzz::unexpected_exception(e);
    }
  }
  return 0;
}
