// `xent run`: complete a prompt, streaming tokens to stdout; speed on stderr.
#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "common.h"

namespace xent::app {
namespace {

struct RunOptions {
  ModelOptions model;
  SamplingOptions sampling;
  GrammarOptions grammar;
  std::string prompt;
  std::string prompt_file;
  int n_predict = 128;
  bool quiet = false;
};

bool print_piece(xent_token, const char* piece, int32_t len, void*) {
  std::fwrite(piece, 1, static_cast<size_t>(len), stdout);
  std::fflush(stdout);
  return true;
}

int run(const RunOptions& o) {
  std::string prompt = o.prompt;
  if (!o.prompt_file.empty() && !read_file(o.prompt_file, &prompt)) return 1;
  std::string gbnf;
  if (!grammar_text("run", o.grammar, &gbnf)) return 1;
  xent_model* model = load_model(o.model);
  if (!model) return 1;
  std::unique_ptr<xent_model, decltype(&xent_model_free)> model_guard(model, xent_model_free);
  xent_context* ctx = create_context(model, o.model);
  if (!ctx) return 1;
  std::unique_ptr<xent_context, decltype(&xent_context_free)> ctx_guard(ctx, xent_context_free);
  xent_sampler* sampler = create_sampler(o.sampling);
  if (!sampler) return 1;
  std::unique_ptr<xent_sampler, decltype(&xent_sampler_free)> sampler_guard(sampler, xent_sampler_free);
  if (!gbnf.empty() && !set_grammar("run", sampler, model, gbnf)) return 1;

  if (!o.quiet) {
    std::fwrite(prompt.data(), 1, prompt.size(), stdout);
    std::fflush(stdout);
  }
  xent_generate_stats st{};
  const xent_status rc = xent_generate(ctx, sampler, prompt.c_str(), o.n_predict, print_piece, nullptr, &st);
  if (rc == XENT_ERROR_GRAMMAR) {
    std::fprintf(stderr, "\nxent run: generation ended after %d tokens: %s\n", st.n_generated, xent_last_error());
    return 1;
  }
  if (rc != XENT_OK) {
    std::fprintf(stderr, "\nxent run: %s\n", xent_last_error());
    return 1;
  }
  std::printf("\n");
  if (xent_sampler_grammar_state(sampler) == XENT_GRAMMAR_OPEN) {
    std::fflush(stdout);
    std::fprintf(stderr, "xent run: the output is incomplete under the grammar (stopped after %d tokens; raise -n)\n",
                 st.n_generated);
  }
  std::fflush(stdout);  // the text ends before the stats line when both go to one pipe
  std::fprintf(stderr, "prompt: %d tokens, %.1f ms, %.1f tok/s | generation: %d tokens, %.1f ms, %.1f tok/s | %s\n",
               st.n_prompt, st.prompt_ms, st.prompt_ms > 0 ? 1000.0 * st.n_prompt / st.prompt_ms : 0.0,
               st.n_generated, st.generate_ms,
               st.generate_ms > 0 ? 1000.0 * st.n_generated / st.generate_ms : 0.0, xent_context_backends(ctx));
  return 0;
}

}  // namespace

void add_run_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand("run", "complete a prompt and stream the text");
  add_model_options(*cmd, o->model);
  add_sampling_options(*cmd, o->sampling);
  add_grammar_options(*cmd, o->grammar);
  cmd->add_option("-p,--prompt", o->prompt, "prompt text");
  cmd->add_option("-f,--file", o->prompt_file, "read the prompt from a file");
  cmd->add_option("-n,--n-predict", o->n_predict, "tokens to generate (-1: until end or full context)");
  cmd->add_flag("-q,--quiet", o->quiet, "do not echo the prompt");
  cmd->callback([o, &exit_code] { exit_code = run(*o); });
}

}  // namespace xent::app
