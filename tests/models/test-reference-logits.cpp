// Every shipped model × every prompt against the peer's reference logits, on the CPU,
// once as one batch and once token by token through the KV cache (ubatch 1).
#include <catch2/catch.hpp>

#include <cstdio>

#include "common/reference.h"

using xent::test::check_reference;
using xent::test::reference_tolerance;
using xent::test::shared_path;

namespace {

const char* const kPrompts[] = {"p1-clinical", "p2-story", "p3-note", "p4-unicode"};

void check_model(const std::string& name) {
  const float tol = reference_tolerance(name);
  for (const char* prompt : kPrompts) {
    for (int ubatch : {512, 1}) {
      xent::ContextParams cp;
      cp.n_threads = 2;
      cp.n_ubatch = ubatch;
      const auto r = check_reference(shared_path("models/" + name + ".gguf"), name, prompt, cp, tol);
      std::printf("%-24s %-12s ubatch %3d: max |diff| %.4f (tol %.2f), top-1 %d/%d, greedy %d steps\n",
                  name.c_str(), prompt, ubatch, r.max_abs_diff, tol, r.top1_checked - r.top1_mismatch,
                  r.top1_checked, r.greedy_checked);
    }
  }
}

}  // namespace

#define REFERENCE_CASE(NAME, ARCH) \
  TEST_CASE("reference logits: " NAME, "[model][reference][" ARCH "]") { check_model(NAME); }

REFERENCE_CASE("tiny-llama-spm-f32", "llama")
REFERENCE_CASE("tiny-llama-spm-f16", "llama")
REFERENCE_CASE("tiny-llama-spm-q8_0", "llama")
REFERENCE_CASE("tiny-llama-spm-q4_0", "llama")
REFERENCE_CASE("tiny-llama-spm-q5_0", "llama")
REFERENCE_CASE("tiny-llama-spm-q2_k", "llama")
REFERENCE_CASE("tiny-llama-spm-q4_k_m", "llama")
REFERENCE_CASE("tiny-llama-spm-q5_k_m", "llama")
REFERENCE_CASE("tiny-llama-spm-q6_k", "llama")
REFERENCE_CASE("tiny-llama-bpe-f16", "llama")
REFERENCE_CASE("tiny-llama-bpe-q8_0", "llama")
REFERENCE_CASE("tiny-llama-bpe-q4_k_m", "llama")
REFERENCE_CASE("tiny-qwen2-f16", "qwen2")
REFERENCE_CASE("tiny-qwen2-q8_0", "qwen2")
REFERENCE_CASE("tiny-qwen2-q4_0", "qwen2")
REFERENCE_CASE("tiny-gpt2-q8_0", "gpt2")
REFERENCE_CASE("tiny-gpt2-q4_k_m", "gpt2")
REFERENCE_CASE("clinical-gpt2-q8_0", "gpt2")
