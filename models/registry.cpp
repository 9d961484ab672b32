#include "models/registry.h"

#include <vector>

namespace xent {

const std::vector<ArchitectureEntry>& architectures() {
  static const std::vector<ArchitectureEntry> kArchitectures = {
      {"llama", load_llama},
      {"qwen2", load_qwen2},
      {"gpt2", load_gpt2},
      {"gemma2", load_gemma2},
  };
  return kArchitectures;
}

}  // namespace xent
