// Random-weight GGUF models of real shapes for benchmarks: seeded Gaussian weights in the
// types `xent quantize` would choose, and a synthetic byte-level BPE vocabulary.
#include "bench-synthetic.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "formats/error.h"
#include "formats/gguf.h"
#include "formats/hf-convert.h"
#include "formats/quants.h"
#include "quantize.h"

namespace xent::app {
namespace {

// Shapes of published models (and two tiny ones for tests). n_vocab is the real model's;
// a vocabulary copied from another file replaces it.
enum class RopeScaling { None, Llama3, Yarn, Linear, LongRope };
struct SyntheticShape {
  const char* name;
  const char* arch;  // "llama", "qwen2", "qwen3", "gemma2", "gemma3", "phi3" or "gpt2"
  int64_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx, n_vocab;
  float rope_base;
  // No output.weight: the token embedding is the output matrix. GPT-2 is tied too, but its
  // GGUF files carry output.weight as a separate tensor (the peer's converter writes a copy
  // and its loader requires it), so the gpt2 shapes are written that way.
  bool tied;
  // Llama3: rope_freqs.weight from (factor, low 1, high 4, original context); Yarn:
  // rope.scaling.type yarn with that factor and original context; Linear: rope.scaling.type
  // linear with that factor (gemma3: the global layers'); LongRope: Phi-3's short and long
  // factor tensors, with context_length / original context as the long factors' top and
  // the attention factor the peer's converter derives from it.
  RopeScaling scaling = RopeScaling::None;
  float scaling_factor = 0;
  int64_t scaling_orig_ctx = 0;
  // Output matrix stddev times sqrt(n_embd): the logits' spread. The reference shapes use
  // more than the default so that most positions have a clear top-1 (a margin >= 1).
  float logit_std = 3.0f;
  int64_t head_dim = 0;  // 0: n_embd / n_head
  int64_t window = 0;    // gemma2, gemma3, phi3: attention.sliding_window
};

int64_t head_dim_of(const SyntheticShape& s) { return s.head_dim ? s.head_dim : s.n_embd / s.n_head; }
constexpr SyntheticShape kShapes[] = {
    {"gpt2-124m", "gpt2", 768, 12, 12, 12, 3072, 1024, 50257, 0, false},                // GPT-2 small
    {"smollm2-135m", "llama", 576, 30, 9, 3, 1536, 8192, 49152, 100000, true},          // SmolLM2 135M
    {"llama-1b", "llama", 2048, 16, 32, 8, 8192, 131072, 128256, 500000, true},         // Llama 3.2 1B
    {"tinyllama-1.1b", "llama", 2048, 22, 32, 4, 5632, 2048, 32000, 10000, false},      // TinyLlama 1.1B
    {"llama-7b", "llama", 4096, 32, 32, 32, 11008, 4096, 32000, 10000, false},          // Llama 2 7B
    {"llama-160m", "llama", 768, 12, 12, 12, 3072, 2048, 32000, 10000, false},          // GPT-2-small-sized llama
    {"gemma2-2b", "gemma2", 2304, 26, 8, 4, 9216, 8192, 256000, 10000, true, RopeScaling::None, 0, 0, 3.0f, 256, 4096},  // Gemma 2 2B
    {"qwen3-1.7b", "qwen3", 2048, 28, 16, 8, 6144, 40960, 151936, 1000000, true, RopeScaling::None, 0, 0, 3.0f, 128},  // Qwen3 1.7B
    {"gemma3-1b", "gemma3", 1152, 26, 4, 1, 6912, 32768, 262144, 1000000, true, RopeScaling::None, 0, 0, 3.0f, 256, 512},  // Gemma 3 1B
    {"phi-mini-3.8b", "phi3", 3072, 32, 32, 32, 8192, 131072, 32064, 10000, false, RopeScaling::LongRope, 0, 4096, 3.0f, 0, 262144},  // Phi-3.5-mini (named so that the peer reads the vocabulary plainly, see tiny-phi)
    {"tiny-test", "llama", 64, 2, 4, 2, 128, 256, 512, 10000, false},                   // tests only
    {"tiny-test-gpt2", "gpt2", 64, 2, 4, 4, 256, 128, 512, 0, false},                   // tests only
    // Reference-logit shapes (tests/models/reference): Llama 3.2's head ratio and rope
    // scaling, with a short original context so the scaled pairs matter in short prompts;
    // Qwen2.5's YaRN the same way.
    {"tiny-llama3", "llama", 256, 4, 8, 2, 768, 2048, 8192, 500000, true, RopeScaling::Llama3, 32, 64, 4.5f},
    {"tiny-qwen2-yarn", "qwen2", 256, 3, 8, 2, 768, 1024, 8192, 10000, false, RopeScaling::Yarn, 4, 64, 8.0f},
    // Gemma 2 2B's depth (26 layers: the peer knows Gemma 2 only at its published depths),
    // its head ratio and a head size that makes q wider than the embedding; a 32-token window.
    {"tiny-gemma2", "gemma2", 192, 26, 4, 2, 512, 8192, 8192, 10000, true, RopeScaling::None, 0, 0, 4.5f, 64, 32},
    // Qwen3 0.6B's ratios: q twice as wide as the embedding, GQA 2, tied.
    {"tiny-qwen3", "qwen3", 256, 4, 8, 4, 768, 40960, 8192, 1000000, true, RopeScaling::None, 0, 0, 4.5f, 64},
    // Gemma 3 4B's pattern at 12 layers (two global, 5 and 11), one KV head, its linear rope
    // scaling on the global layers, a 32-token window.
    {"tiny-gemma3", "gemma3", 192, 12, 4, 1, 512, 131072, 8192, 1000000, true, RopeScaling::Linear, 8, 0, 4.5f, 64,
     32},
    // Phi-3.5-mini's LongRoPE with a 64-token original context (every reference prompt runs
    // on the long factors), GQA as in Phi-4-mini, untied, a 32-token window on every layer.
    // Not "tiny-phi3": the peer keys Phi-3 token attributes on a general.name containing
    // "phi3", which the borrowed vocabulary lacks the tokens for.
    {"tiny-phi", "phi3", 256, 4, 8, 4, 768, 4096, 8192, 10000, false, RopeScaling::LongRope, 0, 64, 9.0f, 0, 32},
};

// One tensor to draw: N(mean, stddev) in F32, converted to `type`.
struct Spec {
  std::string name;
  std::vector<int64_t> ne;
  float stddev, mean;
};

uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// splitmix64: a fast generator; each chunk of rows starts at a hashed point of the
// sequence, so chunks can be drawn on any thread in any order.
struct Rng {
  uint64_t s;
  uint64_t next() { return mix64(s += 0x9E3779B97F4A7C15ull); }
  double uniform_open() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }  // (0, 1)
};

// Box-Muller: two standard normals per two uniforms.
void fill_normal(Rng& rng, float* dst, int64_t n, float mean, float stddev) {
  for (int64_t i = 0; i < n; i += 2) {
    const double r = std::sqrt(-2.0 * std::log(rng.uniform_open()));
    const double a = 6.283185307179586 * rng.uniform_open();
    dst[i] = mean + stddev * static_cast<float>(r * std::cos(a));
    if (i + 1 < n) dst[i + 1] = mean + stddev * static_cast<float>(r * std::sin(a));
  }
}

// GPT-2's byte -> printable code point map: printable Latin-1 bytes stand for themselves,
// the rest get code points from 256 up, in byte order.
std::vector<std::pair<int, int>> byte_chars() {
  std::vector<std::pair<int, int>> out;  // (byte, code point), in GPT-2's vocabulary order
  std::vector<bool> printable(256, false);
  for (int b = 0; b < 256; ++b)
    printable[b] = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  for (int b = 0; b < 256; ++b)
    if (printable[b]) out.emplace_back(b, b);
  int n = 0;
  for (int b = 0; b < 256; ++b)
    if (!printable[b]) out.emplace_back(b, 256 + n++);
  return out;
}

std::string utf8(int cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// A byte-level BPE vocabulary of exactly n_vocab entries: the 256 byte tokens, a few
// merges, filler tokens, and <|endoftext|> (BOS and EOS) last. Any text tokenizes.
void set_synthetic_vocab(gguf::Writer& w, int64_t n_vocab) {
  std::vector<std::string> tokens;
  std::string space;
  for (const auto& [byte, cp] : byte_chars()) {
    tokens.push_back(utf8(cp));
    if (byte == ' ') space = tokens.back();
  }
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {space, "t"}, {space, "a"}, {"h", "e"}, {"i", "n"}, {"r", "e"}, {"o", "n"}, {space + "t", "he"}, {"e", "r"}};
  std::vector<std::string> merges;
  for (const auto& [a, b] : pairs) {
    merges.push_back(a + " " + b);
    tokens.push_back(a + b);
  }
  if (n_vocab < static_cast<int64_t>(tokens.size()) + 1)
    throw Error("synthetic vocabulary: " + std::to_string(n_vocab) + " tokens are too few (at least " +
                std::to_string(tokens.size() + 1) + ")");
  while (static_cast<int64_t>(tokens.size()) < n_vocab - 1) tokens.push_back("<fill" + std::to_string(tokens.size()) + ">");
  tokens.push_back("<|endoftext|>");
  std::vector<int32_t> types(tokens.size(), 1);  // normal
  types.back() = 3;                              // control
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "gpt-2");
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_i32_array("tokenizer.ggml.token_type", types);
  w.set_string_array("tokenizer.ggml.merges", merges);
  w.set_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(n_vocab - 1));
  w.set_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(n_vocab - 1));
}

// Each matrix is scaled by 1/sqrt(fan_in) so activations keep their size through the
// layers; the output matrix for logits with a few units of spread.
std::vector<Spec> tensor_specs(const SyntheticShape& s, int64_t n_vocab) {
  const int64_t d = s.n_embd, hd = head_dim_of(s), kv = s.n_head_kv * hd, q_dim = s.n_head * hd;
  const float inv = 1.0f / std::sqrt(static_cast<float>(d)), inv_ff = 1.0f / std::sqrt(static_cast<float>(s.n_ff));
  const float embd_std = s.tied ? s.logit_std * inv : 1.0f;
  std::vector<Spec> v;
  v.push_back({"token_embd.weight", {d, n_vocab}, embd_std, 0});
  if (!s.tied) v.push_back({"output.weight", {d, n_vocab}, s.logit_std * inv, 0});
  v.push_back({"output_norm.weight", {d}, 0.05f, 1.0f});
  const bool gpt2 = std::string(s.arch) == "gpt2";
  if (gpt2) {
    v.push_back({"position_embd.weight", {d, s.n_ctx}, 0.5f * embd_std, 0});
    v.push_back({"output_norm.bias", {d}, 0.02f, 0});
  }
  for (int64_t l = 0; l < s.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    v.push_back({b + "attn_norm.weight", {d}, 0.05f, 1.0f});
    v.push_back({b + "ffn_norm.weight", {d}, 0.05f, 1.0f});
    v.push_back({b + "attn_output.weight", {q_dim, d}, 0.5f / std::sqrt(static_cast<float>(q_dim)), 0});
    const std::string arch = s.arch;
    // Phi-3 keeps gate and up in one matrix, gate first.
    v.push_back({b + "ffn_up.weight", {d, arch == "phi3" ? 2 * s.n_ff : s.n_ff}, inv, 0});
    v.push_back({b + "ffn_down.weight", {s.n_ff, d}, 0.5f * inv_ff, 0});
    if (gpt2) {
      v.push_back({b + "attn_norm.bias", {d}, 0.02f, 0});
      v.push_back({b + "ffn_norm.bias", {d}, 0.02f, 0});
      v.push_back({b + "attn_qkv.weight", {d, 3 * d}, inv, 0});
      v.push_back({b + "attn_qkv.bias", {3 * d}, 0.02f, 0});
      v.push_back({b + "attn_output.bias", {d}, 0.02f, 0});
      v.push_back({b + "ffn_up.bias", {s.n_ff}, 0.02f, 0});
      v.push_back({b + "ffn_down.bias", {d}, 0.02f, 0});
    } else if (arch == "phi3") {
      v.push_back({b + "attn_qkv.weight", {d, q_dim + 2 * kv}, inv, 0});
    } else {
      v.push_back({b + "attn_q.weight", {d, q_dim}, inv, 0});
      v.push_back({b + "attn_k.weight", {d, kv}, inv, 0});
      v.push_back({b + "attn_v.weight", {d, kv}, inv, 0});
      v.push_back({b + "ffn_gate.weight", {d, s.n_ff}, inv, 0});
      if (arch == "gemma2" || arch == "gemma3") {
        v.push_back({b + "post_attention_norm.weight", {d}, 0.05f, 1.0f});
        v.push_back({b + "post_ffw_norm.weight", {d}, 0.05f, 1.0f});
      }
      if (arch == "qwen3" || arch == "gemma3") {  // per-head Q/K RMSNorm
        v.push_back({b + "attn_q_norm.weight", {hd}, 0.2f, 1.0f});
        v.push_back({b + "attn_k_norm.weight", {hd}, 0.2f, 1.0f});
      }
      if (arch == "qwen2") {
        v.push_back({b + "attn_q.bias", {d}, 0.02f, 0});
        v.push_back({b + "attn_k.bias", {kv}, 0.02f, 0});
        v.push_back({b + "attn_v.bias", {kv}, 0.02f, 0});
      }
    }
  }
  std::stable_sort(v.begin(), v.end(), [](const Spec& a, const Spec& b) { return hf::tensor_name_order(a.name, b.name); });
  return v;
}

// Draws one tensor in chunks of rows on n_threads threads and converts each chunk to
// `type` right away; chunk k of tensor i always gets the same stream.
void draw_tensor(const Spec& t, DType type, uint64_t seed, uint64_t index, uint8_t* dst, int n_threads) {
  const int64_t n_per_row = t.ne[0], nrows = t.ne.size() > 1 ? t.ne[1] : 1;
  const size_t row_bytes = dtype_row_bytes(type, n_per_row);
  const int64_t chunk_rows = std::max<int64_t>(1, 65536 / n_per_row);
  const int64_t n_chunks = (nrows + chunk_rows - 1) / chunk_rows;
  std::atomic<int64_t> next{0};
  auto work = [&] {
    std::vector<float> buf(static_cast<size_t>(chunk_rows * n_per_row));
    for (int64_t c; (c = next.fetch_add(1)) < n_chunks;) {
      const int64_t r0 = c * chunk_rows, n = std::min(chunk_rows, nrows - r0);
      Rng rng{mix64(mix64(mix64(seed) ^ index) ^ static_cast<uint64_t>(c))};
      fill_normal(rng, buf.data(), n * n_per_row, t.mean, t.stddev);
      quantize_rows(type, buf.data(), dst + r0 * row_bytes, n, n_per_row);
    }
  };
  std::vector<std::thread> pool;
  const int64_t useful = std::max<int64_t>(1, std::min<int64_t>(n_threads, n_chunks));
  for (int64_t i = 1; i < useful; ++i) pool.emplace_back(work);
  work();
  for (std::thread& th : pool) th.join();
}

}  // namespace

std::string synthetic_shape_names() {
  std::string s;
  for (const SyntheticShape& sh : kShapes) s += (s.empty() ? "" : ", ") + std::string(sh.name);
  return s;
}

SyntheticResult write_synthetic_model(const SyntheticParams& p) {
  const SyntheticShape* shape = nullptr;
  for (const SyntheticShape& s : kShapes)
    if (p.shape == s.name) shape = &s;
  if (!shape) throw Error("unknown synthetic shape '" + p.shape + "' (known: " + synthetic_shape_names() + ")");
  const FileType* ft = find_file_type(p.type);
  if (!ft) throw Error("unknown type '" + p.type + "' (known: " + file_type_names() + ")");
  if (p.output.empty()) throw Error("give the file to write (-o out.gguf)");
  const SyntheticShape& s = *shape;
  const std::string arch = s.arch;
  const int64_t hd = head_dim_of(s);
  const int n_threads = p.n_threads > 0 ? p.n_threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));

  gguf::Writer w;
  w.set_string("general.architecture", arch);
  w.set_string("general.name", "synthetic-" + p.shape);
  const auto u32 = [](int64_t v) { return static_cast<uint32_t>(v); };
  w.set_u32(arch + ".context_length", u32(s.n_ctx));
  w.set_u32(arch + ".embedding_length", u32(s.n_embd));
  w.set_u32(arch + ".block_count", u32(s.n_layer));
  w.set_u32(arch + ".feed_forward_length", u32(s.n_ff));
  w.set_u32(arch + ".attention.head_count", u32(s.n_head));
  int64_t n_vocab = s.n_vocab;
  std::unique_ptr<gguf::Reader> vocab;
  if (!p.vocab_path.empty()) {
    vocab = gguf::Reader::open(p.vocab_path);
    const auto tokens = vocab->get_string_array("tokenizer.ggml.tokens");
    if (!tokens) throw Error("'" + p.vocab_path + "' has no tokenizer");
    n_vocab = static_cast<int64_t>(tokens->size());
  }
  if (arch == "gpt2") {
    w.set_f32("gpt2.attention.layer_norm_epsilon", 1e-5f);
  } else {
    w.set_u32(arch + ".attention.head_count_kv", u32(s.n_head_kv));
    w.set_u32(arch + ".rope.dimension_count", u32(hd));
    w.set_u32(arch + ".vocab_size", u32(n_vocab));
    const bool gemma = arch == "gemma2" || arch == "gemma3";
    w.set_f32(arch + ".attention.layer_norm_rms_epsilon", gemma ? 1e-6f : 1e-5f);
    w.set_f32(arch + ".rope.freq_base", s.rope_base);
    if (gemma || arch == "qwen3") {
      w.set_u32(arch + ".attention.key_length", u32(hd));
      w.set_u32(arch + ".attention.value_length", u32(hd));
    }
    if (s.window > 0) w.set_u32(arch + ".attention.sliding_window", u32(s.window));
    if (arch == "gemma2") {
      // Gemma 2 uses 50, which scores of random weights never approach: a cap they reach
      // makes the reference test the soft-capping.
      w.set_f32(arch + ".attn_logit_softcapping", 2.0f);
      w.set_f32(arch + ".final_logit_softcapping", 30.0f);
    }
    if (s.scaling == RopeScaling::Yarn) {
      w.set_string(arch + ".rope.scaling.type", "yarn");
      w.set_f32(arch + ".rope.scaling.factor", s.scaling_factor);
      w.set_u32(arch + ".rope.scaling.original_context_length", u32(s.scaling_orig_ctx));
    }
    if (s.scaling == RopeScaling::Linear) {
      w.set_string(arch + ".rope.scaling.type", "linear");
      w.set_f32(arch + ".rope.scaling.factor", s.scaling_factor);
    }
    if (s.scaling == RopeScaling::LongRope) {
      // What the peer's converter writes for Phi-3: the original context and
      // sqrt(1 + ln(scale) / ln(original)), no scaling type.
      const double scale = static_cast<double>(s.n_ctx) / static_cast<double>(s.scaling_orig_ctx);
      w.set_u32(arch + ".rope.scaling.original_context_length", u32(s.scaling_orig_ctx));
      w.set_f32(arch + ".rope.scaling.attn_factor",
                static_cast<float>(std::sqrt(1.0 + std::log(scale) / std::log(static_cast<double>(s.scaling_orig_ctx)))));
    }
  }
  if (vocab) {
    for (const gguf::KeyValue& kv : vocab->kvs())
      if (kv.key.rfind("tokenizer.", 0) == 0) w.copy_kv(kv);
  } else {
    set_synthetic_vocab(w, n_vocab);
  }
  w.set_u32("general.quantization_version", 2);
  w.set_u32("general.file_type", ft->id);

  MixState mix;
  mix.n_layer = s.n_layer;
  mix.n_gqa = s.n_head / s.n_head_kv;
  mix.has_output = !s.tied;
  mix.n_attention_wv = static_cast<int>(s.n_layer);  // one attn_v (or attn_qkv) per layer

  SyntheticResult r;
  r.arch = arch;
  r.n_vocab = n_vocab;
  std::deque<std::vector<uint8_t>> buffers;  // must outlive w.write()
  const std::vector<Spec> specs = tensor_specs(s, n_vocab);
  for (size_t i = 0; i < specs.size(); ++i) {
    const Spec& t = specs[i];
    gguf::TensorInfo info;
    info.name = t.name;
    info.type = DType::F32;
    info.n_dims = static_cast<int>(t.ne.size());
    for (size_t d = 0; d < t.ne.size(); ++d) info.ne[d] = t.ne[d];
    const DType type = planned_tensor_type(*ft, info, mix, false);
    if (t.ne[0] % dtype_block_elems(type) != 0)
      throw Error("tensor '" + t.name + "': rows of " + std::to_string(t.ne[0]) + " are not whole " + dtype_name(type) +
                  " blocks");
    const int64_t nrows = info.n_elements() / t.ne[0];
    buffers.emplace_back(dtype_row_bytes(type, t.ne[0]) * static_cast<size_t>(nrows));
    draw_tensor(t, type, p.seed, i, buffers.back().data(), n_threads);
    w.add_tensor(t.name, type, t.ne, buffers.back().data(), buffers.back().size());
    r.n_params += static_cast<uint64_t>(info.n_elements());
    r.tensor_bytes += buffers.back().size();
  }
  std::vector<float> rope_factors;  // must outlive w.write()
  if (s.scaling == RopeScaling::Llama3) {
    rope_factors = hf::llama3_rope_factors(s.rope_base, hd, s.scaling_factor, 1.0, 4.0,
                                           static_cast<double>(s.scaling_orig_ctx));
    w.add_tensor("rope_freqs.weight", DType::F32, {static_cast<int64_t>(rope_factors.size())}, rope_factors.data(),
                 rope_factors.size() * sizeof(float));
    r.n_params += rope_factors.size();
    r.tensor_bytes += rope_factors.size() * sizeof(float);
  }
  std::vector<float> long_factors, short_factors;  // must outlive w.write()
  if (s.scaling == RopeScaling::LongRope) {
    // Rising with the pair index as the published factors do: short ones from 1 to 1.5,
    // long ones from 1 to the context's stretch.
    const int64_t half = s.n_embd / s.n_head / 2;
    const double stretch = static_cast<double>(s.n_ctx) / static_cast<double>(s.scaling_orig_ctx);
    for (int64_t i = 0; i < half; ++i) {
      const double t = static_cast<double>(i) / static_cast<double>(half - 1);
      short_factors.push_back(static_cast<float>(1.0 + 0.5 * t * t));
      long_factors.push_back(static_cast<float>(1.0 + (stretch - 1.0) * t * t));
    }
    for (const auto& [name, f] : {std::pair{"rope_factors_long.weight", &long_factors},
                                  std::pair{"rope_factors_short.weight", &short_factors}}) {
      w.add_tensor(name, DType::F32, {half}, f->data(), f->size() * sizeof(float));
      r.n_params += f->size();
      r.tensor_bytes += f->size() * sizeof(float);
    }
  }
  w.write(p.output);
  return r;
}

SyntheticLoraResult write_synthetic_lora(const SyntheticLoraParams& p) {
  if (p.rank < 1) throw Error("--synthetic-lora: the rank must be at least 1");
  DType type;
  if (!dtype_from_name(p.type, &type) || (type != DType::F32 && type != DType::F16 && type != DType::BF16))
    throw Error("--synthetic-lora: --type must be F32, F16 or BF16, not '" + p.type + "'");
  const auto base = gguf::Reader::open(p.base_path);
  const std::string arch = base->get_string("general.architecture").value_or("");
  if (arch.empty()) throw Error("--synthetic-lora: '" + p.base_path + "' has no general.architecture");
  std::vector<std::string> wanted;
  {
    std::string cur;
    for (const char c : p.targets + ",")
      if (c == ',') {
        if (!cur.empty()) wanted.push_back(cur);
        cur.clear();
      } else if (c != ' ') {
        cur += c;
      }
  }
  // "blk.3.attn_q.weight" -> "attn_q"; "output.weight" -> "output".
  auto stem = [](const std::string& name) {
    std::string s = name.substr(0, name.size() - 7);
    if (s.rfind("blk.", 0) == 0) s = s.substr(s.find('.', 4) + 1);
    return s;
  };
  struct Target {
    const gguf::TensorInfo* w;
    bool embedding;
  };
  std::vector<Target> targets;
  std::vector<bool> used(wanted.size(), false);
  for (const gguf::TensorInfo& t : base->tensors()) {
    const std::string& n = t.name;
    if (n.size() < 8 || n.compare(n.size() - 7, 7, ".weight") != 0 || t.n_dims != 2) continue;
    const std::string st = stem(n);
    bool take = false;
    if (wanted.empty()) {
      take = n.rfind("blk.", 0) == 0 || n == "output.weight";
    } else {
      for (size_t i = 0; i < wanted.size(); ++i)
        if (wanted[i] == st) take = used[i] = true;
    }
    if (take) targets.push_back({&t, n == "token_embd.weight"});
  }
  for (size_t i = 0; i < wanted.size(); ++i)
    if (!used[i]) throw Error("--synthetic-lora: the base model has no 2-D weight '" + wanted[i] + "'");
  if (targets.empty()) throw Error("--synthetic-lora: nothing to adapt in '" + p.base_path + "'");

  gguf::Writer w;
  w.set_string("general.architecture", arch);
  w.set_string("general.type", "adapter");
  w.set_string("general.name", "synthetic lora r" + std::to_string(p.rank));
  w.set_string("adapter.type", "lora");
  w.set_f32("adapter.lora.alpha", p.alpha > 0.0f ? p.alpha : 2.0f * static_cast<float>(p.rank));
  std::deque<std::vector<uint8_t>> bytes;  // must outlive w.write()
  std::deque<std::string> names;
  SyntheticLoraResult r;
  uint64_t index = 0;
  for (const Target& t : targets) {
    const int64_t n_in = t.w->ne[0], n_out = t.w->ne[1];
    // (ne0, ne1, stddev) of a and b; see the header.
    const int64_t a_ne[2] = {t.embedding ? p.rank : n_in, t.embedding ? n_out : p.rank};
    const int64_t b_ne[2] = {p.rank, t.embedding ? n_in : n_out};
    const float a_sd = 1.0f / std::sqrt(static_cast<float>(t.embedding ? p.rank : n_in));
    for (int ab = 0; ab < 2; ++ab) {
      const int64_t* ne = ab == 0 ? a_ne : b_ne;
      const int64_t n = ne[0] * ne[1];
      std::vector<float> f(static_cast<size_t>(n));
      Rng rng{mix64(mix64(p.seed) ^ ++index)};
      fill_normal(rng, f.data(), n, 0.0f, ab == 0 ? a_sd : p.b_stddev);
      std::vector<uint8_t>& out = bytes.emplace_back(dtype_row_bytes(type, ne[0]) * static_cast<size_t>(ne[1]));
      if (type == DType::F32) {
        std::memcpy(out.data(), f.data(), out.size());
      } else {
        auto* h = reinterpret_cast<uint16_t*>(out.data());
        for (int64_t i = 0; i < n; ++i) h[i] = type == DType::F16 ? f32_to_fp16(f[i]) : f32_to_bf16(f[i]);
      }
      const std::string& name = names.emplace_back(t.w->name + (ab == 0 ? ".lora_a" : ".lora_b"));
      w.add_tensor(name, type, {ne[0], ne[1]}, out.data(), out.size());
      r.tensor_bytes += out.size();
    }
  }
  r.n_targets = targets.size();
  w.write(p.output);
  return r;
}

}  // namespace xent::app
