// xent-fuzz-seeds OUT_DIR: the binary seeds of fuzz-gguf and fuzz-safetensors, made from
// the shipped models so that nothing binary is committed. Each is a shrunk copy of a real
// file (one block, d = 32, a 320-token vocabulary, zero weights) that loads and converts,
// so the fuzzers start from inputs that reach the model loader and the converter.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "formats/dtype.h"
#include "formats/error.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "fuzz-common.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int64_t kVocab = 320, kEmbd = 32, kHeads = 2, kHeadDim = kEmbd / kHeads;

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw xent::Error("cannot write '" + path.string() + "'");
}

// Dimension sizes of the shipped model -> sizes in the seed.
std::map<int64_t, int64_t> dim_map(int64_t d, int64_t n_head, int64_t n_kv, int64_t ffn, int64_t vocab, int64_t ctx,
                                   bool gpt2) {
  std::map<int64_t, int64_t> m;
  auto put = [&m](int64_t from, int64_t to) {
    auto [it, fresh] = m.emplace(from, to);
    if (!fresh && it->second != to) throw xent::Error("seed shapes: size " + std::to_string(from) + " is ambiguous");
  };
  put(d, kEmbd);
  put(vocab, kVocab);
  put(ffn, gpt2 ? 4 * kEmbd : 2 * kEmbd);
  if (gpt2) {  // the fused QKV, and a position table as long as the FFN is wide
    put(3 * d, 3 * kEmbd);
    put(ctx, 4 * kEmbd);
  }
  if (n_kv != n_head) put(n_kv * (d / n_head), kHeadDim);
  return m;
}

bool in_later_block(const std::string& name) {
  for (const char* p : {"blk.", "model.layers.", "h.", "transformer.h."})
    if (name.rfind(p, 0) == 0) return std::atoi(name.c_str() + std::strlen(p)) != 0;
  return false;
}

void gguf_seed(const std::string& model, const fs::path& out) {
  auto r = xent::gguf::Reader::open(xent::fuzz::shared_path("models/" + model + ".gguf"));
  const std::string arch = *r->get_string("general.architecture");
  const int64_t d = *r->get_int(arch + ".embedding_length"), n_head = *r->get_int(arch + ".attention.head_count");
  const int64_t n_kv = r->get_int(arch + ".attention.head_count_kv").value_or(n_head);
  const int64_t ffn = *r->get_int(arch + ".feed_forward_length"), ctx = *r->get_int(arch + ".context_length");
  const auto tokens = *r->get_string_array("tokenizer.ggml.tokens");
  const int64_t n_vocab = static_cast<int64_t>(tokens.size());
  const auto map = dim_map(d, n_head, n_kv, ffn, n_vocab, ctx, arch == "gpt2");

  // The vocabulary: the first tokens and the control tokens at its end.
  const auto types = r->get_int_array("tokenizer.ggml.token_type");
  int64_t n_tail = 0;
  while (types && n_tail < n_vocab && (*types)[static_cast<size_t>(n_vocab - 1 - n_tail)] == 3) ++n_tail;
  std::vector<int64_t> keep;  // old ids, in their new order
  for (int64_t i = 0; i < kVocab - n_tail; ++i) keep.push_back(i);
  for (int64_t i = n_vocab - n_tail; i < n_vocab; ++i) keep.push_back(i);
  auto new_id = [&](int64_t old) { return old >= n_vocab - n_tail ? old - n_vocab + kVocab : old; };

  xent::gguf::Writer w;
  for (const xent::gguf::KeyValue& kv : r->kvs()) {
    const std::string& k = kv.key;
    if (k == "general.alignment" || k == "tokenizer.chat_template") continue;
    if (k == "tokenizer.ggml.tokens") {
      std::vector<std::string> v;
      std::set<std::string> have;
      for (int64_t i : keep) v.emplace_back(tokens[static_cast<size_t>(i)]), have.insert(v.back());
      w.set_string_array(k, v);
      if (auto merges = r->get_string_array("tokenizer.ggml.merges")) {
        std::vector<std::string> mv;
        for (std::string_view m : *merges) {
          const size_t sp = m.find(' ');
          if (sp == std::string_view::npos) continue;
          const std::string a(m.substr(0, sp)), b(m.substr(sp + 1));
          if (have.count(a) && have.count(b) && have.count(a + b)) mv.emplace_back(m);
        }
        w.set_string_array("tokenizer.ggml.merges", mv);
      }
    } else if (k == "tokenizer.ggml.merges") {
      continue;  // written with the tokens
    } else if (k == "tokenizer.ggml.token_type") {
      std::vector<int32_t> v;
      for (int64_t i : keep) v.push_back(static_cast<int32_t>((*types)[static_cast<size_t>(i)]));
      w.set_i32_array(k, v);
    } else if (k == "tokenizer.ggml.scores") {
      const auto s = *r->get_float_array(k);
      std::vector<float> v;
      for (int64_t i : keep) v.push_back(s[static_cast<size_t>(i)]);
      w.set_f32_array(k, v);
    } else if (k.size() > 9 && k.rfind("tokenizer.ggml.", 0) == 0 && k.compare(k.size() - 9, 9, "_token_id") == 0) {
      w.set_u32(k, static_cast<uint32_t>(new_id(*r->get_int(k))));
    } else {
      w.copy_kv(kv);
    }
  }
  w.set_u32(arch + ".embedding_length", kEmbd);
  w.set_u32(arch + ".block_count", 1);
  w.set_u32(arch + ".feed_forward_length", static_cast<uint32_t>(map.at(ffn)));
  w.set_u32(arch + ".attention.head_count", kHeads);
  if (r->find(arch + ".attention.head_count_kv")) w.set_u32(arch + ".attention.head_count_kv", n_kv == n_head ? kHeads : 1);
  w.set_u32(arch + ".context_length", arch == "gpt2" ? 4 * kEmbd : 64);
  if (r->find(arch + ".rope.dimension_count")) w.set_u32(arch + ".rope.dimension_count", kHeadDim);
  if (r->find(arch + ".vocab_size")) w.set_u32(arch + ".vocab_size", kVocab);

  std::vector<std::vector<uint8_t>> data;  // alive until write()
  for (const xent::gguf::TensorInfo& t : r->tensors()) {
    if (in_later_block(t.name)) continue;
    std::vector<int64_t> ne;
    for (int k = 0; k < t.n_dims; ++k) ne.push_back(map.count(t.ne[k]) ? map.at(t.ne[k]) : t.ne[k]);
    // k-quants' 256-wide blocks do not fit 32-wide rows: those become Q8_0.
    xent::DType type = t.type;
    if (ne[0] % xent::dtype_info(static_cast<uint32_t>(type))->block_elems != 0) type = xent::DType::Q8_0;
    const xent::DTypeInfo& info = *xent::dtype_info(static_cast<uint32_t>(type));
    int64_t n = 1;
    for (int64_t x : ne) n *= x;
    data.emplace_back(static_cast<size_t>(n / info.block_elems * info.block_bytes), uint8_t{0});
    w.add_tensor(t.name, type, ne, data.back().data(), data.back().size());
  }
  const auto bytes = w.to_bytes();
  write_bytes(out, std::string(bytes.begin(), bytes.end()));
}

// A safetensors file: the header JSON's tensors with shrunk shapes, zero data.
std::string safetensors_bytes(const std::vector<std::pair<std::string, std::pair<std::string, std::vector<int64_t>>>>& ts) {
  json h = json::object();
  uint64_t at = 0;
  for (const auto& [name, spec] : ts) {
    uint64_t n = 1;
    for (int64_t x : spec.second) n *= static_cast<uint64_t>(x);
    const uint64_t bytes = n * (spec.first == "F32" ? 4 : 2);
    h[name] = {{"dtype", spec.first}, {"shape", spec.second}, {"data_offsets", {at, at + bytes}}};
    at += bytes;
  }
  std::string header = h.dump();
  const uint64_t len = header.size();
  std::string out(8, '\0');
  std::memcpy(out.data(), &len, 8);
  return out + header + std::string(at, '\0');
}

void safetensors_seed(const std::string& dir_name, const fs::path& out) {
  const std::string dir = xent::fuzz::shared_path("models/hf/" + dir_name);
  json config = json::parse(std::ifstream(dir + "/config.json"));
  const bool gpt2 = config.value("model_type", "") == "gpt2";
  auto get = [&](const char* a, const char* b) { return config.contains(a) ? config[a].get<int64_t>() : config[b].get<int64_t>(); };
  const int64_t d = get("n_embd", "hidden_size"), n_head = get("n_head", "num_attention_heads");
  const int64_t n_kv = config.value("num_key_value_heads", n_head);
  const int64_t ffn = gpt2 ? 4 * d : config["intermediate_size"].get<int64_t>();
  const int64_t ctx = get("n_positions", "max_position_embeddings");
  const auto map = dim_map(d, n_head, n_kv, ffn, config["vocab_size"].get<int64_t>(), ctx, gpt2);

  std::vector<std::pair<std::string, std::pair<std::string, std::vector<int64_t>>>> ts;
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") files.push_back(e.path().string());
  for (const std::string& f : files) {
    auto st = xent::safetensors::File::open(f);
    for (const auto& t : st->tensors()) {
      if (in_later_block(t.name)) continue;
      std::vector<int64_t> shape;
      for (int64_t x : t.shape) shape.push_back(map.count(x) ? map.at(x) : x);
      ts.push_back({t.name, {xent::safetensors::elem_type_name(t.type), shape}});
    }
  }
  for (const char* k : {"n_embd", "hidden_size"}) if (config.contains(k)) config[k] = kEmbd;
  for (const char* k : {"n_layer", "num_hidden_layers"}) if (config.contains(k)) config[k] = 1;
  for (const char* k : {"n_head", "num_attention_heads"}) if (config.contains(k)) config[k] = kHeads;
  if (config.contains("num_key_value_heads")) config["num_key_value_heads"] = n_kv == n_head ? kHeads : 1;
  if (config.contains("intermediate_size")) config["intermediate_size"] = map.at(ffn);
  for (const char* k : {"n_positions", "n_ctx", "max_position_embeddings"}) if (config.contains(k)) config[k] = gpt2 ? 4 * kEmbd : 64;
  config["vocab_size"] = kVocab;
  for (const char* k : {"bos_token_id", "eos_token_id"}) if (config.contains(k)) config[k] = kVocab - 1;
  // fuzz-safetensors splits its input at the first NUL: config.json, then the file.
  write_bytes(out, config.dump(1) + std::string(1, '\0') + safetensors_bytes(ts));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR (writes OUT_DIR/fuzz-gguf, OUT_DIR/fuzz-safetensors)\n", argv[0]);
    return 2;
  }
  try {
    const fs::path out = argv[1];
    fs::create_directories(out / "fuzz-gguf");
    fs::create_directories(out / "fuzz-safetensors");
    for (const char* m : {"tiny-llama-spm-q8_0", "tiny-llama-spm-q4_k_m", "tiny-gpt2-q8_0", "tiny-qwen2-q8_0",
                          "tiny-llama-bpe-f16"})
      gguf_seed(m, out / "fuzz-gguf" / (std::string(m) + ".gguf"));
    for (const char* m : {"tiny-gpt2-f16", "tiny-llama-bpe-f16", "tiny-qwen2-bf16"})
      safetensors_seed(m, out / "fuzz-safetensors" / (std::string(m) + ".bin"));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "xent-fuzz-seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
