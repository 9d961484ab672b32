#include "runtime/inference/lora.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "backends/cpu/ops.h"
#include "formats/error.h"

namespace xent {
namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

void bind(Tensor& t, const gguf::TensorInfo& info, int layer) {
  t.type = info.type;
  for (int d = 0; d < 4; ++d) t.ne[d] = info.ne[d];
  t.set_contiguous_strides();
  t.data = const_cast<uint8_t*>(info.data);
  t.layer = layer;
  t.name = info.name.c_str();
}

// A matmul with `w` as its weights that the CPU backend (every context's fallback) computes.
bool matmul_readable(const Tensor& w) {
  Tensor x;
  x.ne[0] = w.ne[0];
  x.set_contiguous_strides();
  Tensor node;
  node.op = Op::MulMat;
  node.src[0] = const_cast<Tensor*>(&w);
  node.src[1] = &x;
  node.ne[0] = w.ne[1];
  node.set_contiguous_strides();
  return cpu::cpu_supports(node);
}

}  // namespace

std::shared_ptr<const LoraAdapter> LoraAdapter::load(const Model& base, const std::string& path) {
  std::shared_ptr<LoraAdapter> ad(new LoraAdapter());
  ad->base_ = &base;
  ad->path_ = path;
  ad->file_ = gguf::Reader::open(path);
  const gguf::Reader& f = *ad->file_;
  const std::string where = "lora: '" + path + "': ";

  const std::string type = f.get_string("general.type").value_or("");
  if (type != "adapter")
    throw Error(where + "general.type is '" + type + "', expected 'adapter' (is this a model rather than an adapter?)");
  const std::string adapter_type = f.get_string("adapter.type").value_or("");
  if (adapter_type != "lora")
    throw Error(where + "adapter.type is '" + adapter_type + "'; xent loads only 'lora' adapters");
  const std::string arch = f.get_string("general.architecture").value_or("");
  if (arch != base.hparams().arch)
    throw Error(where + "made for architecture '" + arch + "', but the base model is '" + base.hparams().arch + "'");
  if (f.find("adapter.lora.alpha")) {
    const auto alpha = f.get_float("adapter.lora.alpha");
    if (!alpha || !(*alpha >= 0.0) || *alpha > 1e6)
      throw Error(where + "adapter.lora.alpha must be a non-negative number");
    ad->alpha_ = static_cast<float>(*alpha);
  }
  for (const gguf::KeyValue& kv : f.kvs()) {
    if (kv.key.rfind("general.", 0) == 0 || kv.key == "adapter.type" || kv.key == "adapter.lora.alpha") continue;
    throw Error(where + "metadata key '" + kv.key +
                "' is not applied by xent's LoRA loader; refusing to compute without it (the results would be wrong)");
  }

  // The base weights by name.
  std::map<std::string, const Tensor*> weights;
  for (const Tensor& w : base.weights()) weights.emplace(w.name, &w);
  // Which base tensor the output layer reads: with tied embeddings it is token_embd, which
  // an embedding adapter's shapes do not fit as a matmul.
  const bool tied = !base.file().find_tensor("output.weight");

  struct Pair {
    const gguf::TensorInfo* a = nullptr;
    const gguf::TensorInfo* b = nullptr;
  };
  std::map<std::string, Pair> pairs;
  for (const gguf::TensorInfo& t : f.tensors()) {
    if (ends_with(t.name, ".lora_a")) {
      pairs[t.name.substr(0, t.name.size() - 7)].a = &t;
    } else if (ends_with(t.name, ".lora_b")) {
      pairs[t.name.substr(0, t.name.size() - 7)].b = &t;
    } else {
      throw Error(where + "tensor '" + t.name + "' is neither a .lora_a nor a .lora_b" +
                  (ends_with(t.name, "_norm.weight") ? " (norm weights in adapters are not supported)" : "") +
                  "; refusing to compute without it (the results would be wrong)");
    }
  }
  if (pairs.empty()) throw Error(where + "has no lora_a/lora_b tensors");

  for (const auto& [name, p] : pairs) {
    if (!p.a || !p.b) throw Error(where + "'" + name + "' has a " + (p.a ? "lora_a" : "lora_b") + " but no " +
                                  (p.a ? "lora_b" : "lora_a"));
    auto it = weights.find(name);
    if (it == weights.end())
      throw Error(where + "targets '" + name + "', which the base model does not have (a different base model?)");
    const Tensor& w = *it->second;
    LoraTarget& t = ad->targets_.emplace_back();
    t.weight = &w;
    t.embedding = name == "token_embd.weight";
    bind(t.a, *p.a, w.layer);
    bind(t.b, *p.b, w.layer);
    if (t.a.ne[2] != 1 || t.a.ne[3] != 1 || t.b.ne[2] != 1 || t.b.ne[3] != 1 || w.ne[2] != 1)
      throw Error(where + "'" + name + "': lora tensors must be 2-D");
    // Shapes: see LoraTarget.
    const int64_t n_in = w.ne[0], n_out = w.ne[1];
    const bool fits = t.embedding ? t.a.ne[1] == n_out && t.b.ne[1] == n_in && t.a.ne[0] == t.b.ne[0]
                                  : t.a.ne[0] == n_in && t.b.ne[1] == n_out && t.a.ne[1] == t.b.ne[0];
    if (!fits)
      throw Error(where + "'" + name + "' " + describe(w) + " cannot take lora_a " + describe(t.a) + " and lora_b " +
                  describe(t.b) + (t.embedding ? " (expected [r, n_vocab] and [r, n_embd])" : " (expected [n_in, r] and [r, n_out])") +
                  " (a different base model?)");
    t.rank = t.b.ne[0];
    if (t.rank < 1 || t.rank > std::min(n_in, n_out))
      throw Error(where + "'" + name + "' has rank " + std::to_string(t.rank) + ", outside [1, " +
                  std::to_string(std::min(n_in, n_out)) + "]");
    if (!matmul_readable(t.b) || (!t.embedding && !matmul_readable(t.a)))
      throw Error(where + "'" + name + "': lora tensors of type " + dtype_name(t.a.type) + "/" + dtype_name(t.b.type) +
                  " with these shapes cannot be multiplied (use F32, F16 or BF16)");
    if (t.embedding && tied)
      throw Error(where + "adapts token_embd.weight, which this base model also uses as its output layer; "
                          "xent does not apply embedding adapters to tied embeddings");
  }
  return ad;
}

uint64_t LoraAdapter::tensor_bytes() const {
  uint64_t n = 0;
  for (const LoraTarget& t : targets_) n += t.a.n_bytes() + t.b.n_bytes();
  return n;
}

std::vector<std::pair<std::shared_ptr<const LoraAdapter>, float>> load_adapters(
    const Model& base, const std::vector<std::pair<std::string, float>>& files) {
  std::vector<std::pair<std::shared_ptr<const LoraAdapter>, float>> out;
  for (const auto& [path, scale] : files) {
    if (!std::isfinite(scale)) throw Error("lora: '" + path + "': the scale is not a finite number");
    out.emplace_back(LoraAdapter::load(base, path), scale);
  }
  return out;
}

}  // namespace xent
