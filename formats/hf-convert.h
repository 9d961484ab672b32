// Converting a Hugging Face checkpoint folder (safetensors + config + tokenizer) to a
// GGUF file with the tensor names, metadata keys and layouts other GGUF readers expect.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "formats/dtype.h"

namespace xent::hf {

struct ConvertParams {
  std::string dir;          // the checkpoint folder
  std::string output;       // the GGUF file to write (atomically)
  std::string outtype = "auto";  // auto | f32 | f16 | bf16 | q8_0 (auto: the checkpoint's float type)
  std::string pre;          // tokenizer.ggml.pre override ("" : detect)
  std::string name;         // general.name ("" : the folder's name)
  std::function<void(const std::string&)> log;  // progress lines (may be empty)
};

struct ConvertResult {
  std::string arch;         // GGUF architecture name
  std::string hf_arch;      // config.json architectures[0]
  DType type = DType::F16;  // the type of the 2-D weights
  size_t n_tensors = 0;
  uint64_t n_params = 0;
  uint64_t tensor_bytes = 0;
};

// The config.json architectures this converter knows, e.g. "LlamaForCausalLM".
const char* const* supported_architectures();  // null-terminated

// The tensor order GGUF producers use: tensors outside blocks by name, then each block
// (blk.N.*) in numeric order, its tensors by name. `xent quantize` writes this order too.
bool tensor_name_order(const std::string& a, const std::string& b);

// Llama 3's rope scaling (config.json rope_scaling.rope_type "llama3") as the divisor of
// each rotary pair's frequency, the rope_freqs.weight tensor GGUF files carry: pairs whose
// wavelength is shorter than original_context / high_freq_factor keep theirs, those longer
// than original_context / low_freq_factor are divided by `factor`, the band between blends.
std::vector<float> llama3_rope_factors(double base, int64_t n_rot, double factor, double low_freq_factor,
                                       double high_freq_factor, double original_context);

// Throws xent::Error naming the problem: unsupported architecture (listing the supported
// ones), missing/mis-shaped tensors, a bad tokenizer, malformed safetensors.
ConvertResult convert_checkpoint(const ConvertParams& params);

// A PEFT LoRA folder (adapter_config.json + adapter_model.safetensors) to a GGUF adapter in
// the layout llama.cpp reads, for the GGUF base model it was trained on: "<weight>.lora_a"
// [n_in, r] and ".lora_b" [r, n_out] per target (the token embedding: a [r, n_vocab], b
// [r, n_embd]), adapter.lora.alpha. The rotary rows of Llama's q/k go through the same
// permutation as in convert_checkpoint (on B, whose rows are the outputs). use_rslora
// (scale alpha / sqrt(r)) is written as alpha·sqrt(r). Throws xent::Error for what a LoRA
// GGUF cannot express (DoRA, trained biases, alpha_pattern, modules_to_save), for modules
// the architecture or the base lacks, and for shapes that do not fit the base.
struct LoraConvertParams {
  std::string dir;               // the PEFT folder
  std::string base;              // the base model's GGUF
  std::string output;            // the GGUF adapter to write (atomically)
  std::string outtype = "auto";  // auto (the adapter's float type) | f32 | f16 | bf16
  std::function<void(const std::string&)> log;
};

struct LoraConvertResult {
  std::string arch;
  DType type = DType::F16;
  size_t n_targets = 0;
  int64_t rank = 0;        // adapter_config.json r
  float alpha = 0;         // as written
  uint64_t tensor_bytes = 0;
};

LoraConvertResult convert_lora(const LoraConvertParams& params);

}  // namespace xent::hf
