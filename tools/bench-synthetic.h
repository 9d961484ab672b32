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

std::string synthetic_shape_names();  // "gpt2-124m, smollm2-135m, ..."

}  // namespace xent::app
