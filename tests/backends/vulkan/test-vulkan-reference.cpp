// Reference logits through the Vulkan backend: shipped models x prompts against the peer's
// logits (tests/common/reference.h), as one batch and token by token, and a check that the
// scheduler really ran the model on Vulkan rather than falling back to the CPU.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common/reference.h"
#include "runtime/inference/context.h"
#include "runtime/inference/model.h"

namespace xent {
std::unique_ptr<Backend> create_vulkan_backend(int device, std::string* why);
}

using xent::test::check_reference;
using xent::test::reference_tolerance;
using xent::test::shared_path;

namespace {

bool have_vulkan() {
  static const bool have = [] {
    std::string why;
    const bool ok = xent::create_vulkan_backend(0, &why) != nullptr;
    if (!ok) std::printf("no Vulkan device: %s\n", why.c_str());
    return ok;
  }();
  return have;
}

#define REQUIRE_VULKAN()                                  \
  if (!have_vulkan()) {                                   \
    WARN("SKIPPED: no Vulkan device available");          \
    return;                                               \
  }

xent::ContextParams vulkan_params(int ubatch) {
  xent::ContextParams cp;
  cp.backends = {"vulkan"};
  cp.n_threads = 2;
  cp.n_ubatch = ubatch;
  return cp;
}

// Every node of a step must have run on the Vulkan backend (index 0; the CPU is last).
void check_placement(const std::string& name) {
  std::unique_ptr<xent::Model> model = xent::Model::load(shared_path("models/" + name + ".gguf"));
  xent::Context ctx(*model, vulkan_params(512));
  REQUIRE(ctx.backends().size() == 2);
  CHECK(ctx.backends()[0]->name().rfind("vulkan", 0) == 0);
  const std::vector<int32_t> tokens = {1, 100, 200, 300, 400};
  for (int step = 0; step < 2; ++step) {  // a batch, then one token through the cache
    ctx.decode(tokens.data(), step == 0 ? tokens.size() : 1);
    const std::vector<int>& placement = ctx.scheduler().placement();
    REQUIRE_FALSE(placement.empty());
    const size_t on_vulkan = static_cast<size_t>(std::count(placement.begin(), placement.end(), 0));
    INFO(name << " step " << step << ": " << on_vulkan << " of " << placement.size() << " nodes on Vulkan");
    CHECK(on_vulkan == placement.size());
    CHECK(ctx.scheduler().stats().n_splits == 1);
  }
}

void check_model(const std::string& name, const std::vector<const char*>& prompts) {
  const float tol = reference_tolerance(name);
  for (const char* prompt : prompts) {
    for (int ubatch : {512, 1}) {
      const auto r = check_reference(shared_path("models/" + name + ".gguf"), name, prompt, vulkan_params(ubatch), tol);
      std::printf("vulkan %-24s %-12s ubatch %3d: max |diff| %.4f (tol %.2f), top-1 %d/%d, greedy %d steps\n",
                  name.c_str(), prompt, ubatch, r.max_abs_diff, tol, r.top1_checked - r.top1_mismatch,
                  r.top1_checked, r.greedy_checked);
    }
  }
}

}  // namespace

TEST_CASE("vulkan runs whole models on the device", "[vulkan][model]") {
  REQUIRE_VULKAN();
  for (const char* name : {"tiny-llama-spm-q4_k_m", "tiny-qwen2-q8_0", "tiny-gpt2-q8_0"}) check_placement(name);
}

#define VULKAN_REFERENCE_CASE(NAME, ...)                                          \
  TEST_CASE("vulkan reference logits: " NAME, "[vulkan][model][reference]") {     \
    REQUIRE_VULKAN();                                                             \
    check_model(NAME, {__VA_ARGS__});                                             \
  }

VULKAN_REFERENCE_CASE("tiny-llama-spm-q8_0", "p1-clinical", "p4-unicode")
VULKAN_REFERENCE_CASE("tiny-llama-spm-q4_0", "p2-story")
VULKAN_REFERENCE_CASE("tiny-llama-spm-q4_k_m", "p3-note")
VULKAN_REFERENCE_CASE("tiny-llama-spm-q6_k", "p1-clinical")
VULKAN_REFERENCE_CASE("tiny-llama-spm-q2_k", "p2-story")
VULKAN_REFERENCE_CASE("tiny-llama-spm-f16", "p1-clinical")
VULKAN_REFERENCE_CASE("tiny-qwen2-q8_0", "p2-story")
VULKAN_REFERENCE_CASE("tiny-gpt2-q8_0", "p3-note")
VULKAN_REFERENCE_CASE("clinical-gpt2-q8_0", "p1-clinical")
