// Models the shared references do not cover (Llama 3 rope scaling, YaRN, Gemma 2 and 3,
// Qwen3, Phi-3), checked against the peer's logits committed in tests/models/reference/.
// The models are not committed: the test writes them with `xent bench --synthetic` (seeded,
// so byte for byte the files the peer read; scripts/peer/make-references.sh made the
// references), with the tokenizer of a shared model.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <string>

#include "common/reference.h"
#include "common/run-xent.h"

using xent::test::check_reference_at;
using xent::test::reference_tolerance;
using xent::test::shared_path;

namespace {

const char* const kPrompts[] = {"p1-clinical", "p2-story", "p3-note", "p4-unicode"};

// Writes build/generated-models/NAME.gguf (NAME = SHAPE-type) and returns its path.
std::string generate(const std::string& shape, const std::string& type, const std::string& vocab_model) {
  std::string lower = type;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string err;
  const std::string path = xent::test::write_synthetic(std::string(XENT_BINARY_DIR) + "/generated-models", shape, type,
                                                       shared_path("models/" + vocab_model + ".gguf"),
                                                       shape + "-" + lower, &err);
  INFO(err);
  REQUIRE(!path.empty());
  return path;
}

void check_generated(const std::string& shape, const std::string& type, const std::string& vocab_model) {
  const std::string model = generate(shape, type, vocab_model);
  const std::string name = std::filesystem::path(model).stem().string();
  const float tol = reference_tolerance(name);
  for (const char* prompt : kPrompts) {
    for (int ubatch : {512, 1}) {
      xent::ContextParams cp;
      cp.n_threads = 2;
      cp.n_ubatch = ubatch;
      const std::string ref = std::string(XENT_SOURCE_DIR) + "/tests/models/reference/" + name + "--" + prompt + ".json";
      const auto r = check_reference_at(model, ref, prompt, cp, tol);
      std::printf("%-24s %-12s ubatch %3d: max |diff| %.4f (tol %.2f), top-1 %d/%d, greedy %d steps\n", name.c_str(),
                  prompt, ubatch, r.max_abs_diff, tol, r.top1_checked - r.top1_mismatch, r.top1_checked,
                  r.greedy_checked);
      // A check with no confident position would pass anything.
      CHECK(r.top1_checked > 0);
    }
  }
}

}  // namespace

TEST_CASE("reference logits: Llama 3 rope scaling (rope_freqs.weight), F16", "[model][reference][llama]") {
  check_generated("tiny-llama3", "F16", "tiny-llama-bpe-f16");
}

TEST_CASE("reference logits: Llama 3 rope scaling (rope_freqs.weight), Q4_K_M", "[model][reference][llama]") {
  check_generated("tiny-llama3", "Q4_K_M", "tiny-llama-bpe-f16");
}

TEST_CASE("reference logits: Qwen2 with YaRN rope scaling, F16", "[model][reference][qwen2]") {
  check_generated("tiny-qwen2-yarn", "F16", "tiny-qwen2-f16");
}

TEST_CASE("reference logits: Qwen2 with YaRN rope scaling, Q8_0", "[model][reference][qwen2]") {
  check_generated("tiny-qwen2-yarn", "Q8_0", "tiny-qwen2-f16");
}

// Gemma 2: soft-capped attention and logits, a 32-token window on even layers (p3 and p4
// are longer than the window, so the window is exercised in one batch and token by token).
TEST_CASE("reference logits: Gemma 2, F16", "[model][reference][gemma2]") {
  check_generated("tiny-gemma2", "F16", "tiny-llama-spm-f16");
}

TEST_CASE("reference logits: Gemma 2, Q8_0", "[model][reference][gemma2]") {
  check_generated("tiny-gemma2", "Q8_0", "tiny-llama-spm-f16");
}

// Qwen3: per-head Q/K RMSNorm, q wider than the embedding (peer: the newer llama.cpp).
TEST_CASE("reference logits: Qwen3, F16", "[model][reference][qwen3]") {
  check_generated("tiny-qwen3", "F16", "tiny-qwen2-f16");
}

TEST_CASE("reference logits: Qwen3, Q4_K_M", "[model][reference][qwen3]") {
  check_generated("tiny-qwen3", "Q4_K_M", "tiny-qwen2-f16");
}

// Gemma 3: Q/K norm, five 32-token-window layers to one global, local rope base 10000
// unscaled and global rope scaled linearly by 8 (peer: the newer llama.cpp).
TEST_CASE("reference logits: Gemma 3, F16", "[model][reference][gemma3]") {
  check_generated("tiny-gemma3", "F16", "tiny-llama-spm-f16");
}

TEST_CASE("reference logits: Gemma 3, Q8_0", "[model][reference][gemma3]") {
  check_generated("tiny-gemma3", "Q8_0", "tiny-llama-spm-f16");
}

// Phi-3: fused QKV and gate/up, LongRoPE (the long factors, as the context exceeds the
// 64-token original one) with its attention factor, a 32-token window on every layer.
TEST_CASE("reference logits: Phi-3 with LongRoPE, F16", "[model][reference][phi3]") {
  check_generated("tiny-phi", "F16", "tiny-llama-spm-f16");
}

TEST_CASE("reference logits: Phi-3 with LongRoPE, Q8_0", "[model][reference][phi3]") {
  check_generated("tiny-phi", "Q8_0", "tiny-llama-spm-f16");
}
