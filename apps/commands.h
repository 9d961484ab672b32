// Each `xent` subcommand lives in its own file and adds itself to the CLI11 app here.
#pragma once
#include <CLI/CLI.hpp>

namespace xent::app {

// Each adder registers a subcommand; its callback sets `exit_code`.
void add_run_command(CLI::App& app, int& exit_code);
void add_info_command(CLI::App& app, int& exit_code);
void add_logits_command(CLI::App& app, int& exit_code);
void add_tokenize_command(CLI::App& app, int& exit_code);

}  // namespace xent::app
