// Byte-level BPE (tokenizer.ggml.model "gpt2") with the pre-tokenizers the shipped files
// use: gpt-2 (tiny-gpt2), qwen2 (tiny-qwen2), deepseek-llm and mpt (reference vocabularies).
#include "fuzz-tokenizer.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  xent::fuzz::load_tokenizers({"models/tiny-gpt2-q8_0.gguf", "models/tiny-qwen2-q8_0.gguf",
                               "models/tiny-llama-bpe-q8_0.gguf", "reference/tokenizer/ggml-vocab-gpt-2.gguf",
                               "reference/tokenizer/ggml-vocab-deepseek-llm.gguf",
                               "reference/tokenizer/ggml-vocab-mpt.gguf"});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return xent::fuzz::tokenizer_one_input(data, size);
}
