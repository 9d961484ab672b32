// The `xent` executable: one binary, one subcommand per user task.
#include <cstdio>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"xent — local inference for quantized language models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "xent 0.1.0");
  int exit_code = 0;
  xent::app::add_run_command(app, exit_code);
  xent::app::add_chat_command(app, exit_code);
  xent::app::add_info_command(app, exit_code);
  xent::app::add_logits_command(app, exit_code);
  xent::app::add_tokenize_command(app, exit_code);
  xent::app::add_convert_command(app, exit_code);
  xent::app::add_quantize_command(app, exit_code);
  xent::app::add_perplexity_command(app, exit_code);
  xent::app::add_complete_command(app, exit_code);
  xent::app::add_serve_command(app, exit_code);
  xent::app::add_bench_autocomplete_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
