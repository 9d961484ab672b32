// Writes reference logits in the format of shared/reference/README.md from a peer runtime
// (llama.cpp's C API), for model files the shared references do not cover. Built outside
// the repository against a llama.cpp checkout by scripts/peer/make-references.sh; not part
// of xent's build.
//
//   peer-logits [--lora-scaled ADAPTER.gguf SCALE]... MODEL.gguf NAME OUT_DIR PROMPT.txt...
//     ->  OUT_DIR/NAME--PROMPT.json
#include <llama.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <vector>

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

double rounded(double v, double scale) { return std::round(v * scale) / scale; }

std::string stem(const std::string& path) {
  std::string s = path.substr(path.find_last_of('/') + 1);
  return s.substr(0, s.find_last_of('.'));
}

// The ten highest logits, highest first, as [id, logit].
nlohmann::json top10(const float* logits, int n_vocab) {
  std::vector<int> ids(n_vocab);
  std::iota(ids.begin(), ids.end(), 0);
  std::partial_sort(ids.begin(), ids.begin() + 10, ids.end(),
                    [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  nlohmann::json out = nlohmann::json::array();
  for (int k = 0; k < 10; ++k) out.push_back({ids[k], rounded(logits[ids[k]], 1e5)});
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  // Leading --lora-scaled FILE SCALE pairs: adapters set on every context (llama_set_adapter_lora).
  std::vector<std::pair<std::string, float>> loras;
  while (argc >= 4 && std::string(argv[1]) == "--lora-scaled") {
    loras.emplace_back(argv[2], std::stof(argv[3]));
    argv[3] = argv[0];
    argv += 3;
    argc -= 3;
  }
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s [--lora-scaled ADAPTER.gguf SCALE]... MODEL.gguf NAME OUT_DIR PROMPT.txt...\n", argv[0]);
    return 2;
  }
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (!model) {
    std::fprintf(stderr, "cannot load %s\n", argv[1]);
    return 1;
  }
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const int n_vocab = llama_vocab_n_tokens(vocab);
  const std::string name = argv[2], out_dir = argv[3];
  std::vector<std::pair<llama_adapter_lora*, float>> adapters;
  for (const auto& [path, scale] : loras) {
    llama_adapter_lora* a = llama_adapter_lora_init(model, path.c_str());
    if (!a) {
      std::fprintf(stderr, "cannot load adapter %s\n", path.c_str());
      return 1;
    }
    adapters.emplace_back(a, scale);
  }

  for (int a = 4; a < argc; ++a) {
    const std::string prompt = read_file(argv[a]);
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 1024;
    cp.n_batch = 1024;
    cp.n_ubatch = 1024;
    cp.n_threads = 2;
    cp.n_threads_batch = 2;
    llama_context* ctx = llama_init_from_model(model, cp);
    for (const auto& [a, scale] : adapters) llama_set_adapter_lora(ctx, a, scale);

    std::vector<llama_token> tokens(prompt.size() + 8);
    const int n = llama_tokenize(vocab, prompt.data(), static_cast<int32_t>(prompt.size()), tokens.data(),
                                 static_cast<int32_t>(tokens.size()), true, true);
    tokens.resize(n);

    llama_batch batch = llama_batch_init(n, 0, 1);
    for (int i = 0; i < n; ++i) {
      batch.token[i] = tokens[i];
      batch.pos[i] = i;
      batch.n_seq_id[i] = 1;
      batch.seq_id[i][0] = 0;
      batch.logits[i] = 1;
    }
    batch.n_tokens = n;
    if (llama_decode(ctx, batch) != 0) {
      std::fprintf(stderr, "decode failed\n");
      return 1;
    }
    nlohmann::json forced = nlohmann::json::array();
    for (int i = 0; i < n; ++i) forced.push_back(top10(llama_get_logits_ith(ctx, i), n_vocab));
    llama_batch_free(batch);

    std::vector<llama_token> greedy;
    nlohmann::json margins = nlohmann::json::array();
    const float* logits = llama_get_logits_ith(ctx, n - 1);
    for (int step = 0; step < 32; ++step) {
      std::vector<int> ids(n_vocab);
      std::iota(ids.begin(), ids.end(), 0);
      std::partial_sort(ids.begin(), ids.begin() + 2, ids.end(), [&](int x, int y) { return logits[x] > logits[y]; });
      llama_token next = ids[0];
      greedy.push_back(next);
      margins.push_back(rounded(logits[ids[0]] - logits[ids[1]], 1e4));
      if (llama_vocab_is_eog(vocab, next)) break;
      llama_batch one = llama_batch_get_one(&next, 1);
      if (llama_decode(ctx, one) != 0) {
        std::fprintf(stderr, "decode failed\n");
        return 1;
      }
      logits = llama_get_logits_ith(ctx, -1);
    }
    std::string text(4096, '\0');
    const int len = llama_detokenize(vocab, greedy.data(), static_cast<int32_t>(greedy.size()), text.data(),
                                     static_cast<int32_t>(text.size()), false, false);
    text.resize(std::max(0, len));

    nlohmann::json j;
    j["prompt"] = prompt;
    j["add_bos"] = llama_vocab_get_add_bos(vocab);
    j["tokens"] = tokens;
    j["teacher_forced"] = forced;
    j["greedy"] = greedy;
    j["greedy_margins"] = margins;
    j["greedy_text"] = text;
    const std::string path = out_dir + "/" + name + "--" + stem(argv[a]) + ".json";
    // Greedy text can end inside a UTF-8 sequence: such bytes become U+FFFD (never compared).
    std::ofstream(path) << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    std::printf("%s: %d tokens, %zu greedy\n", path.c_str(), n, greedy.size());
    llama_free(ctx);
  }
  for (const auto& [a, scale] : adapters) llama_adapter_lora_free(a);
  llama_model_free(model);
  return 0;
}
