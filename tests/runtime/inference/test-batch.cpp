// Several sequences in one batch (Context::decode_batch) give, per sequence, the logits
// that sequence gives alone: prompts of different lengths together, then decode steps of
// one token per sequence, a shared prefix forked into another sequence, a sequence
// removed mid-way and its cells reused, and steps split by a small ubatch.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/run-xent.h"
#include "formats/error.h"
#include "runtime/inference/context.h"
#include "runtime/inference/model.h"

namespace {

std::string model_path(const char* name) { return std::string(XENT_SHARED_DIR) + "/models/" + name; }

// Gemma 2's shape with a 32-token window: the windows of batched sequences must count
// each sequence's own positions.
std::string windowed_model() {
  const std::string dir = std::string(XENT_BINARY_DIR) + "/test-batch";
  if (std::filesystem::exists(dir + "/tiny-gemma2-q8_0.gguf")) return dir + "/tiny-gemma2-q8_0.gguf";
  std::string err;
  const std::string path = xent::test::write_synthetic(dir, "tiny-gemma2", "Q8_0", model_path("tiny-llama-spm-f16.gguf"),
                                                       "tiny-gemma2-q8_0", &err);
  INFO(err);
  REQUIRE(!path.empty());
  return path;
}

using Logits = std::vector<float>;

float max_diff(const float* a, const float* b, int64_t n) {
  float d = 0;
  for (int64_t i = 0; i < n; ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

int32_t argmax(const float* l, int64_t n) { return static_cast<int32_t>(std::max_element(l, l + n) - l); }

// A sequence alone: the logits after each prompt token, then after each of `steps`
// greedy tokens (which it also returns).
struct Alone {
  std::vector<Logits> prompt, steps;
  std::vector<int32_t> greedy;
};

Alone run_alone(const xent::Model& m, const std::vector<int32_t>& prompt, int n_steps) {
  xent::ContextParams cp;
  cp.n_threads = 2;
  cp.n_ctx = 256;
  xent::Context ctx(m, cp);
  Alone a;
  const int64_t nv = ctx.n_vocab();
  ctx.decode(prompt.data(), prompt.size(), true);
  for (size_t i = 0; i < prompt.size(); ++i) a.prompt.emplace_back(ctx.logits_at(i), ctx.logits_at(i) + nv);
  int32_t tok = argmax(ctx.logits(), nv);
  for (int s = 0; s < n_steps; ++s) {
    a.greedy.push_back(tok);
    ctx.decode(&tok, 1);
    a.steps.emplace_back(ctx.logits(), ctx.logits() + nv);
    tok = argmax(ctx.logits(), nv);
  }
  return a;
}

std::vector<int32_t> prompt_of(int len, int32_t salt, int64_t n_vocab) {
  std::vector<int32_t> p;
  for (int i = 0; i < len; ++i) p.push_back(static_cast<int32_t>((salt * 131 + i * 37 + 11) % (n_vocab - 4) + 2));
  return p;
}

// The batched and lone logits agree to float rounding: the same kernels, with rows
// grouped differently in the matmuls.
constexpr float kTol = 2e-3f;

void check_model(const std::string& path, int n_ubatch) {
  INFO(path << ", ubatch " << n_ubatch);
  auto model = xent::Model::load(path);
  const int64_t nv = model->hparams().n_vocab;
  // Three prompts (p3 longer than Gemma 2's window), and a fourth that later takes the
  // cells of a removed sequence.
  const std::vector<std::vector<int32_t>> prompts = {prompt_of(9, 1, nv), prompt_of(3, 2, nv), prompt_of(41, 3, nv),
                                                     prompt_of(6, 4, nv)};
  const int n_steps = 6;
  std::vector<Alone> alone;
  for (const auto& p : prompts) alone.push_back(run_alone(*model, p, n_steps));

  xent::ContextParams cp;
  cp.n_threads = 2;
  cp.n_seq_max = 5;
  cp.n_ctx = 5 * 128;
  cp.n_ubatch = n_ubatch;
  xent::Context ctx(*model, cp);
  REQUIRE(ctx.n_ctx_per_seq() == 128);

  // The three prompts in one batch, interleaved, every logit kept.
  xent::Batch b;
  size_t longest = 0;
  for (const auto& p : prompts) longest = std::max(longest, p.size());
  for (size_t i = 0; i < longest; ++i)
    for (int s = 0; s < 3; ++s)
      if (i < prompts[s].size()) b.add(prompts[s][i], s, static_cast<int32_t>(i), true);
  ctx.decode_batch(b);
  float worst = 0;
  {
    std::vector<size_t> seen(3, 0);
    for (size_t i = 0; i < b.size(); ++i) {
      const int s = b.seq_ids[i];
      worst = std::max(worst, max_diff(ctx.logits_at(i), alone[s].prompt[seen[s]++].data(), nv));
    }
  }
  CHECK(worst < kTol);
  for (int s = 0; s < 3; ++s) CHECK(ctx.seq_n_past(s) == static_cast<int32_t>(prompts[s].size()));

  // Sequence 0's prompt forked into sequence 4: both continue alike.
  ctx.seq_copy(0, 4);
  CHECK(ctx.seq_n_past(4) == ctx.seq_n_past(0));

  // Decode steps, one token per live sequence. After step 2 sequence 1 is removed and
  // sequence 3's prompt takes over its cells (id 1), then decodes with the others.
  std::vector<int> live = {0, 1, 2, 4};
  std::vector<int> step_of(5, 0);
  std::vector<int> source = {0, 1, 2, 3, 0};  // which lone run each sequence id follows now
  for (int step = 0; step < n_steps; ++step) {
    if (step == 2) {
      ctx.seq_truncate(1, 0);
      CHECK(ctx.seq_n_past(1) == 0);
      source[1] = 3;
      step_of[1] = 0;
      xent::Batch pb;
      for (size_t i = 0; i < prompts[3].size(); ++i) pb.add(prompts[3][i], 1, static_cast<int32_t>(i), i + 1 == prompts[3].size());
      ctx.decode_batch(pb);
      CHECK(max_diff(ctx.logits_at(prompts[3].size() - 1), alone[3].prompt.back().data(), nv) < kTol);
    }
    xent::Batch sb;
    for (int s : live) sb.add(alone[source[s]].greedy[step_of[s]], s, ctx.seq_n_past(s), true);
    ctx.decode_batch(sb);
    for (size_t i = 0; i < sb.size(); ++i) {
      const int s = sb.seq_ids[i];
      INFO("step " << step << ", sequence " << s);
      CHECK(max_diff(ctx.logits_at(i), alone[source[s]].steps[step_of[s]].data(), nv) < kTol);
      ++step_of[s];
    }
    if (step == 3) live = {0, 1, 2};  // the fork stops mid-way; the others go on
  }
}

}  // namespace

TEST_CASE("decode_batch: each sequence gets the logits it gets alone", "[runtime][context][batch]") {
  for (const char* name : {"tiny-llama-bpe-q8_0.gguf", "tiny-gpt2-q8_0.gguf", "tiny-qwen2-q4_0.gguf"})
    check_model(model_path(name), 512);
}

TEST_CASE("decode_batch: steps split by a small ubatch, and a sliding window per sequence", "[runtime][context][batch]") {
  check_model(model_path("tiny-llama-bpe-q8_0.gguf"), 7);
  check_model(windowed_model(), 512);
  check_model(windowed_model(), 16);
}

TEST_CASE("decode_batch: bad batches are errors and leave the cache unchanged", "[runtime][context][batch]") {
  auto model = xent::Model::load(model_path("tiny-llama-bpe-q8_0.gguf"));
  xent::ContextParams cp;
  cp.n_threads = 2;
  cp.n_seq_max = 2;
  cp.n_ctx = 2 * 16;
  xent::Context ctx(*model, cp);
  xent::Batch ok;
  for (int i = 0; i < 4; ++i) ok.add(5 + i, 0, i, i == 3);
  ctx.decode_batch(ok);
  REQUIRE(ctx.seq_n_past(0) == 4);

  auto error_of = [&](const xent::Batch& b) -> std::string {
    try {
      ctx.decode_batch(b);
    } catch (const xent::Error& e) {
      return e.what();
    }
    return "";
  };
  xent::Batch gap;
  gap.add(5, 0, 6, true);  // sequence 0 continues at 4
  CHECK(error_of(gap).find("continues at 4") != std::string::npos);
  xent::Batch bad_seq;
  bad_seq.add(5, 2, 0, true);
  CHECK(error_of(bad_seq).find("sequence 2") != std::string::npos);
  xent::Batch bad_tok;
  bad_tok.add(5, 1, 0, false);
  bad_tok.add(-3, 1, 1, false);
  CHECK(error_of(bad_tok).find("outside the vocabulary") != std::string::npos);
  xent::Batch overflow;
  for (int i = 0; i < 13; ++i) overflow.add(7, 0, 4 + i, false);
  CHECK(error_of(overflow).find("exceed its 16 cells") != std::string::npos);
  CHECK(ctx.seq_n_past(0) == 4);
  CHECK(ctx.seq_n_past(1) == 0);
  CHECK_THROWS_AS(ctx.logits_at(0), xent::Error);  // not marked for logits
  CHECK_THROWS_AS(ctx.seq_copy(0, 5), xent::Error);

  // Too many sequences for the cells.
  cp.n_seq_max = 40;
  CHECK_THROWS_AS(xent::Context(*model, cp), xent::Error);
}
