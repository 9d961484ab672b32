// `xent logits`: teacher-forced top-k logits and a greedy continuation for a prompt,
// written in the JSON format of shared/reference/logits — the tool for comparing xent
// with other runtimes on any model and prompt.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
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

struct LogitsOptions {
  ModelOptions model;
  std::string prompt_file;
  std::string prompt;
  int top = 10;
  int greedy = 32;
  int ubatch = 512;
  std::string output;
  bool reference_kernels = false;
};

std::vector<std::pair<int32_t, float>> top_k(const float* logits, int64_t n_vocab, int k) {
  std::vector<int32_t> idx(static_cast<size_t>(n_vocab));
  std::iota(idx.begin(), idx.end(), 0);
  k = static_cast<int>(std::min<int64_t>(k, n_vocab));
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  std::vector<std::pair<int32_t, float>> out;
  for (int i = 0; i < k; ++i) out.push_back({idx[i], logits[idx[i]]});
  return out;
}

int run(const LogitsOptions& o) {
  std::string prompt = o.prompt;
  if (!o.prompt_file.empty() && !read_file(o.prompt_file, &prompt)) return 1;
  try {
    ModelLoadParams lp;
    lp.use_mmap = !o.model.no_mmap;
    std::unique_ptr<Model> model = Model::load(o.model.model_path, lp);
    ContextParams cp;
    cp.n_ctx = o.model.ctx_size;
    cp.n_threads = o.model.threads;
    cp.n_ubatch = o.ubatch;
    cp.backends = parse_backend_list(o.model.backend);
    cp.n_gpu_layers = o.model.n_gpu_layers;
    cp.cpu_reference_kernels = o.reference_kernels;
    std::vector<std::string> notes;
    Context ctx(*model, cp, &notes);
    ctx.set_adapters(load_adapters(*model, o.model.lora.list()));
    for (const std::string& n : notes) std::fprintf(stderr, "xent: %s\n", n.c_str());
    const Tokenizer& tok = model->tokenizer();
    const int64_t n_vocab = model->hparams().n_vocab;

    std::vector<int32_t> tokens = tok.encode(prompt, true, true);
    if (tokens.empty()) throw Error("the prompt has no tokens");
    if (static_cast<int64_t>(tokens.size()) + o.greedy > ctx.n_ctx())
      throw Error("prompt (" + std::to_string(tokens.size()) + " tokens) plus " + std::to_string(o.greedy) +
                  " greedy tokens exceed the context of " + std::to_string(ctx.n_ctx()));
    nlohmann::json out;
    out["prompt"] = prompt;
    out["add_bos"] = tok.adds_bos();
    out["tokens"] = tokens;
    ctx.decode(tokens.data(), tokens.size(), /*all_logits=*/true);
    nlohmann::json forced = nlohmann::json::array();
    for (size_t i = 0; i < tokens.size(); ++i) {
      nlohmann::json row = nlohmann::json::array();
      for (auto [id, l] : top_k(ctx.logits_at(i), n_vocab, o.top)) row.push_back({id, l});
      forced.push_back(row);
    }
    out["teacher_forced"] = forced;

    std::vector<int32_t> greedy;
    std::vector<float> margins;
    for (int step = 0; step < o.greedy; ++step) {
      auto best = top_k(ctx.logits(), n_vocab, 2);
      const int32_t id = best[0].first;
      if (tok.is_end_of_generation(id)) break;
      greedy.push_back(id);
      margins.push_back(best[0].second - best[1].second);
      if (step + 1 < o.greedy) ctx.decode(&id, 1);
    }
    out["greedy"] = greedy;
    out["greedy_margins"] = margins;
    out["greedy_text"] = tok.decode(greedy);
    const std::string text = out.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    if (o.output.empty()) {
      std::fwrite(text.data(), 1, text.size(), stdout);
    } else {
      std::ofstream f(o.output, std::ios::binary);
      f << text;
      if (!f) throw Error("cannot write '" + o.output + "'");
    }
  } catch (const std::exception& e) {
    print_error("logits", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

void add_logits_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<LogitsOptions>();
  CLI::App* cmd = app.add_subcommand("logits", "teacher-forced top logits and greedy tokens as JSON");
  add_model_options(*cmd, o->model);
  cmd->add_option("-f,--file", o->prompt_file, "prompt file (its bytes, no newline added)");
  cmd->add_option("-p,--prompt", o->prompt, "prompt text");
  cmd->add_option("--top", o->top, "logits per position")->check(CLI::Range(1, 1000));
  cmd->add_option("--greedy", o->greedy, "greedy tokens after the prompt")->check(CLI::Range(0, 100000));
  cmd->add_option("--ubatch", o->ubatch, "tokens per evaluation step (1: token by token through the cache)")
      ->check(CLI::Range(1, 1 << 16));
  cmd->add_option("-o,--output", o->output, "write the JSON here instead of stdout");
  cmd->add_flag("--reference-kernels", o->reference_kernels, "use the scalar reference CPU kernels");
  cmd->callback([o, &exit_code] { exit_code = run(*o); });
}

}  // namespace xent::app
