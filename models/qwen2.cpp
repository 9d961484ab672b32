// Qwen2 / Qwen2.5: the llama graph with Q/K/V biases and NeoX-style (split-half) RoPE.
#include "models/registry.h"

namespace xent {

std::unique_ptr<Architecture> load_qwen2(WeightLoader& w, HParams& hp) {
  return load_llama_family(w, hp, /*qwen2=*/true);
}

}  // namespace xent
