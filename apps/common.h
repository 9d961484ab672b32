// Options shared by the subcommands that run a model (-m, -t, --backend, -c, sampling),
// and small helpers; built only on the public API in xent.h.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "xent.h"

namespace xent::app {

// LoRA adapters, as llama.cpp names the options: --lora FILE (scale 1) and --lora-scaled FILE
// SCALE, each repeatable.
struct LoraOptions {
  std::vector<std::string> files;
  std::vector<std::pair<std::string, float>> scaled;
  // Every adapter with its scale, the --lora ones first.
  std::vector<std::pair<std::string, float>> list() const;
};

struct ModelOptions {
  std::string model_path;
  int threads = 0;
  std::string backend = "cpu";
  int n_gpu_layers = -1;
  int ctx_size = 0;
  int batch_size = 512;
  bool no_mmap = false;
  bool mlock = false;
  std::string cache_type_k = "f16";  // "f16" or "q8_0", as llama.cpp's --cache-type-k
  std::string cache_type_v = "f16";
  LoraOptions lora;  // attached by create_context
};

struct SamplingOptions {
  float temperature = 0.8f;
  int top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repeat_penalty = 1.0f;
  int repeat_last_n = 64;
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  long long seed = -1;
};

// Structured output, as llama.cpp names the options: at most one of --grammar TEXT,
// --grammar-file FILE, -j/--json-schema SCHEMA, --json-schema-file FILE.
struct GrammarOptions {
  std::string grammar, grammar_file, json_schema, json_schema_file;
  bool any() const {
    return !grammar.empty() || !grammar_file.empty() || !json_schema.empty() || !json_schema_file.empty();
  }
};

void add_model_options(CLI::App& cmd, ModelOptions& o, bool model_required = true);
void add_grammar_options(CLI::App& cmd, GrammarOptions& o);
// The GBNF the options give ("" when none: *gbnf untouched); prints the error (a file that
// cannot be read, an unsupported schema keyword) and returns false on failure.
bool grammar_text(const char* cmd, const GrammarOptions& o, std::string* gbnf);
// Sets gbnf (non-empty) on the sampler; prints the grammar's syntax error and returns false.
bool set_grammar(const char* cmd, xent_sampler* sampler, const xent_model* model, const std::string& gbnf);
void add_sampling_options(CLI::App& cmd, SamplingOptions& o);
void add_lora_options(CLI::App& cmd, LoraOptions& o);  // add_model_options includes it

// Loads the model; prints one line on stderr and returns null on failure.
xent_model* load_model(const ModelOptions& o);
// Creates the context and attaches o.lora's adapters; prints one line and returns null on failure.
// n_seq_max > 1: that many sequences share the context (n_ctx is then the total).
xent_context* create_context(xent_model* model, const ModelOptions& o, int n_seq_max = 1, int n_ctx = -1);
xent_sampler* create_sampler(const SamplingOptions& o);

// Reads a whole file; prints an error and returns false on failure.
bool read_file(const std::string& path, std::string* out);

// Prints "xent <cmd>: message" on stderr.
void print_error(const char* cmd, const std::string& message);

}  // namespace xent::app
