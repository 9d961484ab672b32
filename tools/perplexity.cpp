// `xent perplexity`: how well a model predicts a text (chunked perplexity, scored on the
// second half of each chunk) and, against a base model, the KL divergence and top-1 agreement.
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "common.h"
#include "formats/error.h"
#include "runtime/inference/context.h"
#include "runtime/inference/lora.h"
#include "runtime/inference/model.h"

namespace xent::app {
namespace {

struct PerplexityOptions {
  std::string model_path, text_path, base_path;
  int ctx = 0;      // 0: 512, or the model's context when that is smaller
  int chunks = 0;  // 0: all
  int threads = 0;
  int ubatch = 512;
  std::string backend = "cpu";
  LoraOptions lora;  // on -m's model, not on --kl-base's
};

// log-softmax of one row, in double: the sums over a large vocabulary need the precision.
void log_softmax(const float* logits, int64_t n, std::vector<double>& out) {
  out.resize(static_cast<size_t>(n));
  const double mx = *std::max_element(logits, logits + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(logits[i] - mx);
  const double lse = mx + std::log(sum);
  for (int64_t i = 0; i < n; ++i) out[i] = logits[i] - lse;
}

// Running sums of a per-token quantity: mean and standard error of the mean.
struct Stat {
  double sum = 0, sum2 = 0;
  uint64_t n = 0;
  void add(double v) {
    sum += v;
    sum2 += v * v;
    ++n;
  }
  double mean() const { return n ? sum / n : 0; }
  double stderr_of_mean() const {
    if (n < 2) return 0;
    const double var = (sum2 / n - mean() * mean()) * n / (n - 1.0);
    return var > 0 ? std::sqrt(var / n) : 0;
  }
};

std::unique_ptr<Context> make_context(const Model& m, const PerplexityOptions& o) {
  ContextParams cp;
  cp.n_ctx = o.ctx;
  cp.n_threads = o.threads;
  cp.n_ubatch = o.ubatch;
  cp.backends = parse_backend_list(o.backend);
  std::vector<std::string> notes;
  auto ctx = std::make_unique<Context>(m, cp, &notes);
  for (const std::string& n : notes) std::fprintf(stderr, "xent: %s\n", n.c_str());
  return ctx;
}

int run(PerplexityOptions o) {
  std::string text;
  if (!read_file(o.text_path, &text)) return 1;
  try {
    std::unique_ptr<Model> model = Model::load(o.model_path);
    const int64_t n_vocab = model->hparams().n_vocab;
    if (o.ctx == 0) o.ctx = static_cast<int>(std::min<int64_t>(512, model->hparams().n_ctx_train));
    if (o.ctx < 4) throw Error("--ctx must be at least 4");
    if (model->hparams().learned_positions && o.ctx > model->hparams().n_ctx_train)
      throw Error("--ctx " + std::to_string(o.ctx) + " exceeds the model's " + std::to_string(model->hparams().n_ctx_train) +
                  "-token position table");
    std::unique_ptr<Context> ctx = make_context(*model, o);
    ctx->set_adapters(load_adapters(*model, o.lora.list()));
    const Tokenizer& tok = model->tokenizer();
    const std::vector<int32_t> tokens = tok.encode(text, true, false);

    std::unique_ptr<Model> base;
    std::unique_ptr<Context> base_ctx;
    if (!o.base_path.empty()) {
      base = Model::load(o.base_path);
      if (base->hparams().n_vocab != n_vocab)
        throw Error("the base model has " + std::to_string(base->hparams().n_vocab) + " tokens, this one " +
                    std::to_string(n_vocab));
      if (base->tokenizer().encode(text, true, false) != tokens)
        throw Error("the base model tokenizes the text differently");
      base_ctx = make_context(*base, o);
    }

    const int64_t n_ctx = o.ctx;
    int64_t n_chunks = static_cast<int64_t>(tokens.size()) / n_ctx;
    if (o.chunks > 0) n_chunks = std::min<int64_t>(n_chunks, o.chunks);
    if (n_chunks < 1)
      throw Error("the text has " + std::to_string(tokens.size()) + " tokens; a context of " + std::to_string(n_ctx) +
                  " needs at least that many");
    // Each chunk is evaluated from an empty cache; its first half only warms the context
    // up, so every scored token sees at least n_ctx/2 tokens of history.
    const int64_t first = n_ctx / 2;
    std::printf("perplexity: %zu tokens, %" PRId64 " chunks of %" PRId64 ", scoring tokens %" PRId64 "..%" PRId64
                " of each\n",
                tokens.size(), n_chunks, n_ctx, first + 1, n_ctx - 1);

    Stat nll, base_nll, kld;
    uint64_t same_top = 0;
    std::vector<double> lp, base_lp;
    std::vector<int32_t> chunk(static_cast<size_t>(n_ctx));
    for (int64_t c = 0; c < n_chunks; ++c) {
      std::copy(tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx, chunk.begin());
      // Every chunk starts like a fresh text: with BOS when the model adds one.
      if (tok.adds_bos() && tok.bos() >= 0) chunk[0] = tok.bos();
      ctx->truncate(0);
      ctx->decode(chunk.data(), chunk.size(), /*all_logits=*/true);
      if (base_ctx) {
        base_ctx->truncate(0);
        base_ctx->decode(chunk.data(), chunk.size(), true);
      }
      for (int64_t i = first; i < n_ctx - 1; ++i) {
        const int32_t next = chunk[i + 1];
        const float* logits = ctx->logits_at(static_cast<size_t>(i));
        log_softmax(logits, n_vocab, lp);
        nll.add(-lp[next]);
        if (base_ctx) {
          const float* bl = base_ctx->logits_at(static_cast<size_t>(i));
          log_softmax(bl, n_vocab, base_lp);
          base_nll.add(-base_lp[next]);
          double kl = 0;
          for (int64_t v = 0; v < n_vocab; ++v) kl += std::exp(base_lp[v]) * (base_lp[v] - lp[v]);
          kld.add(std::max(kl, 0.0));
          same_top += (std::max_element(logits, logits + n_vocab) - logits) == (std::max_element(bl, bl + n_vocab) - bl);
        }
      }
      std::printf("[%" PRId64 "]%.4f,", c + 1, std::exp(nll.mean()));
      std::fflush(stdout);
    }
    std::printf("\n");
    const double ppl = std::exp(nll.mean());
    std::printf("Final estimate: PPL = %.4f +/- %.5f (%" PRIu64 " tokens scored)\n", ppl, ppl * nll.stderr_of_mean(),
                nll.n);
    if (base_ctx) {
      const double bppl = std::exp(base_nll.mean());
      std::printf("Base PPL = %.4f +/- %.5f\n", bppl, bppl * base_nll.stderr_of_mean());
      std::printf("Mean KLD: %.6f +/- %.6f\n", kld.mean(), kld.stderr_of_mean());
      std::printf("Same top: %.3f %%\n", kld.n ? 100.0 * same_top / kld.n : 0.0);
    }
  } catch (const std::exception& e) {
    print_error("perplexity", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

void add_perplexity_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<PerplexityOptions>();
  CLI::App* cmd = app.add_subcommand("perplexity", "perplexity of a model on a text; KL divergence against a base model");
  cmd->add_option("-m,--model", o->model_path, "GGUF model file")->required();
  cmd->add_option("-f,--file", o->text_path, "text file")->required();
  cmd->add_option("-c,--ctx", o->ctx, "tokens per chunk (default 512, at most the model's context)")
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--chunks", o->chunks, "evaluate at most this many chunks (0: all)")->check(CLI::Range(0, 1 << 30));
  cmd->add_option("--kl-base", o->base_path, "base model (e.g. the F16 file): report KL divergence and top-1 agreement");
  cmd->add_option("-t,--threads", o->threads, "CPU threads (0: all)")->check(CLI::Range(0, 1024));
  cmd->add_option("-b,--batch-size", o->ubatch, "tokens per evaluation step")->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--backend", o->backend, "backends in preference order: cpu, vulkan, cuda");
  add_lora_options(*cmd, o->lora);
  cmd->callback([o, &exit_code] { exit_code = run(*o); });
}

}  // namespace xent::app
