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
// Shared by llama and qwen2 (models/llama.cpp).
std::unique_ptr<Architecture> load_llama_family(WeightLoader& w, HParams& hp, bool qwen2);

}  // namespace xent
