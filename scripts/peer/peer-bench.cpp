// Prompt and generation speed of a peer runtime (llama.cpp's C API), measured the way
// llama-bench and `xent bench` measure: a warm-up run that is not counted, then `reps`
// runs from an empty cache of pp (N_PROMPT tokens as one batch) and tg (N_GEN tokens one
// at a time); the mean tok/s of each. For the newer peer (scripts/peer/newer-peer), which
// ships no llama-bench. Built outside the repository; not part of xent's build.
//
//   peer-bench MODEL.gguf N_PROMPT N_GEN REPS THREADS
#include <llama.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

namespace {

double run_once(llama_context* ctx, const std::vector<llama_token>& tokens, int n_prompt, int n_gen) {
  llama_memory_clear(llama_get_memory(ctx), true);
  const auto t0 = std::chrono::steady_clock::now();
  if (n_prompt > 0) {
    llama_batch b = llama_batch_get_one(const_cast<llama_token*>(tokens.data()), n_prompt);
    if (llama_decode(ctx, b) != 0) std::exit(1);
  }
  for (int i = 0; i < n_gen; ++i) {
    llama_token t = tokens[static_cast<size_t>(i)];
    if (llama_decode(ctx, llama_batch_get_one(&t, 1)) != 0) std::exit(1);
  }
  llama_synchronize(ctx);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s MODEL.gguf N_PROMPT N_GEN REPS THREADS\n", argv[0]);
    return 2;
  }
  const int n_prompt = std::atoi(argv[2]), n_gen = std::atoi(argv[3]), reps = std::atoi(argv[4]);
  const int threads = std::atoi(argv[5]);
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (!model) return 1;
  const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = static_cast<uint32_t>(n_prompt + n_gen + 16);
  cp.n_batch = static_cast<uint32_t>(std::max(n_prompt, 1));
  cp.n_ubatch = 512;
  cp.n_threads = threads;
  cp.n_threads_batch = threads;
  llama_context* ctx = llama_init_from_model(model, cp);
  std::mt19937 rng(42);
  std::vector<llama_token> tokens(static_cast<size_t>(std::max(n_prompt, n_gen)));
  for (llama_token& t : tokens) t = static_cast<llama_token>(rng() % static_cast<unsigned>(n_vocab));
  for (const auto [p, g] : {std::pair{n_prompt, 0}, std::pair{0, n_gen}}) {
    if (p + g == 0) continue;
    run_once(ctx, tokens, p, g);  // warm-up
    double sum = 0;
    for (int r = 0; r < reps; ++r) sum += (p + g) / run_once(ctx, tokens, p, g);
    std::printf("%s%d: %.2f tok/s (mean of %d)\n", p ? "pp" : "tg", p ? p : g, sum / reps, reps);
  }
  llama_free(ctx);
  llama_model_free(model);
  return 0;
}
