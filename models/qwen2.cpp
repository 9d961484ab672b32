// Qwen2 / Qwen2.5: the llama graph with Q/K/V biases and NeoX-style (split-half) RoPE.
// Qwen3: no biases; each head's query and key RMS-normalised before RoPE.
#include "models/registry.h"

namespace xent {

std::unique_ptr<Architecture> load_qwen2(WeightLoader& w, HParams& hp) {
  return load_llama_family(w, hp, LlamaVariant{.neox_rope = true, .qkv_bias = true});
}

std::unique_ptr<Architecture> load_qwen3(WeightLoader& w, HParams& hp) {
  return load_llama_family(w, hp, LlamaVariant{.neox_rope = true, .qk_norm = true});
}

}  // namespace xent
