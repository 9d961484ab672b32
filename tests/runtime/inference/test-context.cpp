// A context keeps the last step's graph and plan: decode steps of the same shape reuse
// them (only n_past and the inputs change) and allocate nothing, and the logits are
// bit-for-bit those of a context that builds and plans every step afresh.
#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "runtime/inference/context.h"
#include "runtime/inference/model.h"

namespace {

// Every C++ heap allocation of this test binary is counted.
std::atomic<size_t> g_allocations{0};

std::string model_path(const char* name) { return std::string(XENT_SHARED_DIR) + "/models/" + name; }

// Prompt, eight single-token steps, a three-token tree, and single tokens again: the
// logits of every step, in order.
std::vector<float> run_steps(xent::Context& ctx) {
  std::vector<float> all;
  const int64_t n_vocab = ctx.n_vocab();
  auto keep = [&](const float* l) { all.insert(all.end(), l, l + n_vocab); };
  const int32_t prompt[] = {1, 5, 9, 14, 22, 7};
  ctx.decode(prompt, 6);
  keep(ctx.logits());
  for (int32_t t = 0; t < 8; ++t) {
    const int32_t tok = 30 + t * 3;
    ctx.decode(&tok, 1);
    keep(ctx.logits());
  }
  const int32_t tree[] = {11, 12, 13};
  const int32_t pos[] = {ctx.n_past(), ctx.n_past() + 1, ctx.n_past() + 1};
  const float inf = -INFINITY;
  const float mask[] = {0, inf, inf, 0, 0, inf, 0, inf, 0};
  const int32_t before_tree = ctx.n_past();
  ctx.decode_tree(tree, pos, mask, 3);
  for (size_t i = 0; i < 3; ++i) keep(ctx.logits_at(i));
  ctx.truncate(before_tree);
  for (int32_t t = 0; t < 4; ++t) {
    const int32_t tok = 60 + t;
    ctx.decode(&tok, 1);
    keep(ctx.logits());
  }
  return all;
}

}  // namespace

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

TEST_CASE("reused graphs give the logits of graphs built every step", "[runtime][context]") {
  for (const char* name : {"tiny-llama-spm-q8_0.gguf", "tiny-gpt2-q8_0.gguf", "tiny-qwen2-q4_0.gguf"}) {
    INFO(name);
    auto model = xent::Model::load(model_path(name));
    xent::ContextParams cp;
    cp.n_threads = 2;
    cp.n_ctx = 64;
    xent::Context reusing(*model, cp);
    cp.reuse_graph = false;
    xent::Context fresh(*model, cp);

    const std::vector<float> a = run_steps(reusing);
    const std::vector<float> b = run_steps(fresh);
    REQUIRE(a.size() == b.size());
    CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
    // Plans: the prompt, the first single token, the tree, the first single token after it.
    CHECK(reusing.scheduler().n_plans() == 4);
    CHECK(fresh.scheduler().n_plans() == 1 + 8 + 1 + 4);
    CHECK(reusing.scheduler().stats().reused_plan);
  }
}

TEST_CASE("a decode step of a reused graph allocates nothing", "[runtime][context]") {
  auto model = xent::Model::load(model_path("tiny-llama-spm-q4_0.gguf"));
  for (int threads : {1, 2}) {
    INFO(threads << " threads");
    xent::ContextParams cp;
    cp.n_threads = threads;
    cp.n_ctx = 64;
    xent::Context ctx(*model, cp);
    const int32_t prompt[] = {1, 5, 9};
    ctx.decode(prompt, 3);
    int32_t tok = 40;
    ctx.decode(&tok, 1);  // builds and plans the single-token graph
    const size_t before = g_allocations.load();
    for (int i = 0; i < 16; ++i) {
      tok = 41 + i;
      ctx.decode(&tok, 1);
    }
    const size_t during = g_allocations.load() - before;
    CHECK(during == 0);
    CHECK(ctx.scheduler().stats().reused_plan);
  }
}

TEST_CASE("a --backend list splits at commas, and an empty one means the CPU", "[runtime][context]") {
  using V = std::vector<std::string>;
  CHECK(xent::parse_backend_list("vulkan,cpu") == V{"vulkan", "cpu"});
  CHECK(xent::parse_backend_list(" cuda , vulkan,,cpu ") == V{"cuda", "vulkan", "cpu"});
  CHECK(xent::parse_backend_list("vulkan") == V{"vulkan"});
  CHECK(xent::parse_backend_list("") == V{"cpu"});
  CHECK(xent::parse_backend_list(",") == V{"cpu"});
}
