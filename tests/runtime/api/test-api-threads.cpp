// The C API's thread-safety promises: two contexts on one model, run from two threads at
// once, give the tokens of single-threaded runs; error messages stay per thread.
#include <catch2/catch.hpp>

#include <climits>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "xent.h"

namespace {

const std::string kClinical = std::string(XENT_SHARED_DIR) + "/models/clinical-gpt2-q8_0.gguf";
const char* const kPrompts[2] = {"MEDICATIONS: metformin 500 mg twice", "VITAL SIGNS: blood pressure 128/"};
constexpr int kTokens = 32;

struct Run {
  std::vector<xent_token> tokens;
  std::vector<xent_token> prompt_tokens;  // tokenized on the same thread, concurrently
  xent_status status = XENT_ERROR_INTERNAL;
  std::string error;
};

bool collect(xent_token token, const char*, int32_t, void* user_data) {
  static_cast<std::vector<xent_token>*>(user_data)->push_back(token);
  return true;
}

// Creates its own context and sampler, generates greedily, frees them. No Catch2
// assertions in here: they are not thread-safe.
Run generate(const xent_model* model, const char* prompt, int32_t n_threads) {
  Run r;
  std::vector<xent_token> ids(256);
  const int32_t n = xent_tokenize(model, prompt, static_cast<int32_t>(std::strlen(prompt)), ids.data(),
                                  static_cast<int32_t>(ids.size()), true, true);
  if (n > 0) r.prompt_tokens.assign(ids.begin(), ids.begin() + n);
  xent_context_params cp = xent_context_default_params();
  cp.n_threads = n_threads;
  xent_context* ctx = xent_context_create(model, &cp);
  xent_sampler_params sp = xent_sampler_default_params();
  sp.temperature = 0.0f;
  xent_sampler* s = xent_sampler_create(&sp);
  if (ctx && s) {
    r.status = xent_generate(ctx, s, prompt, kTokens, collect, &r.tokens, nullptr);
    if (r.status != XENT_OK) r.error = xent_last_error();
  } else {
    r.error = xent_last_error();
  }
  xent_sampler_free(s);
  xent_context_free(ctx);
  return r;
}

}  // namespace

TEST_CASE("two contexts on one model on two threads give the single-threaded tokens", "[api][model]") {
  xent_model* model = xent_model_load(kClinical.c_str(), nullptr);
  INFO(xent_last_error());
  REQUIRE(model);

  for (int32_t n_threads : {1, 0}) {  // one CPU thread per context, then all of them each
    INFO("n_threads per context: " << n_threads);
    Run expected[2];
    for (int i = 0; i < 2; ++i) {
      expected[i] = generate(model, kPrompts[i], n_threads);
      INFO(expected[i].error);
      REQUIRE(expected[i].status == XENT_OK);
      REQUIRE(expected[i].tokens.size() == static_cast<size_t>(kTokens));
    }
    REQUIRE(expected[0].tokens != expected[1].tokens);  // the two runs really differ

    for (int round = 0; round < 3; ++round) {
      Run got[2];
      std::thread a([&] { got[0] = generate(model, kPrompts[0], n_threads); });
      std::thread b([&] { got[1] = generate(model, kPrompts[1], n_threads); });
      a.join();
      b.join();
      for (int i = 0; i < 2; ++i) {
        INFO("round " << round << ", thread " << i << ": " << got[i].error);
        REQUIRE(got[i].status == XENT_OK);
        CHECK(got[i].prompt_tokens == expected[i].prompt_tokens);
        CHECK(got[i].tokens == expected[i].tokens);
      }
    }
  }
  xent_model_free(model);
}

TEST_CASE("xent_last_error belongs to the calling thread", "[api][model]") {
  xent_model* model = xent_model_load(kClinical.c_str(), nullptr);
  REQUIRE(model);
  char buf[16];
  REQUIRE(xent_token_to_piece(model, 0, buf, sizeof buf, false) >= 0);  // success clears it
  REQUIRE(std::string(xent_last_error()).empty());

  std::string seen[2];
  const xent_token bad[2] = {-7, 1000007};
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < 200; ++k) {
        if (xent_token_to_piece(model, bad[i], buf + 0, 0, false) != INT32_MIN) {
          seen[i] = "no error";
          return;
        }
        seen[i] = xent_last_error();
        if (seen[i].find(std::to_string(bad[i])) == std::string::npos) return;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(seen[0].find("-7") != std::string::npos);
  CHECK(seen[1].find("1000007") != std::string::npos);
  CHECK(std::string(xent_last_error()).empty());  // the main thread saw neither failure
  xent_model_free(model);
}
