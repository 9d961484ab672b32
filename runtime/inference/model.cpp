#include "runtime/inference/model.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include "formats/error.h"

namespace xent {

Tensor* WeightLoader::get(const std::string& name, std::vector<int64_t> ne, int layer,
                          bool required) {
  const gguf::TensorInfo* info = file_.find_tensor(name);
  used_tensors_.insert(name);
  if (!info) {
    if (!required) return nullptr;
    throw Error("model: tensor '" + name + "' is missing from " + file_.path());
  }
  Tensor& t = storage_.emplace_back();
  t.type = info->type;
  for (int d = 0; d < 4; ++d) t.ne[d] = info->ne[d];
  t.set_contiguous_strides();
  t.data = const_cast<uint8_t*>(info->data);
  t.layer = layer;
  t.name = info->name.c_str();
  bool ok = true;
  for (size_t d = 0; d < 4; ++d) {
    const int64_t want = d < ne.size() ? ne[d] : 1;
    if (t.ne[d] != want) ok = false;
  }
  if (!ok) {
    std::string want = "[";
    for (size_t d = 0; d < ne.size(); ++d) want += (d ? ", " : "") + std::to_string(ne[d]);
    throw Error("model: tensor '" + name + "' has shape " + describe(t) + ", expected " + want +
                "]");
  }
  return &t;
}

int64_t WeightLoader::arch_int(const std::string& arch, const std::string& key) {
  const std::string full = arch + "." + key;
  used_keys_.insert(full);
  auto v = file_.get_int(full);
  if (!v) throw Error("model: metadata key '" + full + "' is missing");
  if (*v <= 0 || *v > (int64_t{1} << 40))
    throw Error("model: metadata key '" + full + "' has invalid value " + std::to_string(*v));
  return *v;
}

int64_t WeightLoader::arch_int_or(const std::string& arch, const std::string& key, int64_t fallback) {
  const std::string full = arch + "." + key;
  used_keys_.insert(full);
  if (!file_.find(full)) return fallback;
  return arch_int(arch, key);
}

float WeightLoader::arch_float_or(const std::string& arch, const std::string& key, float fallback) {
  const std::string full = arch + "." + key;
  used_keys_.insert(full);
  if (!file_.find(full)) return fallback;
  auto v = file_.get_float(full);
  if (!v || !std::isfinite(*v)) throw Error("model: metadata key '" + full + "' is not a finite number");
  return static_cast<float>(*v);
}

std::string WeightLoader::arch_string_or(const std::string& arch, const std::string& key,
                                         const std::string& fallback) {
  const std::string full = arch + "." + key;
  used_keys_.insert(full);
  if (!file_.find(full)) return fallback;
  auto v = file_.get_string(full);
  if (!v) throw Error("model: metadata key '" + full + "' is not a string");
  return *v;
}

bool WeightLoader::arch_bool_or(const std::string& arch, const std::string& key, bool fallback) {
  const std::string full = arch + "." + key;
  used_keys_.insert(full);
  if (!file_.find(full)) return fallback;
  auto v = file_.get_bool(full);
  if (!v) throw Error("model: metadata key '" + full + "' is not a bool");
  return *v;
}

namespace {

std::string kv_value_text(const gguf::KeyValue& kv) {
  switch (kv.type) {
    case gguf::ValueType::STRING: return "'" + std::string(kv.str.substr(0, 80)) + "'";
    case gguf::ValueType::ARRAY: return "an array of " + std::to_string(kv.array_count);
    case gguf::ValueType::F32:
    case gguf::ValueType::F64: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%g", kv.f);
      return buf;
    }
    case gguf::ValueType::BOOL: return kv.u ? "true" : "false";
    default: return std::to_string(kv.i);
  }
}

}  // namespace

void WeightLoader::check_all_used(const std::string& arch) const {
  for (const gguf::TensorInfo& t : file_.tensors())
    if (!used_tensors_.count(t.name))
      throw Error("model: tensor '" + t.name + "' is not used by xent's " + arch +
                  " architecture; refusing to compute without it (the results would be wrong)");
  const std::string prefix = arch + ".";
  for (const gguf::KeyValue& kv : file_.kvs())
    if (kv.key.rfind(prefix, 0) == 0 && !used_keys_.count(kv.key))
      throw Error("model: metadata key '" + kv.key + "' = " + kv_value_text(kv) + " is not supported by xent's " +
                  arch + " architecture; refusing to compute without it (the results would be wrong)");
}

std::unique_ptr<Model> Model::load(const std::string& path, const ModelLoadParams& params) {
  std::unique_ptr<Model> m(new Model());
  if (params.use_mmap) {
    m->file_ = gguf::Reader::open(path);
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("cannot open '" + path + "'");
    m->owned_bytes_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    m->file_ = gguf::Reader::from_memory(m->owned_bytes_.data(), m->owned_bytes_.size());
  }
  if (params.use_mlock) m->file_->lock_memory();
  if (params.progress && !params.progress(0.1f)) throw Error("model load cancelled");

  const gguf::Reader& f = *m->file_;
  auto arch = f.get_string("general.architecture");
  if (!arch) throw Error("model: '" + path + "' has no general.architecture key");
  const ArchitectureEntry* entry = nullptr;
  std::string known;
  for (const ArchitectureEntry& e : architectures()) {
    if (*arch == e.name) entry = &e;
    known += (known.empty() ? "" : ", ") + std::string(e.name);
  }
  if (!entry)
    throw Error("model: unsupported architecture '" + *arch + "' (supported: " + known + ")");

  m->tokenizer_ = Tokenizer::from_gguf(f);
  if (params.progress && !params.progress(0.3f)) throw Error("model load cancelled");

  m->hparams_.arch = *arch;
  m->hparams_.n_vocab = m->tokenizer_->n_vocab();
  WeightLoader loader(f, m->weights_);
  m->arch_ = entry->load(loader, m->hparams_);
  loader.check_all_used(*arch);
  if (params.progress && !params.progress(1.0f)) throw Error("model load cancelled");
  return m;
}

uint64_t Model::n_params() const {
  uint64_t n = 0;
  for (const gguf::TensorInfo& t : file_->tensors()) n += static_cast<uint64_t>(t.n_elements());
  return n;
}

uint64_t Model::weight_bytes() const {
  uint64_t n = 0;
  for (const gguf::TensorInfo& t : file_->tensors()) n += t.size_bytes;
  return n;
}

std::string Model::chat_template() const {
  return file_->get_string("tokenizer.chat_template").value_or("");
}

std::string Model::description() const {
  const double m = static_cast<double>(n_params()) / 1e6;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1fM params", m);
  return hparams_.arch + " " + buf;
}

std::shared_ptr<const void> Model::shared_state(const std::string& key,
                                                const std::function<std::shared_ptr<const void>()>& make) const {
  std::lock_guard<std::mutex> lock(shared_mutex_);
  auto it = shared_.find(key);
  if (it == shared_.end()) it = shared_.emplace(key, make()).first;
  return it->second;
}

}  // namespace xent
