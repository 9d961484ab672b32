// The adapters part of the C API: load, attach with a scale, change the scale, detach and
// free on a live context without reloading the model; the cache is cleared when the weights
// change; bad calls give a status and a message.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "common/run-xent.h"
#include "xent.h"

namespace {

const std::string kBase = std::string(XENT_SHARED_DIR) + "/models/tiny-llama-spm-f32.gguf";
const std::string kDir = std::string(XENT_BINARY_DIR) + "/lora-tests";

std::string adapter(const std::string& name, const std::string& args) {
  const std::string path = kDir + "/" + name + ".gguf";
  const auto r = xent::test::run_xent(kDir, "bench --synthetic-lora " + args + " --base " + kBase + " -o " + path);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return path;
}

const std::vector<xent_token> kPrompt = {1, 450, 4045, 282, 1025, 3261, 310, 2114};

std::vector<float> last_logits(xent_context* ctx, const xent_model* m) {
  REQUIRE(xent_context_truncate(ctx, 0) == XENT_OK);
  REQUIRE(xent_decode(ctx, kPrompt.data(), static_cast<int32_t>(kPrompt.size()), false) == XENT_OK);
  const float* l = xent_get_logits(ctx);
  return std::vector<float>(l, l + xent_model_n_vocab(m));
}

float max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

}  // namespace

TEST_CASE("C API: attach, rescale, detach and free a LoRA adapter on a live context", "[api][lora]") {
  const std::string path = adapter("llama-r8-f32", "8 --type F32");
  xent_model* m = xent_model_load(kBase.c_str(), nullptr);
  REQUIRE(m);
  xent_context_params cp = xent_context_default_params();
  cp.n_ctx = 64;
  cp.n_threads = 2;
  xent_context* ctx = xent_context_create(m, &cp);
  REQUIRE(ctx);
  const std::vector<float> base = last_logits(ctx, m);

  xent_lora* lora = xent_lora_load(m, path.c_str());
  REQUIRE(lora);
  CHECK(xent_lora_n_targets(lora) == 29);
  CHECK(xent_lora_alpha(lora) == 16.0f);
  REQUIRE(xent_context_lora_attach(ctx, lora, 1.0f) == XENT_OK);
  CHECK(xent_context_lora_count(ctx) == 1);
  CHECK(xent_context_n_past(ctx) == 0);  // the cache was computed without it
  const std::vector<float> one = last_logits(ctx, m);
  CHECK(max_diff(one, base) > 0.5f);

  // A new scale replaces the old one (no second copy); scale 0 is the base exactly.
  REQUIRE(xent_context_lora_attach(ctx, lora, 0.0f) == XENT_OK);
  CHECK(xent_context_lora_count(ctx) == 1);
  CHECK(max_diff(last_logits(ctx, m), base) == 0.0f);
  REQUIRE(xent_context_lora_attach(ctx, lora, 1.0f) == XENT_OK);
  CHECK(max_diff(last_logits(ctx, m), one) == 0.0f);

  // Freeing the handle leaves the attached adapter working; detaching needs the handle, so
  // clear() removes it.
  xent_lora* again = xent_lora_load(m, path.c_str());
  REQUIRE(again);
  CHECK(xent_context_lora_detach(ctx, again) == XENT_ERROR_INVALID_ARGUMENT);  // another load is another adapter
  CHECK(std::string(xent_last_error()).find("not attached") != std::string::npos);
  xent_lora_free(again);
  REQUIRE(xent_context_lora_detach(ctx, lora) == XENT_OK);
  CHECK(xent_context_lora_count(ctx) == 0);
  CHECK(max_diff(last_logits(ctx, m), base) == 0.0f);
  REQUIRE(xent_context_lora_attach(ctx, lora, 1.0f) == XENT_OK);
  xent_lora_free(lora);
  CHECK(max_diff(last_logits(ctx, m), one) == 0.0f);
  REQUIRE(xent_context_lora_clear(ctx) == XENT_OK);
  CHECK(max_diff(last_logits(ctx, m), base) == 0.0f);

  xent_context_free(ctx);
  xent_model_free(m);
}

TEST_CASE("C API: bad LoRA calls give a status and a message", "[api][lora]") {
  const std::string path = adapter("llama-r8-f32", "8 --type F32");
  CHECK(xent_lora_load(nullptr, path.c_str()) == nullptr);
  CHECK(std::string(xent_last_error()).find("NULL") != std::string::npos);
  xent_model* m = xent_model_load(kBase.c_str(), nullptr);
  REQUIRE(m);
  CHECK(xent_lora_load(m, (kDir + "/absent.gguf").c_str()) == nullptr);
  CHECK_FALSE(std::string(xent_last_error()).empty());
  // A model file is not an adapter.
  CHECK(xent_lora_load(m, kBase.c_str()) == nullptr);
  CHECK(std::string(xent_last_error()).find("general.type") != std::string::npos);
  // An adapter loaded for one model cannot go on another model's context.
  xent_model* other = xent_model_load(kBase.c_str(), nullptr);
  xent_context* ctx = xent_context_create(other, nullptr);
  xent_lora* lora = xent_lora_load(m, path.c_str());
  REQUIRE(lora);
  CHECK(xent_context_lora_attach(ctx, lora, 1.0f) == XENT_ERROR_INVALID_ARGUMENT);
  CHECK(std::string(xent_last_error()).find("another model") != std::string::npos);
  CHECK(xent_context_lora_attach(ctx, nullptr, 1.0f) == XENT_ERROR_INVALID_ARGUMENT);
  CHECK(xent_context_lora_attach(ctx, lora, NAN) == XENT_ERROR_INVALID_ARGUMENT);
  CHECK(xent_context_lora_count(nullptr) == 0);
  xent_lora_free(lora);
  xent_lora_free(nullptr);
  xent_context_free(ctx);
  xent_model_free(other);
  xent_model_free(m);
}
