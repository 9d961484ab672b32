// Random-weight GGUF models of real shapes (GPT-2 124M, SmolLM2 135M, Llama 3.2 1B ...),
// so benchmark numbers can be reproduced without a download (`xent bench --synthetic`).
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace xent::app {

struct SyntheticParams {
  std::string shape;       // a name from synthetic_shape_names()
  std::string type = "F16";  // a file type as `xent quantize` names it (F32, Q8_0, Q4_K_M ...)
  std::string output;      // GGUF file to write (atomically)
  std::string vocab_path;  // optional: copy tokenizer.* from this GGUF instead of a synthetic vocab
  uint64_t seed = 42;
  int n_threads = 0;       // 0: all hardware threads
};

struct SyntheticResult {
  std::string arch;
  int64_t n_vocab = 0;
  uint64_t n_params = 0;
  uint64_t tensor_bytes = 0;
};

// Writes the model. Weights are drawn in F32, a few rows at a time, and converted to the
// types `xent quantize` would choose for `type`, so memory use stays near the output size.
// The bytes depend on the seed only, not on the thread count. Throws xent::Error.
SyntheticResult write_synthetic_model(const SyntheticParams& p);

std::string synthetic_shape_names();

// A seeded random LoRA adapter for a base model (`xent bench --synthetic-lora RANK --base
// BASE.gguf`), in the GGUF layout llama.cpp reads: for each target W [n_in, n_out],
// "<name>.lora_a" [n_in, rank] and ".lora_b" [rank, n_out] (the token embedding's a
// [rank, n_vocab], b [rank, n_embd]). a is drawn N(0, 1/n_in), b N(0, b_stddev^2), unlike
// training's zero b, so the adapter changes the logits. For tests and measurements.
struct SyntheticLoraParams {
  std::string base_path;
  std::string output;
  int64_t rank = 16;
  float alpha = 0.0f;        // adapter.lora.alpha; 0: 2 * rank
  std::string type = "F16";  // F32, F16 or BF16
  // Comma list of targets: a tensor name without ".weight" ("output", "token_embd") or a
  // block tensor's stem ("attn_q", "ffn_down"). Empty: every 2-D weight of the blocks, and
  // output.weight when the model has one.
  std::string targets;
  float b_stddev = 0.02f;
  uint64_t seed = 42;
};
struct SyntheticLoraResult {
  size_t n_targets = 0;
  uint64_t tensor_bytes = 0;
};
SyntheticLoraResult write_synthetic_lora(const SyntheticLoraParams& p);  // "gpt2-124m, smollm2-135m, ..."

}  // namespace xent::app
