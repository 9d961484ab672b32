// A request body, as `xent serve` receives it, through the server's own request parsers
// (apps/serve-openai.cpp): /v1/completions, /v1/chat/completions and /v1/autocomplete on
// the tiny Llama (ChatML template) and the tiny GPT-2 (no template: the chatml fallback).
// A bad body must end in ApiError (a 4xx with an OpenAI-shaped body); any other exception
// would be a 500 or worse and is a finding, as are crashes and sanitizer reports.
#include <cstdint>
#include <string>

#include "fuzz-common.h"
#include "serve.h"
#include "xent.h"

using namespace xent::app::serve;

namespace {

struct Server {
  xent_model* model = nullptr;
  ServerInfo info;
};
Server g_servers[2];

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  xent_set_log_callback([](xent_log_level, const char*, void*) {}, nullptr);
  const char* files[2] = {"models/tiny-llama-bpe-q8_0.gguf", "models/tiny-gpt2-q8_0.gguf"};
  for (int k = 0; k < 2; ++k) {
    Server& s = g_servers[k];
    s.model = xent_model_load(xent::fuzz::shared_path(files[k]).c_str(), nullptr);
    if (s.model == nullptr) xent::fuzz::finding("setup", xent_last_error());
    s.info.model = s.model;
    s.info.model_id = k == 0 ? "tiny-llama-bpe-q8_0" : "tiny-gpt2-q8_0";
    s.info.n_ctx = 256;
    s.info.max_tokens_limit = 2048;
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Server& s = g_servers[data[0] & 1];
  // serve.cpp's body_object: anything but a JSON object is a 400 before the parsers run.
  const json body = json::parse(data + 1, data + size, nullptr, false);
  if (body.is_discarded() || !body.is_object()) return 0;
  for (int endpoint = 0; endpoint < 3; ++endpoint) {
    try {
      if (endpoint == 0) (void)parse_completion_request(body, s.info);
      if (endpoint == 1) (void)parse_chat_request(body, s.info);
      if (endpoint == 2) (void)parse_autocomplete_request(body);
    } catch (const ApiError& e) {
      if (e.status < 400 || e.status > 599) xent::fuzz::finding("status", std::to_string(e.status));
      (void)error_body(e.what(), e.type, e.code).dump();
    } catch (const std::exception& e) {
      xent::fuzz::unexpected_exception(e);
    }
  }
  return 0;
}
