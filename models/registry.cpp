#include "models/registry.h"

#include <vector>

namespace xent {

const std::vector<ArchitectureEntry>& architectures() {
  static const std::vector<ArchitectureEntry> kArchitectures = {
      {"llama", load_llama},
      {"qwen2", load_qwen2},
      {"gpt2", load_gpt2},
      {"qwen3", load_qwen3},
      {"gemma2", load_gemma2},
      {"gemma3", load_gemma3},
      {"phi3", load_phi3},
  };
  return kArchitectures;
}

}  // namespace xent
