// The architectures xent can run, one loader per models/<arch>.cpp.
#pragma once
#include <memory>

#include "formats/error.h"
#include "runtime/inference/model.h"

namespace xent {

std::unique_ptr<Architecture> load_llama(WeightLoader& w, HParams& hp);
std::unique_ptr<Architecture> load_qwen2(WeightLoader& w, HParams& hp);
std::unique_ptr<Architecture> load_gpt2(WeightLoader& w, HParams& hp);
std::unique_ptr<Architecture> load_gemma2(WeightLoader& w, HParams& hp);
std::unique_ptr<Architecture> load_qwen3(WeightLoader& w, HParams& hp);
std::unique_ptr<Architecture> load_gemma3(WeightLoader& w, HParams& hp);
std::unique_ptr<Architecture> load_phi3(WeightLoader& w, HParams& hp);

// The llama graph and its relatives (models/llama.cpp).
struct LlamaVariant {
  bool neox_rope = false;  // rotate the two halves of a head (qwen2, qwen3) instead of pairs
  bool qkv_bias = false;   // qwen2
  bool qk_norm = false;    // qwen3: per-head RMSNorm of queries and keys
};
std::unique_ptr<Architecture> load_llama_family(WeightLoader& w, HParams& hp, LlamaVariant v);

}  // namespace xent
