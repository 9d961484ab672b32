// Token ids the peer runtime gives for each text of a test-vector file, through its C API:
// texts separated by "\n__ggml_vocab_test__\n" (the ggml-vocab .inp format), one line of
// space-separated ids per text out (the .out format), no BOS/EOS added.
// Builds against either peer (scripts/peer/make-tokenizer-refs.sh):
//   peer-tokenize MODEL.gguf TEXTS.inp [--parse-special] > IDS.out
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "llama.h"

static void quiet(ggml_log_level, const char*, void*) {}

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL.gguf TEXTS.inp [--parse-special]\n", argv[0]);
    return 2;
  }
  const bool parse_special = argc > 3 && std::string(argv[3]) == "--parse-special";
  std::ifstream in(argv[2], std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string data = ss.str(), sep = "\n__ggml_vocab_test__\n";

  llama_log_set(quiet, nullptr);
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  mp.vocab_only = true;
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (!model) {
    std::fprintf(stderr, "cannot load %s\n", argv[1]);
    return 1;
  }
  const llama_vocab* vocab = llama_model_get_vocab(model);
  size_t pos = 0;
  for (size_t m; (m = data.find(sep, pos)) != std::string::npos; pos = m + sep.size()) {
    const std::string text = data.substr(pos, m - pos);
    std::vector<llama_token> ids(text.size() + 8);
    const int n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), ids.data(),
                                 static_cast<int32_t>(ids.size()), /*add_special=*/false, parse_special);
    if (n < 0) return 1;
    for (int i = 0; i < n; ++i) std::printf(i ? " %d" : "%d", ids[i]);
    std::printf("\n");
  }
  llama_model_free(model);
  return 0;
}
