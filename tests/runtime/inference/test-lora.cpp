// LoRA adapters applied at run time (runtime/inference/lora.h, Graph's weight deltas): scale 0
// is the base model bit for bit; scale s equals a model whose weights were merged here, in
// double, as W + s·B·A; files that do not fit the base model are refused naming what is wrong.
// The adapters are seeded random ones written by `xent bench --synthetic-lora`.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/run-xent.h"
#include "formats/error.h"
#include "formats/gguf.h"
#include "formats/quants.h"
#include "runtime/inference/context.h"
#include "runtime/inference/lora.h"
#include "runtime/inference/model.h"

using namespace xent;

namespace {

const std::string kDir = std::string(XENT_BINARY_DIR) + "/lora-tests";

std::string shared_model(const std::string& name) { return std::string(XENT_SHARED_DIR) + "/models/" + name + ".gguf"; }

// A seeded adapter for `base` (see SyntheticLoraParams), written once per name.
std::string adapter(const std::string& base, const std::string& name, const std::string& args) {
  const std::string path = kDir + "/" + name + ".gguf";
  const auto r = test::run_xent(kDir, "bench --synthetic-lora " + args + " --base " + base + " -o " + path);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return path;
}

const std::vector<int32_t> kPrompt = {1, 450, 4045, 282, 1025, 3261, 310, 2114, 7889, 13, 6161, 7223};

// Every position's logits of kPrompt, evaluated in steps of `ubatch` tokens.
std::vector<float> logits_of(const Model& m, const std::vector<LoraBinding>& adapters, int ubatch = 512) {
  ContextParams cp;
  cp.n_threads = 2;
  cp.n_ctx = 64;
  cp.n_ubatch = ubatch;
  Context ctx(m, cp);
  ctx.set_adapters(adapters);
  ctx.decode(kPrompt.data(), kPrompt.size(), true);
  std::vector<float> out;
  for (size_t i = 0; i < kPrompt.size(); ++i) out.insert(out.end(), ctx.logits_at(i), ctx.logits_at(i) + m.hparams().n_vocab);
  return out;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  float d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

std::vector<float> as_f32(const gguf::TensorInfo& t) {
  std::vector<float> out(static_cast<size_t>(t.n_elements()));
  dequantize_row(t.type, t.data, out.data(), t.n_elements());
  return out;
}

// Writes a copy of the F32 model `base` with every adapter merged: for W [n_in, n_out]
// (row o holds the n_in inputs), W'[o][i] = W[o][i] + s Σ_k B[o][k] A[k][i], where the
// file's a [n_in, r] holds A[k][i] at k·n_in + i and b [r, n_out] holds B[o][k] at o·r + k;
// token_embd: W'[v][e] = W[v][e] + s Σ_k b[e][k] a[v][k]. s = scale · alpha / r.
std::string merged_copy(const std::string& base, const std::vector<std::pair<std::string, float>>& adapters,
                        const std::string& name) {
  auto r = gguf::Reader::open(base);
  std::map<std::string, std::vector<float>> merged;
  std::vector<std::unique_ptr<gguf::Reader>> files;
  for (const auto& [path, scale] : adapters) {
    files.push_back(gguf::Reader::open(path));
    const gguf::Reader& f = *files.back();
    const double alpha = f.get_float("adapter.lora.alpha").value_or(0.0);
    for (const gguf::TensorInfo& ta : f.tensors()) {
      if (ta.name.size() < 7 || ta.name.compare(ta.name.size() - 7, 7, ".lora_a") != 0) continue;
      const std::string target = ta.name.substr(0, ta.name.size() - 7);
      const gguf::TensorInfo* tb = f.find_tensor(target + ".lora_b");
      const gguf::TensorInfo* tw = r->find_tensor(target);
      REQUIRE(tb);
      REQUIRE(tw);
      REQUIRE(tw->type == DType::F32);
      auto it = merged.find(target);
      if (it == merged.end()) it = merged.emplace(target, as_f32(*tw)).first;
      std::vector<float>& w = it->second;
      const std::vector<float> a = as_f32(ta), b = as_f32(*tb);
      const int64_t n_in = tw->ne[0], n_out = tw->ne[1], rank = tb->ne[0];
      const double s = alpha > 0 ? scale * alpha / static_cast<double>(rank) : scale;
      const bool embedding = target == "token_embd.weight";
      for (int64_t o = 0; o < n_out; ++o)
        for (int64_t i = 0; i < n_in; ++i) {
          double acc = 0;
          for (int64_t k = 0; k < rank; ++k)
            acc += embedding ? static_cast<double>(b[i * rank + k]) * a[o * rank + k]
                             : static_cast<double>(b[o * rank + k]) * a[k * n_in + i];
          w[o * n_in + i] = static_cast<float>(w[o * n_in + i] + s * acc);
        }
    }
  }
  gguf::Writer w;
  for (const gguf::KeyValue& kv : r->kvs())
    if (kv.key != "general.alignment") w.copy_kv(kv);
  for (const gguf::TensorInfo& t : r->tensors()) {
    const std::vector<int64_t> ne(t.ne, t.ne + std::max(1, t.n_dims));
    if (auto it = merged.find(t.name); it != merged.end())
      w.add_tensor(t.name, DType::F32, ne, it->second.data(), it->second.size() * sizeof(float));
    else
      w.add_tensor(t.name, t.type, ne, t.data, t.size_bytes);
  }
  const std::string path = kDir + "/" + name + ".gguf";
  w.write(path);
  return path;
}

// Copies the adapter `source` with edit() applied (after every key and tensor is added),
// without the tensor `drop`, and returns the error loading it on `base` gives ("" if none).
std::string load_error_of_copy(const Model& base, const std::string& source, const std::string& tag,
                               const std::function<void(gguf::Writer&)>& edit, const std::string& drop = "") {
  auto r = gguf::Reader::open(source);
  gguf::Writer w;
  for (const gguf::KeyValue& kv : r->kvs()) w.copy_kv(kv);
  for (const gguf::TensorInfo& t : r->tensors())
    if (t.name != drop) w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + std::max(1, t.n_dims)), t.data, t.size_bytes);
  edit(w);
  const std::string path = kDir + "/bad-" + tag + ".gguf";
  w.write(path);
  std::string err;
  try {
    LoraAdapter::load(base, path);
  } catch (const Error& e) {
    err = e.what();
  }
  std::filesystem::remove(path);
  return err;
}

}  // namespace

TEST_CASE("LoRA: scale 0 leaves the base logits bit for bit, scale 1 changes them", "[runtime][lora]") {
  const std::string base_path = shared_model("tiny-llama-spm-f32");
  const std::string a = adapter(base_path, "llama-r8-f32", "8 --type F32");
  auto base = Model::load(base_path);
  auto lora = LoraAdapter::load(*base, a);
  CHECK(lora->targets().size() == 4 * 7 + 1);  // every block matmul and the output
  CHECK(lora->alpha() == 16.0f);
  const std::vector<float> plain = logits_of(*base, {});
  const std::vector<float> zero = logits_of(*base, {{lora, 0.0f}});
  REQUIRE(std::memcmp(plain.data(), zero.data(), plain.size() * sizeof(float)) == 0);
  const float d = max_abs_diff(plain, logits_of(*base, {{lora, 1.0f}}));
  INFO("scale 1 moves the logits by up to " << d);
  CHECK(d > 0.5f);
  // Detaching goes back to the base graph.
  ContextParams cp;
  cp.n_threads = 2;
  cp.n_ctx = 64;
  Context ctx(*base, cp);
  ctx.set_adapters({{lora, 1.0f}});
  ctx.decode(kPrompt.data(), kPrompt.size());
  ctx.set_adapters({});
  ctx.truncate(0);
  ctx.decode(kPrompt.data(), kPrompt.size());
  const size_t nv = static_cast<size_t>(base->hparams().n_vocab);
  CHECK(std::memcmp(ctx.logits(), &plain[(kPrompt.size() - 1) * nv], nv * sizeof(float)) == 0);
}

TEST_CASE("LoRA: run-time application equals weights merged as W + s·B·A", "[runtime][lora]") {
  const std::string base_path = shared_model("tiny-llama-spm-f32");
  // Two adapters at once: F32 on everything, F16 rank 4 on three targets (the token
  // embedding's transposed layout among them), with scales of both signs.
  const std::string a1 = adapter(base_path, "llama-r8-f32", "8 --type F32");
  const std::string a2 =
      adapter(base_path, "llama-r4-f16-some", "4 --type F16 --lora-alpha 6 --lora-targets attn_v,ffn_down,token_embd");
  const std::vector<std::pair<std::string, float>> files = {{a1, 0.7f}, {a2, -1.5f}};
  auto base = Model::load(base_path);
  auto merged = Model::load(merged_copy(base_path, files, "llama-merged"));
  const std::vector<LoraBinding> adapters = load_adapters(*base, files);
  const std::vector<float> want = logits_of(*merged, {});
  for (int ubatch : {512, 1}) {
    const std::vector<float> got = logits_of(*base, adapters, ubatch);
    const float d = max_abs_diff(got, want);
    INFO("ubatch " << ubatch << ": max |diff| " << d);
    CHECK(d < 2e-3f);
  }
  // And the merge is not a no-op.
  CHECK(max_abs_diff(want, logits_of(*base, {})) > 0.5f);
}

TEST_CASE("LoRA: adapters that do not fit the base model are refused naming why", "[runtime][lora]") {
  const std::string base_path = shared_model("tiny-llama-spm-f32");
  const std::string good = adapter(base_path, "llama-r8-f32", "8 --type F32");
  auto base = Model::load(base_path);
  auto expect = [&](const std::string& tag, const std::function<void(gguf::Writer&)>& edit, const std::string& needle,
                    const std::string& drop = "") {
    const std::string err = load_error_of_copy(*base, good, tag, edit, drop);
    INFO(tag << ": " << err);
    CHECK(err.find(needle) != std::string::npos);
  };
  expect("arch", [](gguf::Writer& w) { w.set_string("general.architecture", "gpt2"); }, "architecture 'gpt2'");
  expect("type", [](gguf::Writer& w) { w.set_string("general.type", "model"); }, "general.type is 'model'");
  expect("ia3", [](gguf::Writer& w) { w.set_string("adapter.type", "ia3"); }, "'ia3'");
  expect("key", [](gguf::Writer& w) { w.set_f32("adapter.lora.dropout", 0.1f); }, "'adapter.lora.dropout'");
  expect("alpha", [](gguf::Writer& w) { w.set_f32("adapter.lora.alpha", -2.0f); }, "alpha");
  const std::vector<float> z(256 * 9, 0.0f);
  expect("suffix", [&](gguf::Writer& w) { w.add_tensor("blk.0.attn_q.weight.lora_c", DType::F32, {256, 8}, z.data(), 256 * 8 * 4); },
         "'blk.0.attn_q.weight.lora_c'");
  expect("norm", [&](gguf::Writer& w) { w.add_tensor("blk.0.attn_norm.weight", DType::F32, {256}, z.data(), 256 * 4); },
         "norm weights");
  expect("target", [&](gguf::Writer& w) {
    w.add_tensor("blk.9.attn_q.weight.lora_a", DType::F32, {256, 8}, z.data(), 256 * 8 * 4);
    w.add_tensor("blk.9.attn_q.weight.lora_b", DType::F32, {8, 256}, z.data(), 256 * 8 * 4);
  }, "'blk.9.attn_q.weight', which the base model does not have");
  expect("half", [](gguf::Writer&) {}, "'blk.2.ffn_up.weight' has a lora_a but no lora_b", "blk.2.ffn_up.weight.lora_b");
  // A shape from another model: attn_q is [256, 256]; an a of [256, 9] against a b of [8, 256].
  auto reshaped = [&](const std::string& tname, std::vector<int64_t> ne) {
    return [&z, tname, ne](gguf::Writer& w) {
      w.add_tensor(tname, DType::F32, ne, z.data(), static_cast<size_t>(ne[0] * ne[1]) * 4);
    };
  };
  {
    auto r = gguf::Reader::open(good);
    gguf::Writer w;
    for (const gguf::KeyValue& kv : r->kvs()) w.copy_kv(kv);
    for (const gguf::TensorInfo& t : r->tensors())
      if (t.name != "blk.1.attn_q.weight.lora_a")
        w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + 2), t.data, t.size_bytes);
    reshaped("blk.1.attn_q.weight.lora_a", {256, 9})(w);
    const std::string path = kDir + "/bad-shape.gguf";
    w.write(path);
    std::string err;
    try {
      LoraAdapter::load(*base, path);
    } catch (const Error& e) {
      err = e.what();
    }
    INFO(err);
    CHECK(err.find("'blk.1.attn_q.weight'") != std::string::npos);
    CHECK(err.find("cannot take lora_a [256, 9]") != std::string::npos);
  }
  // An adapter for the llama base refused by a qwen2 base.
  auto qwen = Model::load(shared_model("tiny-qwen2-f16"));
  std::string err;
  try {
    LoraAdapter::load(*qwen, good);
  } catch (const Error& e) {
    err = e.what();
  }
  CHECK(err.find("made for architecture 'llama', but the base model is 'qwen2'") != std::string::npos);
  // And one loaded for another Model cannot be attached.
  auto other = Model::load(base_path);
  Context ctx(*other, ContextParams{});
  CHECK_THROWS_WITH(ctx.set_adapters({{LoraAdapter::load(*base, good), 1.0f}}),
                    Catch::Contains("loaded for another model"));
}
