// LoRA adapters against the peer: llama.cpp c392e5094's logits with llama_set_adapter_lora on
// shared base models, committed in tests/models/reference/lora/ (scripts/peer/
// make-lora-references.sh). The adapters are not committed: the test writes them again with
// `xent bench --synthetic-lora` (seeded, the same bytes the peer read).
#include <catch2/catch.hpp>

#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/reference.h"
#include "common/run-xent.h"

using xent::test::check_reference_at;
using xent::test::reference_tolerance;
using xent::test::shared_path;

namespace {

const char* const kPrompts[] = {"p1-clinical", "p2-story", "p3-note", "p4-unicode"};
const std::string kDir = std::string(XENT_BINARY_DIR) + "/lora-tests";

// The adapter make-lora-references.sh wrote with these arguments.
std::string adapter(const std::string& base, const std::string& name, const std::string& args) {
  const std::string path = kDir + "/" + name + ".gguf";
  const auto r = xent::test::run_xent(kDir, "bench --synthetic-lora " + args + " --base " + shared_path("models/" + base + ".gguf") + " -o " + path);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return path;
}

std::string ref_path(const std::string& name, const std::string& prompt) {
  return std::string(XENT_SOURCE_DIR) + "/tests/models/reference/lora/" + name + "--" + prompt + ".json";
}

// How far the base model without adapters is from a reference: the adapters must matter.
float base_distance(const std::string& base, const std::string& name) {
  auto model = xent::Model::load(shared_path("models/" + base + ".gguf"));
  const nlohmann::json ref = nlohmann::json::parse(xent::test::read_text(ref_path(name, "p1-clinical")));
  const auto tokens = ref["tokens"].get<std::vector<int32_t>>();
  xent::ContextParams cp;
  cp.n_threads = 2;
  xent::Context ctx(*model, cp);
  ctx.decode(tokens.data(), tokens.size(), true);
  float d = 0;
  for (size_t pos = 0; pos < tokens.size(); ++pos)
    for (const auto& pair : ref["teacher_forced"][pos])
      d = std::max(d, std::fabs(ctx.logits_at(pos)[pair[0].get<int32_t>()] - pair[1].get<float>()));
  return d;
}

void check(const std::string& base, const std::string& name, const std::vector<std::pair<std::string, float>>& loras) {
  const float tol = reference_tolerance(base);
  const float apart = base_distance(base, name);
  INFO("the base model alone is " << apart << " from the reference");
  CHECK(apart > 10 * tol);
  for (const char* prompt : kPrompts) {
    for (int ubatch : {512, 1}) {
      xent::ContextParams cp;
      cp.n_threads = 2;
      cp.n_ubatch = ubatch;
      const auto r = check_reference_at(shared_path("models/" + base + ".gguf"), ref_path(name, prompt), prompt, cp, tol, loras);
      std::printf("%-40s %-12s ubatch %3d: max |diff| %.4f (tol %.2f), top-1 %d/%d, greedy %d steps\n", name.c_str(),
                  prompt, ubatch, r.max_abs_diff, tol, r.top1_checked - r.top1_mismatch, r.top1_checked,
                  r.greedy_checked);
      CHECK(r.top1_checked > 0);
    }
  }
}

}  // namespace

TEST_CASE("LoRA vs the peer: Llama F16, rank-8 F16 adapter on every block weight and the output", "[model][reference][lora]") {
  check("tiny-llama-spm-f16", "tiny-llama-spm-f16+lora-r8", {{adapter("tiny-llama-spm-f16", "llama-r8", "8 --type F16"), 1.0f}});
}

TEST_CASE("LoRA vs the peer: Llama F16, two adapters (one on the token embedding), scales 0.5 and -1.5",
          "[model][reference][lora]") {
  const std::string a1 = adapter("tiny-llama-spm-f16", "llama-r8", "8 --type F16");
  const std::string a2 = adapter("tiny-llama-spm-f16", "llama-r4-embd",
                                 "4 --type F16 --lora-alpha 6 --lora-targets attn_v,ffn_down,token_embd --synthetic-seed 7");
  check("tiny-llama-spm-f16", "tiny-llama-spm-f16+lora-r8x0.5+r4x-1.5", {{a1, 0.5f}, {a2, -1.5f}});
}

TEST_CASE("LoRA vs the peer: Qwen2 F16 (Q/K/V biases), rank-8 F32 adapter", "[model][reference][lora]") {
  check("tiny-qwen2-f16", "tiny-qwen2-f16+lora-r8", {{adapter("tiny-qwen2-f16", "qwen2-r8", "8 --type F32"), 1.0f}});
}

TEST_CASE("LoRA vs the peer: GPT-2 Q8_0 (fused attn_qkv), rank-8 F16 adapter", "[model][reference][lora]") {
  check("tiny-gpt2-q8_0", "tiny-gpt2-q8_0+lora-r8", {{adapter("tiny-gpt2-q8_0", "gpt2-r8", "8 --type F16"), 1.0f}});
}
