#include "common.h"

#include <chrono>
#include <fstream>
#include <random>
#include <sstream>
#include <sys/stat.h>

namespace xent::app {

void add_model_options(CLI::App& cmd, ModelOptions& o, bool model_required) {
  auto* m = cmd.add_option("-m,--model", o.model_path, "GGUF model file");
  if (model_required) m->required();
  cmd.add_option("-t,--threads", o.threads, "CPU threads (0: all)")->check(CLI::Range(0, 1024));
  cmd.add_option("--backend", o.backend, "backends in preference order: cpu, vulkan, cuda (comma-separated)");
  cmd.add_option("--ngl,--n-gpu-layers", o.n_gpu_layers, "layers on the GPU backend (-1: all; -ngl works too)");
  cmd.add_option("-c,--ctx-size", o.ctx_size, "context size in tokens (0: model default)")
      ->check(CLI::Range(0, 1 << 24));
  cmd.add_option("-b,--batch-size", o.batch_size, "tokens per evaluation step")->check(CLI::Range(1, 1 << 16));
  cmd.add_flag("--no-mmap", o.no_mmap, "read the model into memory instead of mapping it");
  cmd.add_flag("--mlock", o.mlock, "lock the model in memory");
  cmd.add_option("--ctk,--cache-type-k", o.cache_type_k, "KV cache type of the keys: f16 or q8_0 (-ctk works too)")
      ->check(CLI::IsMember({"f16", "q8_0"}));
  cmd.add_option("--ctv,--cache-type-v", o.cache_type_v, "KV cache type of the values: f16 or q8_0 (-ctv works too)")
      ->check(CLI::IsMember({"f16", "q8_0"}));
  add_lora_options(cmd, o.lora);
}

void add_lora_options(CLI::App& cmd, LoraOptions& o) {
  cmd.add_option("--lora", o.files, "LoRA adapter (GGUF) applied with scale 1; repeatable");
  cmd.add_option("--lora-scaled", o.scaled, "LoRA adapter and its scale: --lora-scaled FILE SCALE; repeatable");
}

std::vector<std::pair<std::string, float>> LoraOptions::list() const {
  std::vector<std::pair<std::string, float>> out;
  for (const std::string& f : files) out.emplace_back(f, 1.0f);
  out.insert(out.end(), scaled.begin(), scaled.end());
  return out;
}

void add_sampling_options(CLI::App& cmd, SamplingOptions& o) {
  cmd.add_option("--temp", o.temperature, "temperature (0: greedy)")->check(CLI::Range(0.0f, 100.0f));
  cmd.add_option("--top-k", o.top_k, "top-k (0: off)")->check(CLI::Range(0, 1 << 20));
  cmd.add_option("--top-p", o.top_p, "top-p (1: off)")->check(CLI::Range(0.0f, 1.0f));
  cmd.add_option("--min-p", o.min_p, "min-p (0: off)")->check(CLI::Range(0.0f, 1.0f));
  cmd.add_option("--repeat-penalty", o.repeat_penalty, "repetition penalty (1: off)")->check(CLI::Range(0.01f, 100.0f));
  cmd.add_option("--repeat-last-n", o.repeat_last_n, "tokens the penalties look back")->check(CLI::Range(0, 1 << 20));
  cmd.add_option("--frequency-penalty", o.frequency_penalty, "frequency penalty");
  cmd.add_option("--presence-penalty", o.presence_penalty, "presence penalty");
  cmd.add_option("-s,--seed", o.seed, "random seed (-1: from the clock)");
}

void print_error(const char* cmd, const std::string& message) {
  std::fprintf(stderr, "xent %s: %s\n", cmd, message.c_str());
}

xent_model* load_model(const ModelOptions& o) {
  struct stat st;
  if (stat(o.model_path.c_str(), &st) != 0) {
    std::fprintf(stderr, "xent: cannot open model '%s': no such file\n", o.model_path.c_str());
    return nullptr;
  }
  if (S_ISDIR(st.st_mode)) {
    std::fprintf(stderr, "xent: '%s' is a directory, not a GGUF model file\n", o.model_path.c_str());
    return nullptr;
  }
  xent_model_params mp = xent_model_default_params();
  mp.use_mmap = !o.no_mmap;
  mp.use_mlock = o.mlock;
  xent_model* model = xent_model_load(o.model_path.c_str(), &mp);
  if (!model) std::fprintf(stderr, "xent: cannot load '%s': %s\n", o.model_path.c_str(), xent_last_error());
  return model;
}

xent_context* create_context(xent_model* model, const ModelOptions& o, int n_seq_max, int n_ctx) {
  xent_context_params cp = xent_context_default_params();
  cp.n_ctx = n_ctx >= 0 ? n_ctx : o.ctx_size;
  cp.n_seq_max = n_seq_max;
  cp.n_threads = o.threads;
  cp.n_batch = o.batch_size;
  cp.backends = o.backend.c_str();
  cp.n_gpu_layers = o.n_gpu_layers;
  cp.type_k = o.cache_type_k == "q8_0" ? XENT_CACHE_TYPE_Q8_0 : XENT_CACHE_TYPE_F16;
  cp.type_v = o.cache_type_v == "q8_0" ? XENT_CACHE_TYPE_Q8_0 : XENT_CACHE_TYPE_F16;
  xent_context* ctx = xent_context_create(model, &cp);
  if (!ctx) {
    std::fprintf(stderr, "xent: cannot create a context: %s\n", xent_last_error());
    return nullptr;
  }
  for (const auto& [path, scale] : o.lora.list()) {
    // The context keeps what it uses of the adapter; the handle is not needed after attaching.
    xent_lora* lora = xent_lora_load(model, path.c_str());
    const bool ok = lora && xent_context_lora_attach(ctx, lora, scale) == XENT_OK;
    if (!ok) std::fprintf(stderr, "xent: cannot apply LoRA adapter '%s': %s\n", path.c_str(), xent_last_error());
    xent_lora_free(lora);
    if (!ok) {
      xent_context_free(ctx);
      return nullptr;
    }
  }
  return ctx;
}

void add_grammar_options(CLI::App& cmd, GrammarOptions& o) {
  auto* g = cmd.add_option("--grammar", o.grammar, "constrain the output to a GBNF grammar (rule root)");
  auto* gf = cmd.add_option("--grammar-file", o.grammar_file, "GBNF grammar from a file");
  auto* j = cmd.add_option("-j,--json-schema", o.json_schema, "constrain the output to JSON valid under a JSON Schema");
  auto* jf = cmd.add_option("--json-schema-file", o.json_schema_file, "JSON Schema from a file");
  const std::vector<CLI::Option*> all = {g, gf, j, jf};
  for (CLI::Option* a : all)
    for (CLI::Option* b : all)
      if (a != b) a->excludes(b);
}

bool grammar_text(const char* cmd, const GrammarOptions& o, std::string* gbnf) {
  std::string schema = o.json_schema;
  if (!o.grammar.empty()) *gbnf = o.grammar;
  if (!o.grammar_file.empty() && !read_file(o.grammar_file, gbnf)) return false;
  if (!o.json_schema_file.empty() && !read_file(o.json_schema_file, &schema)) return false;
  if (schema.empty()) return true;
  char* g = xent_json_schema_to_grammar(schema.c_str());
  if (!g) {
    print_error(cmd, xent_last_error());
    return false;
  }
  *gbnf = g;
  xent_string_free(g);
  return true;
}

bool set_grammar(const char* cmd, xent_sampler* sampler, const xent_model* model, const std::string& gbnf) {
  if (xent_sampler_set_grammar(sampler, model, gbnf.c_str(), nullptr) == XENT_OK) return true;
  print_error(cmd, xent_last_error());
  return false;
}

xent_sampler* create_sampler(const SamplingOptions& o) {
  xent_sampler_params sp = xent_sampler_default_params();
  sp.temperature = o.temperature;
  sp.top_k = o.top_k;
  sp.top_p = o.top_p;
  sp.min_p = o.min_p;
  sp.repeat_penalty = o.repeat_penalty;
  sp.repeat_last_n = o.repeat_last_n;
  sp.frequency_penalty = o.frequency_penalty;
  sp.presence_penalty = o.presence_penalty;
  sp.seed = o.seed >= 0 ? static_cast<uint64_t>(o.seed)
                        : static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  xent_sampler* s = xent_sampler_create(&sp);
  if (!s) std::fprintf(stderr, "xent: invalid sampling options: %s\n", xent_last_error());
  return s;
}

bool read_file(const std::string& path, std::string* out) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) {
    std::fprintf(stderr, "xent: cannot read '%s'\n", path.c_str());
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "xent: cannot read '%s'\n", path.c_str());
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

}  // namespace xent::app
