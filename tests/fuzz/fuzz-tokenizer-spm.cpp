// SentencePiece (tokenizer.ggml.model "llama", byte fallback): the tiny Llama's truncated
// vocabulary and the full LLaMA reference vocabulary.
#include "fuzz-tokenizer.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  xent::fuzz::load_tokenizers({"models/tiny-llama-spm-q8_0.gguf", "reference/tokenizer/ggml-vocab-llama-spm.gguf"});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return xent::fuzz::tokenizer_one_input(data, size);
}
