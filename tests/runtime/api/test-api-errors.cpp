// Bad calls into the C API: NULL handles, wrong paths, short buffers, oversized contexts
// give a status (or NULL / a negative size) and a message, never a crash.
#include <catch2/catch.hpp>

#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "xent.h"

namespace {

const std::string kClinical = std::string(XENT_SHARED_DIR) + "/models/clinical-gpt2-q8_0.gguf";
const std::string kTmp = std::string(XENT_BINARY_DIR) + "/test-api-errors";

std::string last_error() { return xent_last_error(); }

struct Model {
  xent_model* m = xent_model_load(kClinical.c_str(), nullptr);
  ~Model() { xent_model_free(m); }
};

}  // namespace

TEST_CASE("NULL handles give a status and a message", "[api]") {
  char buf[64];
  xent_token tok = 1;

  CHECK(xent_model_load(nullptr, nullptr) == nullptr);
  CHECK_FALSE(last_error().empty());
  CHECK(xent_context_create(nullptr, nullptr) == nullptr);
  CHECK(last_error().find("model") != std::string::npos);
  CHECK(xent_tokenize(nullptr, "a", 1, &tok, 1, true, true) == INT32_MIN);
  CHECK_FALSE(last_error().empty());
  CHECK(xent_token_to_piece(nullptr, 1, buf, sizeof buf, false) == INT32_MIN);
  CHECK_FALSE(last_error().empty());
  CHECK(xent_detokenize(nullptr, &tok, 1, buf, sizeof buf, false) == INT32_MIN);
  CHECK_FALSE(last_error().empty());
  CHECK(xent_model_meta(nullptr, "general.architecture", buf, sizeof buf) < 0);
  CHECK_FALSE(last_error().empty());
  CHECK(xent_decode(nullptr, &tok, 1, false) == XENT_ERROR_INVALID_ARGUMENT);
  CHECK_FALSE(last_error().empty());
  CHECK(xent_get_logits(nullptr) == nullptr);
  CHECK(xent_get_logits_ith(nullptr, 0) == nullptr);
  CHECK(xent_sampler_sample(nullptr, nullptr) == -1);
  CHECK(xent_generate(nullptr, nullptr, "x", 4, nullptr, nullptr, nullptr) == XENT_ERROR_INVALID_ARGUMENT);
  CHECK(xent_context_truncate(nullptr, 0) == XENT_ERROR_INVALID_ARGUMENT);
  CHECK(xent_state_save(nullptr, "x", nullptr, 0) == XENT_ERROR_INVALID_ARGUMENT);
  size_t app_bytes = 0;
  CHECK(xent_state_load(nullptr, "x", nullptr, 0, &app_bytes) == XENT_ERROR_INVALID_ARGUMENT);
  CHECK(xent_chat_apply_template(nullptr, nullptr, nullptr, 0, true, buf, sizeof buf) < 0);
  CHECK_FALSE(last_error().empty());

  // Accessors answer neutrally; frees accept NULL.
  CHECK(std::string(xent_model_architecture(nullptr)).empty());
  CHECK(xent_model_n_vocab(nullptr) == 0);
  CHECK(xent_model_n_ctx_train(nullptr) == 0);
  CHECK(xent_token_bos(nullptr) == -1);
  CHECK_FALSE(xent_token_is_eog(nullptr, 0));
  CHECK(xent_context_n_ctx(nullptr) == 0);
  CHECK(std::string(xent_context_backends(nullptr)).empty());
  xent_sampler_accept(nullptr, 1);
  xent_sampler_reset(nullptr);
  xent_model_free(nullptr);
  xent_context_free(nullptr);
  xent_sampler_free(nullptr);

  // Every status has its own name, and an unknown value does not crash.
  std::set<std::string> names;
  for (int s = XENT_OK; s <= XENT_ERROR_INTERNAL; ++s) names.insert(xent_status_string(static_cast<xent_status>(s)));
  CHECK(names.size() == static_cast<size_t>(XENT_ERROR_INTERNAL) + 1);
  CHECK(xent_status_string(static_cast<xent_status>(99)) != nullptr);
}

TEST_CASE("a wrong model path is refused with a message that names it", "[api]") {
  std::filesystem::create_directories(kTmp);
  SECTION("missing") {
    const std::string path = kTmp + "/no-such-model.gguf";
    CHECK(xent_model_load(path.c_str(), nullptr) == nullptr);
    CHECK(last_error().find("no-such-model.gguf") != std::string::npos);
  }
  SECTION("a directory") {
    CHECK(xent_model_load(kTmp.c_str(), nullptr) == nullptr);
    CHECK_FALSE(last_error().empty());
  }
  SECTION("not a GGUF file, mapped and read") {
    const std::string path = kTmp + "/garbage.gguf";
    std::ofstream(path, std::ios::binary) << std::string(4096, 'x');
    for (bool mmap : {true, false}) {
      xent_model_params p = xent_model_default_params();
      p.use_mmap = mmap;
      CHECK(xent_model_load(path.c_str(), &p) == nullptr);
      CHECK_FALSE(last_error().empty());
    }
  }
  SECTION("an empty file") {
    const std::string path = kTmp + "/empty.gguf";
    std::ofstream(path, std::ios::binary).flush();
    CHECK(xent_model_load(path.c_str(), nullptr) == nullptr);
    CHECK_FALSE(last_error().empty());
  }
}

TEST_CASE("short buffers return the size needed and leave the buffer alone", "[api][model]") {
  Model model;
  INFO(last_error());
  REQUIRE(model.m);
  const xent_model* m = model.m;
  const std::string text = "MEDICATIONS: metformin 500 mg twice daily";
  const int32_t len = static_cast<int32_t>(text.size());

  SECTION("xent_tokenize") {
    const int32_t need = xent_tokenize(m, text.data(), len, nullptr, 0, true, true);
    REQUIRE(need < 0);
    CHECK_FALSE(last_error().empty());
    const int32_t n = -need;
    std::vector<xent_token> ids(static_cast<size_t>(n), -123);
    CHECK(xent_tokenize(m, text.data(), len, ids.data(), n - 1, true, true) == need);
    CHECK(ids == std::vector<xent_token>(static_cast<size_t>(n), -123));  // nothing written
    REQUIRE(xent_tokenize(m, text.data(), len, ids.data(), n, true, true) == n);
    CHECK(last_error().empty());
    // The tokens are real: they decode back to the text (GPT-2 BPE is lossless).
    std::vector<char> out(text.size() + 1);
    CHECK(xent_detokenize(m, ids.data(), n, out.data(), static_cast<int32_t>(out.size()), false) == len);
    CHECK(std::string(out.data()) == text);
  }

  SECTION("xent_token_to_piece") {
    xent_token ids[64];
    const int32_t n = xent_tokenize(m, " metformin", 10, ids, 64, false, false);
    REQUIRE(n > 0);
    char big[256];
    const int32_t piece_len = xent_token_to_piece(m, ids[0], big, sizeof big, false);
    REQUIRE(piece_len >= 2);
    char small[256];
    std::memset(small, '#', sizeof small);
    CHECK(xent_token_to_piece(m, ids[0], small, 0, false) == -piece_len);
    CHECK(xent_token_to_piece(m, ids[0], small, piece_len - 1, false) == -piece_len);
    CHECK_FALSE(last_error().empty());
    CHECK(std::string(small, 4) == "####");
    CHECK(xent_token_to_piece(m, ids[0], small, piece_len, false) == piece_len);
    CHECK(std::string(small, static_cast<size_t>(piece_len)) == std::string(big, static_cast<size_t>(piece_len)));
    // Invalid ids are refused, not read out of bounds.
    CHECK(xent_token_to_piece(m, xent_model_n_vocab(m), big, sizeof big, false) == INT32_MIN);
    CHECK(xent_token_to_piece(m, -1, big, sizeof big, false) == INT32_MIN);
    CHECK_FALSE(last_error().empty());
  }

  SECTION("xent_detokenize counts the NUL") {
    xent_token ids[64];
    const int32_t n = xent_tokenize(m, text.data(), len, ids, 64, false, false);
    REQUIRE(n > 0);
    std::vector<char> out(text.size() + 1, '#');
    CHECK(xent_detokenize(m, ids, n, out.data(), len, false) == -(len + 1));  // no room for the NUL
    CHECK(out[0] == '#');
    CHECK(xent_detokenize(m, ids, n, out.data(), len + 1, false) == len);
    CHECK(out[static_cast<size_t>(len)] == '\0');
    const xent_token bad[2] = {ids[0], 1 << 30};
    CHECK(xent_detokenize(m, bad, 2, out.data(), len + 1, false) == INT32_MIN);
    CHECK_FALSE(last_error().empty());
  }

  SECTION("snprintf-style strings") {
    char buf[3];
    CHECK(xent_model_meta(m, "general.architecture", buf, sizeof buf) == 4);  // "gpt2"
    CHECK(std::string(buf) == "gp");
    CHECK(xent_model_meta(m, "no.such.key", buf, sizeof buf) < 0);
    CHECK(last_error().find("no.such.key") != std::string::npos);
    const size_t n = xent_backends(buf, sizeof buf);
    CHECK(n >= 3);  // "cpu" at least
    CHECK(std::strlen(buf) == 2);
  }
}

TEST_CASE("a context the model cannot hold is refused, overflowing one is a status", "[api][model]") {
  Model model;
  REQUIRE(model.m);
  const int32_t n_train = xent_model_n_ctx_train(model.m);
  REQUIRE(n_train == 256);  // GPT-2 learned positions: the hard limit of this model

  xent_context_params cp = xent_context_default_params();
  cp.n_ctx = n_train + 1;
  CHECK(xent_context_create(model.m, &cp) == nullptr);
  CHECK(last_error().find(std::to_string(n_train)) != std::string::npos);
  cp.n_ctx = -5;
  CHECK(xent_context_create(model.m, &cp) == nullptr);
  CHECK_FALSE(last_error().empty());
  cp.n_threads = -1;
  cp.n_ctx = 0;
  CHECK(xent_context_create(model.m, &cp) == nullptr);
  CHECK_FALSE(last_error().empty());

  cp = xent_context_default_params();
  cp.n_ctx = 32;
  xent_context* ctx = xent_context_create(model.m, &cp);
  INFO(last_error());
  REQUIRE(ctx);
  CHECK(xent_context_n_ctx(ctx) == 32);

  // Nothing evaluated yet: no logits to read or sample.
  CHECK(xent_get_logits(ctx) == nullptr);
  CHECK_FALSE(last_error().empty());
  xent_sampler* s = xent_sampler_create(nullptr);
  REQUIRE(s);
  CHECK(xent_sampler_sample(s, ctx) == -1);
  CHECK_FALSE(last_error().empty());

  std::vector<xent_token> many(40, 11);
  CHECK(xent_decode(ctx, many.data(), 40, false) == XENT_ERROR_CONTEXT_FULL);
  CHECK_FALSE(last_error().empty());
  CHECK(xent_context_n_past(ctx) == 0);
  const xent_token outside = xent_model_n_vocab(model.m);
  CHECK(xent_decode(ctx, &outside, 1, false) == XENT_ERROR_INVALID_ARGUMENT);
  CHECK(last_error().find(std::to_string(outside)) != std::string::npos);
  CHECK(xent_decode(ctx, many.data(), 0, false) == XENT_ERROR_INVALID_ARGUMENT);
  CHECK(xent_context_truncate(ctx, -1) == XENT_ERROR_INVALID_ARGUMENT);

  // Still usable after the refusals.
  REQUIRE(xent_decode(ctx, many.data(), 10, true) == XENT_OK);
  CHECK(xent_context_n_past(ctx) == 10);
  CHECK(xent_get_logits(ctx) != nullptr);
  CHECK(xent_get_logits_ith(ctx, 9) != nullptr);
  CHECK(xent_get_logits_ith(ctx, 10) == nullptr);
  CHECK(xent_decode(ctx, many.data(), 23, false) == XENT_ERROR_CONTEXT_FULL);  // 10 + 23 > 32
  CHECK(xent_context_n_past(ctx) == 10);
  std::string long_prompt;
  for (int i = 0; i < 40; ++i) long_prompt += " metformin";
  CHECK(xent_generate(ctx, s, long_prompt.c_str(), 4, nullptr, nullptr, nullptr) == XENT_ERROR_CONTEXT_FULL);
  CHECK(last_error().find("32") != std::string::npos);

  // Session files that are missing or not session files.
  std::filesystem::create_directories(kTmp);
  size_t app_bytes = 0;
  CHECK(xent_state_load(ctx, (kTmp + "/missing.session").c_str(), nullptr, 0, &app_bytes) == XENT_ERROR_IO);
  const std::string junk = kTmp + "/junk.session";
  std::ofstream(junk, std::ios::binary) << std::string(100, 'j');
  CHECK(xent_state_load(ctx, junk.c_str(), nullptr, 0, &app_bytes) == XENT_ERROR_INVALID_FILE);
  CHECK(last_error().find("junk.session") != std::string::npos);

  xent_sampler_params sp = xent_sampler_default_params();
  sp.repeat_penalty = 0.0f;
  CHECK(xent_sampler_create(&sp) == nullptr);
  CHECK(last_error().find("repeat_penalty") != std::string::npos);

  xent_sampler_free(s);
  xent_context_free(ctx);
}
