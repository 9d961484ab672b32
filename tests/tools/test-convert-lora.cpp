// `xent convert --lora`: a PEFT folder written here (seeded random factors on every Llama
// projection, the embedding and lm_head) converted for the shipped GGUF base gives the logits
// of an independent path: the same factors merged into the Hugging Face checkpoint, in
// Hugging Face's own layout (W + s·B·A), converted in full by `xent convert`, whose Q/K
// permutation is checked against the peer's references. So the adapter's permutation of B's
// rotary rows is checked by a different piece of code than the one that made it. And
// what a GGUF adapter cannot express is refused naming it.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/reference.h"
#include "common/run-xent.h"
#include "formats/error.h"
#include "formats/gguf.h"
#include "formats/hf-convert.h"
#include "formats/safetensors.h"
#include "runtime/inference/context.h"
#include "runtime/inference/lora.h"
#include "runtime/inference/model.h"

namespace fs = std::filesystem;
using xent::test::shared_path;

namespace {

const std::string kTmp = std::string(XENT_BINARY_DIR) + "/test-convert-lora";
const std::string kHf = shared_path("models/hf/tiny-llama-bpe-f16");
const std::string kBase = shared_path("models/tiny-llama-bpe-f16.gguf");

struct StTensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

// A safetensors file of F32 tensors.
void write_safetensors(const std::string& path, const std::map<std::string, StTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const size_t bytes = t.data.size() * sizeof(float);
    header[name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  const std::string h = header.dump();
  std::ofstream f(path, std::ios::binary);
  const uint64_t len = h.size();
  f.write(reinterpret_cast<const char*>(&len), 8);
  f.write(h.data(), static_cast<std::streamsize>(h.size()));
  for (const auto& [name, t] : tensors)
    f.write(reinterpret_cast<const char*>(t.data.data()), static_cast<std::streamsize>(t.data.size() * sizeof(float)));
  REQUIRE(f.good());
}

// Seeded uniform numbers in [-scale, scale].
struct Lcg {
  uint64_t s;
  float next(float scale) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return scale * (static_cast<float>(s >> 40) / static_cast<float>(1ull << 24) * 2.0f - 1.0f);
  }
};

struct Peft {
  std::map<std::string, StTensor> tensors;  // PEFT names
  int64_t r = 4;
  double alpha = 8;
};

// Factors for every projection of every layer, the embedding and lm_head; A ~ 1/sqrt(in), B ~ 0.05.
Peft make_peft(const xent::safetensors::Checkpoint& ckpt, uint64_t seed) {
  Peft p;
  Lcg rng{seed};
  for (const xent::safetensors::TensorView* t : ckpt.tensors()) {
    const std::string& n = t->name;
    if (t->shape.size() != 2) continue;
    const std::string module = n.substr(0, n.size() - 7);  // without ".weight"
    const int64_t rows = t->shape[0], cols = t->shape[1];
    StTensor a, b;
    if (module == "model.embed_tokens") {  // PEFT Embedding: A [r, n_vocab], B [n_embd, r]
      a.shape = {p.r, rows};
      b.shape = {cols, p.r};
    } else {  // Linear [out, in]: A [r, in], B [out, r]
      a.shape = {p.r, cols};
      b.shape = {rows, p.r};
    }
    a.data.resize(static_cast<size_t>(a.shape[0] * a.shape[1]));
    b.data.resize(static_cast<size_t>(b.shape[0] * b.shape[1]));
    const float sa = module == "model.embed_tokens" ? 0.5f : 1.7f / std::sqrt(static_cast<float>(cols));
    for (float& v : a.data) v = rng.next(sa);
    for (float& v : b.data) v = rng.next(0.05f);
    const std::string prefix = "base_model.model." + module;
    const bool emb = module == "model.embed_tokens";
    p.tensors[prefix + (emb ? ".lora_embedding_A" : ".lora_A.weight")] = a;
    p.tensors[prefix + (emb ? ".lora_embedding_B" : ".lora_B.weight")] = b;
  }
  return p;
}

void write_peft(const std::string& dir, const Peft& p, const nlohmann::json& extra = nlohmann::json::object()) {
  fs::create_directories(dir);
  nlohmann::json cfg = {{"peft_type", "LORA"},
                        {"r", p.r},
                        {"lora_alpha", p.alpha},
                        {"target_modules", {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
                                            "embed_tokens", "lm_head"}},
                        {"bias", "none"},
                        {"use_dora", false},
                        {"use_rslora", false},
                        {"base_model_name_or_path", "tiny-llama-bpe"}};
  for (const auto& [k, v] : extra.items()) cfg[k] = v;
  std::ofstream(dir + "/adapter_config.json") << cfg.dump(1);
  write_safetensors(dir + "/adapter_model.safetensors", p.tensors);
}

// The Hugging Face checkpoint with W' = W + s·B·A (the embedding: + s·(B·A)^T), F32, one file.
std::string merged_hf(const xent::safetensors::Checkpoint& ckpt, const Peft& p, double s, const std::string& dir) {
  fs::create_directories(dir);
  std::map<std::string, StTensor> out;
  for (const xent::safetensors::TensorView* t : ckpt.tensors()) {
    StTensor w;
    w.shape = t->shape;
    w.data.resize(static_cast<size_t>(t->n_elements()));
    xent::safetensors::to_f32(*t, w.data.data());
    const std::string module = "base_model.model." + t->name.substr(0, t->name.size() - 7);
    const bool emb = t->name == "model.embed_tokens.weight";
    auto ia = p.tensors.find(module + (emb ? ".lora_embedding_A" : ".lora_A.weight"));
    if (t->shape.size() == 2 && ia != p.tensors.end()) {
      const StTensor& a = ia->second;
      const StTensor& b = p.tensors.at(module + (emb ? ".lora_embedding_B" : ".lora_B.weight"));
      const int64_t rows = t->shape[0], cols = t->shape[1];
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) {
          double acc = 0;
          for (int64_t k = 0; k < p.r; ++k)
            acc += emb ? static_cast<double>(b.data[j * p.r + k]) * a.data[k * rows + i]   // (B·A)^T [v][e]
                       : static_cast<double>(b.data[i * p.r + k]) * a.data[k * cols + j];  // (B·A) [o][i]
          w.data[i * cols + j] = static_cast<float>(w.data[i * cols + j] + s * acc);
        }
    }
    out[t->name] = std::move(w);
  }
  write_safetensors(dir + "/model.safetensors", out);
  for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json"})
    fs::copy_file(kHf + "/" + f, dir + "/" + f, fs::copy_options::overwrite_existing);
  return dir;
}

std::vector<float> logits(const xent::Model& m, const std::vector<xent::LoraBinding>& adapters,
                          const std::vector<int32_t>& tokens) {
  xent::ContextParams cp;
  cp.n_threads = 2;
  cp.n_ctx = 256;
  xent::Context ctx(m, cp);
  ctx.set_adapters(adapters);
  ctx.decode(tokens.data(), tokens.size(), true);
  std::vector<float> out;
  for (size_t i = 0; i < tokens.size(); ++i) out.insert(out.end(), ctx.logits_at(i), ctx.logits_at(i) + m.hparams().n_vocab);
  return out;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  float d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

std::string convert_error(const std::string& dir, const std::string& base = kBase) {
  xent::hf::LoraConvertParams lp;
  lp.dir = dir;
  lp.base = base;
  lp.output = kTmp + "/error.gguf";
  try {
    xent::hf::convert_lora(lp);
  } catch (const xent::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("convert --lora: a PEFT adapter gives the logits of the same factors merged into the HF checkpoint",
          "[tools][convert][lora]") {
  const auto ckpt = xent::safetensors::Checkpoint::open_dir(kHf);
  const Peft peft = make_peft(*ckpt, 19);
  const std::string dir = kTmp + "/peft";
  write_peft(dir, peft);
  // The base in F32 as the merged model will be, so that only the order of the sums differs.
  xent::hf::ConvertParams bp;
  bp.dir = kHf;
  bp.output = kTmp + "/base-f32.gguf";
  bp.outtype = "f32";
  xent::hf::convert_checkpoint(bp);
  const std::string adapter = kTmp + "/peft.gguf";
  const auto r = xent::test::run_xent(kTmp, "convert --lora " + dir + " --base " + bp.output + " -o " + adapter);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("30 targets") != std::string::npos);  // 4 x 7 projections, the embedding, lm_head

  const double scale = 0.8;
  const std::string merged_dir = merged_hf(*ckpt, peft, scale * peft.alpha / static_cast<double>(peft.r), kTmp + "/merged-hf");
  xent::hf::ConvertParams cp;
  cp.dir = merged_dir;
  cp.output = kTmp + "/merged.gguf";
  cp.outtype = "f32";
  xent::hf::convert_checkpoint(cp);

  auto base = xent::Model::load(bp.output);
  auto merged = xent::Model::load(cp.output);
  const std::string prompt = xent::test::read_text(shared_path("prompts/p1-clinical.txt"));
  const std::vector<int32_t> tokens = base->tokenizer().encode(prompt, true, true);
  const std::vector<float> want = logits(*merged, {}, tokens);
  const std::vector<float> got = logits(*base, {{xent::LoraAdapter::load(*base, adapter), static_cast<float>(scale)}}, tokens);
  const float d = max_abs_diff(got, want);
  const float moved = max_abs_diff(logits(*base, {}, tokens), want);
  INFO("adapter vs merged: max |diff| " << d << "; the merge moves the logits by " << moved);
  CHECK(moved > 0.5f);
  CHECK(d < 1e-3f);
}

TEST_CASE("convert --lora: rsLoRA is written as alpha·sqrt(r); F16 and BF16 outputs", "[tools][convert][lora]") {
  const auto ckpt = xent::safetensors::Checkpoint::open_dir(kHf);
  const Peft peft = make_peft(*ckpt, 20);
  const std::string dir = kTmp + "/peft-rslora";
  write_peft(dir, peft, {{"use_rslora", true}});
  for (const char* type : {"f16", "bf16"}) {
    xent::hf::LoraConvertParams lp;
    lp.dir = dir;
    lp.base = kBase;
    lp.output = kTmp + "/rslora-" + type + ".gguf";
    lp.outtype = type;
    const auto res = xent::hf::convert_lora(lp);
    CHECK(std::fabs(res.alpha - 8.0f * 2.0f) < 1e-5f);  // alpha / sqrt(4) = (alpha · 2) / 4
    auto f = xent::gguf::Reader::open(lp.output);
    CHECK(f->find_tensor("blk.0.attn_q.weight.lora_a")->type == (std::string(type) == "f16" ? xent::DType::F16 : xent::DType::BF16));
    CHECK(f->find_tensor("token_embd.weight.lora_a")->ne[0] == 4);  // [r, n_vocab]
  }
}

TEST_CASE("convert --lora: what a GGUF adapter cannot express is refused naming it", "[tools][convert][lora]") {
  const auto ckpt = xent::safetensors::Checkpoint::open_dir(kHf);
  const Peft peft = make_peft(*ckpt, 21);
  auto expect = [&](const std::string& tag, const nlohmann::json& extra, const std::string& needle,
                    const std::function<void(Peft&)>& edit = nullptr, const std::string& base = kBase) {
    Peft p = peft;
    if (edit) edit(p);
    const std::string dir = kTmp + "/bad-" + tag;
    write_peft(dir, p, extra);
    const std::string err = convert_error(dir, base);
    INFO(tag << ": " << err);
    CHECK(err.find(needle) != std::string::npos);
  };
  expect("dora", {{"use_dora", true}}, "DoRA");
  expect("bias", {{"bias", "all"}}, "bias is 'all'");
  expect("alpha-pattern", {{"alpha_pattern", {{"q_proj", 4}}}}, "alpha_pattern");
  expect("save", {{"modules_to_save", {"lm_head"}}}, "modules_to_save");
  expect("rslora-ranks", {{"use_rslora", true}, {"rank_pattern", {{"q_proj", 8}}}}, "own scale");
  expect("ia3", {{"peft_type", "IA3"}}, "peft_type");
  expect("rank", {{"r", 8}}, "says r = 8");
  expect("target", {{"target_modules", {"q_proj", "c_attn"}}}, "target_modules names 'c_attn'");
  expect("module", nlohmann::json::object(), "'model.layers.0.mlp.c_fc', which xent's llama architecture has no weight for",
         [](Peft& p) {
           p.tensors["base_model.model.model.layers.0.mlp.c_fc.lora_A.weight"] = {{4, 256}, std::vector<float>(1024)};
         });
  expect("magnitude", nlohmann::json::object(), "DoRA magnitude", [](Peft& p) {
    p.tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector"] = {{1, 256}, std::vector<float>(256)};
  });
  expect("half", nlohmann::json::object(), "has a lora_A but no lora_B",
         [](Peft& p) { p.tensors.erase("base_model.model.model.layers.1.mlp.up_proj.lora_B.weight"); });
  // The SentencePiece llama has 4 KV heads where this adapter's base has 2: k_proj does not fit.
  expect("base", nlohmann::json::object(), "do not fit 'blk.0.attn_k.weight'", nullptr,
         shared_path("models/tiny-llama-spm-f16.gguf"));
  expect("arch", nlohmann::json::object(), "xent's gpt2 architecture has no weight for", nullptr,
         shared_path("models/tiny-gpt2-q8_0.gguf"));
  CHECK(convert_error(kTmp + "/absent").find("is not a folder") != std::string::npos);
}
