// `xent convert`: a Hugging Face checkpoint folder (safetensors, config.json, tokenizer), or
// a PEFT LoRA folder (--lora), to a GGUF file; the work is in formats/hf-convert.cpp, this is
// the command line.
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "commands.h"
#include "common.h"
#include "formats/error.h"
#include "formats/gguf.h"
#include "formats/hf-convert.h"
#include "formats/quants.h"
#include "bench-synthetic.h"

namespace xent::app {
namespace {

struct ConvertOptions {
  hf::ConvertParams params;
  bool verbose = false;
  // Hidden: a random-weight model of a real shape, for benchmarks and docs/quantization.md.
  std::string synthetic, synthetic_vocab;
  uint64_t seed = 42;
  std::string lora_dir, lora_base;  // --lora ADAPTER_DIR --base BASE.gguf
};

// The generator lives with `xent bench --synthetic`; here it writes F16 weights.
void write_synthetic(const ConvertOptions& o) {
  SyntheticParams p;
  p.shape = o.synthetic;
  p.type = "F16";
  p.output = o.params.output;
  p.vocab_path = o.synthetic_vocab;
  p.seed = o.seed;
  const SyntheticResult r = write_synthetic_model(p);
  std::fprintf(stderr, "xent convert: synthetic %s -> %s: %.2fM parameters, %.2f GiB of F16 weights\n",
               o.synthetic.c_str(), o.params.output.c_str(), r.n_params / 1e6, r.tensor_bytes / 1073741824.0);
}

int run(ConvertOptions& o) {
  try {
    if (!o.synthetic.empty()) {
      write_synthetic(o);
      return 0;
    }
    if (!o.lora_dir.empty() || !o.lora_base.empty()) {
      if (o.lora_dir.empty() || o.lora_base.empty() || !o.params.dir.empty())
        throw Error("a LoRA adapter converts with --lora ADAPTER_DIR --base BASE.gguf -o ADAPTER.gguf (no checkpoint folder)");
      hf::LoraConvertParams lp;
      lp.dir = o.lora_dir;
      lp.base = o.lora_base;
      lp.output = o.params.output;
      lp.outtype = o.params.outtype;
      if (o.verbose) lp.log = [](const std::string& s) { std::fprintf(stderr, "  %s\n", s.c_str()); };
      const hf::LoraConvertResult r = hf::convert_lora(lp);
      std::fprintf(stderr, "xent convert: LoRA %s (%s, rank %" PRId64 ", alpha %g) -> %s: %zu targets, %s, %.2f MiB\n",
                   o.lora_dir.c_str(), r.arch.c_str(), r.rank, static_cast<double>(r.alpha), o.params.output.c_str(),
                   r.n_targets, dtype_name(r.type), r.tensor_bytes / 1048576.0);
      return 0;
    }
    if (o.params.dir.empty()) throw Error("give a checkpoint folder");
    if (o.verbose) o.params.log = [](const std::string& s) { std::fprintf(stderr, "  %s\n", s.c_str()); };
    const hf::ConvertResult r = hf::convert_checkpoint(o.params);
    std::fprintf(stderr, "xent convert: %s (%s) -> %s: %zu tensors, %.2fM parameters, %s, %.2f MiB\n",
                 o.params.dir.c_str(), r.hf_arch.c_str(), o.params.output.c_str(), r.n_tensors, r.n_params / 1e6,
                 dtype_name(r.type), r.tensor_bytes / 1048576.0);
  } catch (const std::exception& e) {
    print_error("convert", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

void add_convert_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<ConvertOptions>();
  CLI::App* cmd = app.add_subcommand("convert", "convert a Hugging Face checkpoint folder to GGUF");
  cmd->add_option("dir", o->params.dir, "checkpoint folder (config.json, *.safetensors, tokenizer)");
  cmd->add_option("-o,--output", o->params.output, "GGUF file to write")->required();
  cmd->add_option("--outtype", o->params.outtype, "type of the 2-D weights: auto (the checkpoint's), f32, f16, bf16, q8_0")
      ->check(CLI::IsMember({"auto", "f32", "f16", "bf16", "q8_0"}, CLI::ignore_case));
  cmd->add_option("--pre", o->params.pre, "tokenizer.ggml.pre to write instead of the detected one");
  cmd->add_option("--name", o->params.name, "general.name (default: the folder's name)");
  cmd->add_flag("-v,--verbose", o->verbose, "print each tensor's mapping");
  cmd->add_option("--lora", o->lora_dir, "convert a PEFT LoRA folder (adapter_config.json, adapter_model.safetensors) instead");
  cmd->add_option("--base", o->lora_base, "--lora: the GGUF base model the adapter was trained on");
  // Hidden (empty group): generators of random-weight models for benchmarks.
  cmd->add_option("--synthetic", o->synthetic, "random-weight model of a real shape (see xent bench --synthetic)")->group("");
  cmd->add_option("--synthetic-vocab", o->synthetic_vocab, "GGUF whose tokenizer the synthetic model uses (default: a synthetic byte-level one)")->group("");
  cmd->add_option("--seed", o->seed, "seed of the synthetic weights")->group("");
  cmd->callback([o, &exit_code] { exit_code = run(*o); });
}

}  // namespace xent::app
