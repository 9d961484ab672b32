// `xent tokenize`: show how a model's tokenizer splits a text.
#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "common.h"
#include "formats/gguf.h"
#include "runtime/tokenizer/tokenizer.h"

namespace xent::app {
namespace {

struct TokenizeOptions {
  std::string model_path;
  std::string file;
  std::string prompt;
  bool no_bos = false;
  bool parse_special = false;
  bool ids = false;
};

int run(const TokenizeOptions& o) {
  std::string text = o.prompt;
  if (!o.file.empty() && !read_file(o.file, &text)) return 1;
  try {
    // Only the tokenizer is needed: no weights, no architecture check.
    std::unique_ptr<gguf::Reader> file = gguf::Reader::open(o.model_path);
    std::unique_ptr<Tokenizer> tok = Tokenizer::from_gguf(*file);
    const std::vector<int32_t> ids = tok->encode(text, !o.no_bos, o.parse_special);
    if (o.ids) {
      for (size_t i = 0; i < ids.size(); ++i) std::printf("%s%d", i ? " " : "", ids[i]);
      std::printf("\n");
    } else {
      for (int32_t id : ids) {
        std::string piece = tok->token_to_piece(id, true);
        std::printf("%6d -> '%s'\n", id, piece.c_str());
      }
    }
  } catch (const std::exception& e) {
    print_error("tokenize", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

void add_tokenize_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand("tokenize", "print the tokens of a text");
  cmd->add_option("-m,--model", o->model_path, "GGUF model (or vocabulary-only) file")->required();
  cmd->add_option("-f,--file", o->file, "text file");
  cmd->add_option("-p,--prompt", o->prompt, "text");
  cmd->add_flag("--no-bos", o->no_bos, "do not add BOS/EOS");
  cmd->add_flag("--parse-special", o->parse_special, "turn control-token text into control tokens");
  cmd->add_flag("--ids", o->ids, "print ids only, space-separated");
  cmd->callback([o, &exit_code] { exit_code = run(*o); });
}

}  // namespace xent::app
