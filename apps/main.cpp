// The `xent` executable: one binary, one subcommand per user task.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"xent — local inference for quantized language models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "xent 0.1.0");
  int exit_code = 0;
  xent::app::add_run_command(app, exit_code);
  xent::app::add_chat_command(app, exit_code);
  xent::app::add_complete_command(app, exit_code);
#ifndef XENT_NO_TOOLS  // tools/: left out of small-device builds (XENT_TOOLS=OFF)
  xent::app::add_info_command(app, exit_code);
  xent::app::add_logits_command(app, exit_code);
  xent::app::add_tokenize_command(app, exit_code);
  xent::app::add_convert_command(app, exit_code);
  xent::app::add_quantize_command(app, exit_code);
  xent::app::add_export_lora_command(app, exit_code);
  xent::app::add_perplexity_command(app, exit_code);
  xent::app::add_bench_autocomplete_command(app, exit_code);
  xent::app::add_bench_command(app, exit_code);
#endif
#ifndef XENT_NO_SERVER
  xent::app::add_serve_command(app, exit_code);
#endif
  // CLI11 takes only one-letter names after a single dash; llama.cpp users type -ngl.
  std::vector<std::string> args(argv + 1, argv + argc);
  for (std::string& a : args)
    for (const char* flag : {"-ngl", "-np", "-to", "-ctk", "-ctv"})
      if (a == flag || a.rfind(std::string(flag) + "=", 0) == 0) a.insert(0, "-");
  std::reverse(args.begin(), args.end());  // CLI11 takes them last-first
  app.name(argv[0]);                       // as parse(argc, argv) would, for the usage line
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
