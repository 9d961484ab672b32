// `xent convert`: a Hugging Face checkpoint folder (safetensors, config.json, tokenizer)
// to a GGUF file; the work is in formats/hf-convert.cpp, this is the command line.
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

namespace xent::app {
namespace {

struct ConvertOptions {
  hf::ConvertParams params;
  bool verbose = false;
  // Hidden: a random-weight model of a real shape, for benchmarks and docs/quantization.md.
  std::string synthetic, synthetic_vocab;
  uint64_t seed = 42;
};

// Llama-family layer shapes of published models (the vocabulary comes from another file).
struct SyntheticShape {
  const char* name;
  int64_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx;
};
constexpr SyntheticShape kShapes[] = {
    {"llama-1b", 2048, 16, 32, 8, 8192, 4096},         // Llama 3.2 1B
    {"tinyllama-1.1b", 2048, 22, 32, 4, 5632, 2048},   // TinyLlama 1.1B
    {"llama-7b", 4096, 32, 32, 32, 11008, 4096},       // Llama 2 7B
    {"llama-160m", 768, 12, 12, 12, 3072, 2048},       // a GPT-2-small-sized Llama
};

// Writes a Llama GGUF with seeded Gaussian F16 weights: each matrix scaled by
// 1/sqrt(fan_in) so activations keep their size through the layers, and an output
// matrix scaled for logits with a few units of spread (a peaked, not flat, distribution).
void write_synthetic(const ConvertOptions& o) {
  const SyntheticShape* shape = nullptr;
  for (const SyntheticShape& s : kShapes)
    if (o.synthetic == s.name) shape = &s;
  if (!shape) throw Error("unknown synthetic shape '" + o.synthetic + "'");
  if (o.synthetic_vocab.empty()) throw Error("--synthetic needs --synthetic-vocab FILE.gguf (its tokenizer is copied)");
  std::unique_ptr<gguf::Reader> vocab = gguf::Reader::open(o.synthetic_vocab);
  const auto tokens = vocab->get_string_array("tokenizer.ggml.tokens");
  if (!tokens) throw Error("'" + o.synthetic_vocab + "' has no tokenizer");
  const int64_t n_vocab = static_cast<int64_t>(tokens->size());
  const SyntheticShape& s = *shape;
  const int64_t hd = s.n_embd / s.n_head, kv = s.n_head_kv * hd;

  gguf::Writer w;
  w.set_string("general.architecture", "llama");
  w.set_string("general.name", std::string("synthetic-") + s.name);
  w.set_u32("llama.context_length", static_cast<uint32_t>(s.n_ctx));
  w.set_u32("llama.embedding_length", static_cast<uint32_t>(s.n_embd));
  w.set_u32("llama.block_count", static_cast<uint32_t>(s.n_layer));
  w.set_u32("llama.feed_forward_length", static_cast<uint32_t>(s.n_ff));
  w.set_u32("llama.attention.head_count", static_cast<uint32_t>(s.n_head));
  w.set_u32("llama.attention.head_count_kv", static_cast<uint32_t>(s.n_head_kv));
  w.set_u32("llama.rope.dimension_count", static_cast<uint32_t>(hd));
  w.set_u32("llama.vocab_size", static_cast<uint32_t>(n_vocab));
  w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.set_f32("llama.rope.freq_base", 10000.0f);
  for (const gguf::KeyValue& kv_ : vocab->kvs())
    if (kv_.key.rfind("tokenizer.", 0) == 0) w.copy_kv(kv_);
  w.set_u32("general.quantization_version", 2);
  w.set_u32("general.file_type", 1);

  std::deque<std::vector<uint8_t>> buffers;
  uint64_t counter = 0;
  // Each tensor has its own seed, so tensors can be generated on several threads.
  auto add = [&](const std::string& name, std::vector<int64_t> ne, float scale, float mean, bool f32) {
    const int64_t n = ne.size() == 1 ? ne[0] : ne[0] * ne[1];
    buffers.emplace_back(static_cast<size_t>(n) * (f32 ? 4 : 2));
    uint8_t* dst = buffers.back().data();
    const uint64_t seed = o.seed * 1000003 + counter++;
    const int n_threads = std::max(1u, std::thread::hardware_concurrency());
    std::vector<std::thread> pool;
    for (int t = 0; t < n_threads; ++t)
      pool.emplace_back([=] {
        std::mt19937_64 rng(seed * 65537 + static_cast<uint64_t>(t));
        std::normal_distribution<float> dist(mean, scale);
        for (int64_t i = t; i < n; i += n_threads) {
          const float v = dist(rng);
          if (f32) std::memcpy(dst + 4 * i, &v, 4);
          else {
            const uint16_t h = f32_to_fp16(v);
            std::memcpy(dst + 2 * i, &h, 2);
          }
        }
      });
    for (std::thread& t : pool) t.join();
    w.add_tensor(name, f32 ? DType::F32 : DType::F16, ne, dst, buffers.back().size());
  };
  const float d = static_cast<float>(s.n_embd);
  add("output.weight", {s.n_embd, n_vocab}, 3.0f / std::sqrt(d), 0, false);
  add("output_norm.weight", {s.n_embd}, 0.05f, 1.0f, true);
  add("token_embd.weight", {s.n_embd, n_vocab}, 1.0f, 0, false);
  for (int64_t l = 0; l < s.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    add(b + "attn_k.weight", {s.n_embd, kv}, 1.0f / std::sqrt(d), 0, false);
    add(b + "attn_norm.weight", {s.n_embd}, 0.05f, 1.0f, true);
    add(b + "attn_output.weight", {s.n_embd, s.n_embd}, 0.5f / std::sqrt(d), 0, false);
    add(b + "attn_q.weight", {s.n_embd, s.n_embd}, 1.0f / std::sqrt(d), 0, false);
    add(b + "attn_v.weight", {s.n_embd, kv}, 1.0f / std::sqrt(d), 0, false);
    add(b + "ffn_down.weight", {s.n_ff, s.n_embd}, 0.5f / std::sqrt(static_cast<float>(s.n_ff)), 0, false);
    add(b + "ffn_gate.weight", {s.n_embd, s.n_ff}, 1.0f / std::sqrt(d), 0, false);
    add(b + "ffn_norm.weight", {s.n_embd}, 0.05f, 1.0f, true);
    add(b + "ffn_up.weight", {s.n_embd, s.n_ff}, 1.0f / std::sqrt(d), 0, false);
  }
  w.write(o.params.output);
  uint64_t bytes = 0;
  for (const auto& b : buffers) bytes += b.size();
  std::fprintf(stderr, "xent convert: synthetic %s -> %s: %.2f GiB of F16 weights\n", s.name, o.params.output.c_str(),
               bytes / 1073741824.0);
}

int run(ConvertOptions& o) {
  try {
    if (!o.synthetic.empty()) {
      write_synthetic(o);
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
  // Hidden (empty group): generators of random-weight models for benchmarks.
  cmd->add_option("--synthetic", o->synthetic, "random-weight llama of a real shape")->group("");
  cmd->add_option("--synthetic-vocab", o->synthetic_vocab, "GGUF whose tokenizer the synthetic model uses")->group("");
  cmd->add_option("--seed", o->seed, "seed of the synthetic weights")->group("");
  cmd->callback([o, &exit_code] { exit_code = run(*o); });
}

}  // namespace xent::app
