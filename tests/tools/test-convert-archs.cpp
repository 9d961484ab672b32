// `xent convert` for Qwen3, Gemma 2, Gemma 3 and Phi-3 checkpoints. No such checkpoint ships
// in ../shared, so each test writes one: it generates the seeded model the peer references
// were made from (tests/models/reference/), writes it out the way Hugging Face stores it
// (safetensors in HF names and layouts, config.json, tokenizer.json or a SentencePiece
// tokenizer.model), converts that back, and expects the very tensors and keys of the
// generated file and the peer's logits. The export below is written from the Hugging Face
// side (transformers' modeling and config classes), not from our converter's tables.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/reference.h"
#include "common/run-xent.h"
#include "formats/error.h"
#include "formats/gguf.h"
#include "formats/hf-convert.h"

namespace fs = std::filesystem;
using nlohmann::json;
using xent::test::check_reference_at;
using xent::test::shared_path;

namespace {

const std::string kTmp = std::string(XENT_BINARY_DIR) + "/test-convert-archs";
const char* const kPrompts[] = {"p1-clinical", "p2-story", "p3-note", "p4-unicode"};

std::string generate(const std::string& shape, const std::string& vocab_model) {
  std::string err;
  const std::string path = xent::test::write_synthetic(kTmp, shape, "F16", shared_path("models/" + vocab_model + ".gguf"),
                                                       shape + "-f16", &err);
  INFO(err);
  REQUIRE(!path.empty());
  return path;
}

// --- writing a Hugging Face folder -------------------------------------------------------

bool is_gemma(const std::string& arch) { return arch == "gemma2" || arch == "gemma3"; }

// GGUF tensor name -> the name transformers gives it; "" for tensors that live in config.json.
std::string hf_name(const std::string& arch, const std::string& gguf) {
  if (gguf == "token_embd.weight") return "model.embed_tokens.weight";
  if (gguf == "output_norm.weight") return "model.norm.weight";
  if (gguf == "output.weight") return "lm_head.weight";
  if (gguf.rfind("rope_factors_", 0) == 0) return "";
  REQUIRE(gguf.rfind("blk.", 0) == 0);
  const size_t dot = gguf.find('.', 4);
  const std::string layer = gguf.substr(4, dot - 4), rest = gguf.substr(dot + 1);
  std::map<std::string, std::string> t = {
      {"attn_q.weight", "self_attn.q_proj.weight"},   {"attn_k.weight", "self_attn.k_proj.weight"},
      {"attn_v.weight", "self_attn.v_proj.weight"},   {"attn_output.weight", "self_attn.o_proj.weight"},
      {"attn_q_norm.weight", "self_attn.q_norm.weight"}, {"attn_k_norm.weight", "self_attn.k_norm.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},    {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"},    {"attn_norm.weight", "input_layernorm.weight"},
      {"ffn_norm.weight", "post_attention_layernorm.weight"}};
  if (is_gemma(arch)) {
    t["post_attention_norm.weight"] = "post_attention_layernorm.weight";
    t["ffn_norm.weight"] = "pre_feedforward_layernorm.weight";
    t["post_ffw_norm.weight"] = "post_feedforward_layernorm.weight";
  }
  if (arch == "phi3") {
    t["attn_qkv.weight"] = "self_attn.qkv_proj.weight";
    t["ffn_up.weight"] = "mlp.gate_up_proj.weight";  // Phi3MLP chunks it: gate first
  }
  auto it = t.find(rest);
  INFO("tensor " << gguf);
  REQUIRE(it != t.end());
  return "model.layers." + layer + "." + it->second;
}

void write_file(const std::string& path, const void* data, size_t n) {
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
  REQUIRE(out.good());
}

void write_json(const std::string& path, const json& j) {
  const std::string s = j.dump(1);
  write_file(path, s.data(), s.size());
}

// Protobuf, as much of it as a SentencePiece ModelProto needs.
void put_varint(std::string& out, uint64_t v) {
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    if (v) b |= 0x80;
    out.push_back(static_cast<char>(b));
  } while (v);
}
void put_bytes(std::string& out, uint32_t field, const std::string& bytes) {
  put_varint(out, (field << 3) | 2);
  put_varint(out, bytes.size());
  out += bytes;
}

std::string spm_model(const xent::gguf::Reader& g) {
  const auto tokens = *g.get_string_array("tokenizer.ggml.tokens");
  const auto scores = *g.get_float_array("tokenizer.ggml.scores");
  const auto types = *g.get_int_array("tokenizer.ggml.token_type");
  std::string model;
  for (size_t i = 0; i < tokens.size(); ++i) {
    std::string piece;
    put_bytes(piece, 1, std::string(tokens[i]));
    put_varint(piece, (2 << 3) | 5);
    char f[4];
    std::memcpy(f, &scores[i], 4);
    piece.append(f, 4);
    if (types[i] != 1) {
      put_varint(piece, (3 << 3) | 0);
      put_varint(piece, static_cast<uint64_t>(types[i]));
    }
    put_bytes(model, 1, piece);
  }
  std::string normalizer;
  put_bytes(normalizer, 1, "identity");
  put_varint(normalizer, (3 << 3) | 0);
  put_varint(normalizer, g.get_bool("tokenizer.ggml.add_space_prefix").value_or(true) ? 1 : 0);
  put_bytes(model, 3, normalizer);
  return model;
}

// config.json as transformers writes it for the architecture.
json hf_config(const xent::gguf::Reader& g, const std::string& arch) {
  auto num = [&](const std::string& key) { return *g.get_int(arch + "." + key); };
  auto flt = [&](const std::string& key) { return *g.get_float(arch + "." + key); };
  const int64_t n_embd = num("embedding_length"), n_head = num("attention.head_count");
  const int64_t head_dim = g.get_int(arch + ".attention.key_length").value_or(n_embd / n_head);
  static const std::map<std::string, std::string> classes = {
      {"qwen3", "Qwen3ForCausalLM"}, {"gemma2", "Gemma2ForCausalLM"}, {"gemma3", "Gemma3ForCausalLM"},
      {"phi3", "Phi3ForCausalLM"}};
  json c = {{"architectures", {classes.at(arch)}},
            {"model_type", arch == "gemma3" ? "gemma3_text" : arch},
            {"hidden_size", n_embd},
            {"num_hidden_layers", num("block_count")},
            {"num_attention_heads", n_head},
            {"num_key_value_heads", num("attention.head_count_kv")},
            {"head_dim", head_dim},
            {"intermediate_size", num("feed_forward_length")},
            {"max_position_embeddings", num("context_length")},
            {"rms_norm_eps", flt("attention.layer_norm_rms_epsilon")},
            {"rope_theta", g.get_float(arch + ".rope.freq_base").value_or(10000.0)},
            {"vocab_size", g.get_string_array("tokenizer.ggml.tokens")->size()},
            {"tie_word_embeddings", g.find_tensor("output.weight") == nullptr},
            {"torch_dtype", "float16"}};
  if (arch == "qwen3") {
    c["hidden_act"] = "silu";
    c["attention_bias"] = false;
    c["use_sliding_window"] = false;
  }
  if (is_gemma(arch)) {
    c["hidden_activation"] = "gelu_pytorch_tanh";
    c["hidden_act"] = "gelu_pytorch_tanh";
    c["query_pre_attn_scalar"] = head_dim;
    c["sliding_window"] = num("attention.sliding_window");
    c["attention_bias"] = false;
  }
  if (arch == "gemma2") {
    c["attn_logit_softcapping"] = flt("attn_logit_softcapping");
    c["final_logit_softcapping"] = flt("final_logit_softcapping");
  }
  if (arch == "gemma3") {
    c["rope_local_base_freq"] = 10000.0;
    c["sliding_window_pattern"] = 6;
    c["attn_logit_softcapping"] = nullptr;
    c["final_logit_softcapping"] = nullptr;
    if (auto type = g.get_string(arch + ".rope.scaling.type"))
      c["rope_scaling"] = {{"rope_type", *type}, {"factor", flt("rope.scaling.factor")}};
  }
  if (arch == "phi3") {
    c["hidden_act"] = "silu";
    c["sliding_window"] = num("attention.sliding_window");
    c["original_max_position_embeddings"] = num("rope.scaling.original_context_length");
    c["partial_rotary_factor"] = static_cast<double>(num("rope.dimension_count")) / static_cast<double>(head_dim);
    auto factors = [&](const char* name) {
      const auto* t = g.find_tensor(name);
      REQUIRE(t);
      const float* f = reinterpret_cast<const float*>(t->data);
      return std::vector<double>(f, f + t->ne[0]);  // doubles, so the JSON holds each float exactly
    };
    c["rope_scaling"] = {{"type", "longrope"},
                         {"long_factor", factors("rope_factors_long.weight")},
                         {"short_factor", factors("rope_factors_short.weight")}};
  }
  const auto tokens = *g.get_string_array("tokenizer.ggml.tokens");
  if (auto id = g.get_int("tokenizer.ggml.bos_token_id")) c["bos_token_id"] = *id;
  if (auto id = g.get_int("tokenizer.ggml.eos_token_id")) c["eos_token_id"] = *id;
  return c;
}

// Writes `dir` from the generated GGUF: F16 matrices stay F16, F32 vectors F32, Gemma's
// norms as the (weight - 1) its RMSNorm adds one to.
void export_hf(const std::string& gguf_path, const std::string& dir, const std::string& bpe_checkpoint) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  const auto g = xent::gguf::Reader::open(gguf_path);
  const std::string arch = *g->get_string("general.architecture");
  json header = json::object();
  std::string data;
  for (const auto& t : g->tensors()) {
    const std::string name = hf_name(arch, t.name);
    if (name.empty()) continue;
    REQUIRE((t.type == xent::DType::F16 || t.type == xent::DType::F32));
    std::string bytes(reinterpret_cast<const char*>(t.data), t.size_bytes);
    const bool norm = t.name.find("norm.weight") != std::string::npos;
    if (is_gemma(arch) && norm) {
      REQUIRE(t.type == xent::DType::F32);
      float* f = reinterpret_cast<float*>(bytes.data());
      for (int64_t i = 0; i < t.n_elements(); ++i) f[i] -= 1.0f;
    }
    std::vector<int64_t> shape(t.ne, t.ne + t.n_dims);
    std::reverse(shape.begin(), shape.end());
    header[name] = {{"dtype", t.type == xent::DType::F16 ? "F16" : "F32"},
                    {"shape", shape},
                    {"data_offsets", {data.size(), data.size() + bytes.size()}}};
    data += bytes;
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8) h += ' ';
  const uint64_t len = h.size();
  std::string file(reinterpret_cast<const char*>(&len), 8);
  file += h + data;
  write_file(dir + "/model.safetensors", file.data(), file.size());
  write_json(dir + "/config.json", hf_config(*g, arch));

  const auto tokens = *g->get_string_array("tokenizer.ggml.tokens");
  const bool spm = *g->get_string("tokenizer.ggml.model") == "llama";
  if (spm) {
    const std::string m = spm_model(*g);
    write_file(dir + "/tokenizer.model", m.data(), m.size());
  } else {
    fs::copy_file(shared_path("models/hf/" + bpe_checkpoint + "/tokenizer.json"), dir + "/tokenizer.json");
  }
  // The special tokens the generated file names (its vocabulary's, not the checkpoint's).
  json tc = {{"add_bos_token", g->get_bool("tokenizer.ggml.add_bos_token").value_or(spm)},
             {"add_eos_token", g->get_bool("tokenizer.ggml.add_eos_token").value_or(false)}};
  for (const char* s : {"bos", "eos", "unknown"})
    if (auto id = g->get_int(std::string("tokenizer.ggml.") + s + "_token_id"))
      tc[std::string(s == std::string("unknown") ? "unk" : s) + "_token"] = std::string(tokens[*id]);
  if (auto t = g->get_string("tokenizer.chat_template")) tc["chat_template"] = *t;
  write_json(dir + "/tokenizer_config.json", tc);
}

// --- comparing -----------------------------------------------------------------------

std::string value_text(const xent::gguf::KeyValue& kv) {
  using VT = xent::gguf::ValueType;
  switch (kv.type) {
    case VT::STRING: return "\"" + std::string(kv.str) + "\"";
    case VT::ARRAY: {
      std::string s = "[" + std::to_string(kv.array_count) + ":";
      if (kv.array_type == VT::STRING) {
        for (auto v : kv.array_strings) s += std::string(v) + "\x1f";
      } else {
        s += std::string(reinterpret_cast<const char*>(kv.array_data),
                         kv.array_count * (kv.array_type == VT::U8 || kv.array_type == VT::I8 || kv.array_type == VT::BOOL ? 1
                                           : kv.array_type == VT::U16 || kv.array_type == VT::I16 ? 2
                                           : kv.array_type == VT::U64 || kv.array_type == VT::I64 || kv.array_type == VT::F64 ? 8
                                                                                                                           : 4));
      }
      return s + "]";
    }
    case VT::BOOL: return kv.u ? "true" : "false";
    default: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.9g", kv.f);
      return buf;
    }
  }
}

// The converted file holds every tensor of the generated one with the same type, shape
// and bytes (Gemma's norms within rounding of the -1 / +1), and every key but the name.
void compare_files(const std::string& original, const std::string& converted) {
  const auto a = xent::gguf::Reader::open(original);
  const auto b = xent::gguf::Reader::open(converted);
  CHECK(a->tensors().size() == b->tensors().size());
  for (const auto& t : a->tensors()) {
    INFO("tensor " << t.name);
    const auto* u = b->find_tensor(t.name);
    REQUIRE(u);
    CHECK(u->type == t.type);
    CHECK(std::vector<int64_t>(t.ne, t.ne + 4) == std::vector<int64_t>(u->ne, u->ne + 4));
    REQUIRE(u->size_bytes == t.size_bytes);
    if (std::memcmp(u->data, t.data, t.size_bytes) != 0) {
      REQUIRE(t.type == xent::DType::F32);
      const float* x = reinterpret_cast<const float*>(t.data);
      const float* y = reinterpret_cast<const float*>(u->data);
      float worst = 0;
      for (int64_t i = 0; i < t.n_elements(); ++i) worst = std::max(worst, std::fabs(x[i] - y[i]));
      CHECK(worst < 1e-6f);
    }
  }
  for (const auto& kv : a->kvs()) {
    if (kv.key == "general.name" || kv.key == "general.file_type") continue;
    INFO("key " << kv.key);
    const auto* other = b->find(kv.key);
    REQUIRE(other);
    CHECK(value_text(*other) == value_text(kv));
  }
  // What the converter adds beyond the generated file must not change the arithmetic.
  for (const auto& kv : b->kvs()) {
    if (a->find(kv.key)) continue;
    INFO("added key " << kv.key << " = " << value_text(kv));
    const std::string arch = *a->get_string("general.architecture");
    CHECK((kv.key == arch + ".vocab_size" || kv.key == "general.quantization_version" ||
           kv.key == arch + ".attention.key_length" || kv.key == arch + ".attention.value_length" ||
           kv.key.rfind("tokenizer.ggml.", 0) == 0));
  }
}

std::string convert(const std::string& dir, const std::string& out) {
  xent::hf::ConvertParams p;
  p.dir = dir;
  p.output = out;
  p.outtype = "f16";
  xent::hf::convert_checkpoint(p);
  return out;
}

std::string convert_error(const std::string& dir) {
  try {
    convert(dir, kTmp + "/refused.gguf");
  } catch (const xent::Error& e) {
    return e.what();
  }
  return "";
}

void round_trip(const std::string& shape, const std::string& vocab_model, const std::string& bpe_checkpoint = "") {
  const std::string original = generate(shape, vocab_model);
  const std::string dir = kTmp + "/" + shape + "-hf";
  export_hf(original, dir, bpe_checkpoint);
  const std::string converted = convert(dir, kTmp + "/" + shape + "-converted.gguf");
  compare_files(original, converted);
  const std::string ref_dir = std::string(XENT_SOURCE_DIR) + "/tests/models/reference/";
  xent::ContextParams cp;
  cp.n_threads = 2;
  for (const char* prompt : kPrompts) {
    INFO("prompt " << prompt);
    const auto r = check_reference_at(converted, ref_dir + shape + "-f16--" + prompt + ".json", prompt, cp, 0.05f);
    CHECK(r.top1_checked > 0);
    CHECK(r.top1_mismatch == 0);
  }
}

void edit_config(const std::string& dir, const std::function<void(json&)>& edit) {
  std::ifstream in(dir + "/config.json");
  json c = json::parse(in);
  edit(c);
  write_json(dir + "/config.json", c);
}

}  // namespace

TEST_CASE("convert: Qwen3 (q_norm/k_norm, head_dim wider than hidden/heads)", "[tools][convert][qwen3]") {
  round_trip("tiny-qwen3", "tiny-qwen2-f16", "tiny-qwen2-bf16");
}

TEST_CASE("convert: Gemma 2 (norms + 1, four norms per layer, soft-caps, window), SentencePiece tokenizer.model",
          "[tools][convert][gemma2]") {
  round_trip("tiny-gemma2", "tiny-llama-spm-f16");
}

TEST_CASE("convert: Gemma 3 (Q/K norms + 1, 5:1 windows, linear rope scaling)", "[tools][convert][gemma3]") {
  round_trip("tiny-gemma3", "tiny-llama-spm-f16");
}

TEST_CASE("convert: Phi-3 (fused qkv and gate_up, LongRoPE factors and attention factor)", "[tools][convert][phi3]") {
  round_trip("tiny-phi", "tiny-llama-spm-f16");
}

TEST_CASE("convert refuses what GGUF readers would compute differently, naming it", "[tools][convert]") {
  const std::string gemma3 = kTmp + "/tiny-gemma3-hf", gemma2 = kTmp + "/tiny-gemma2-hf", phi = kTmp + "/tiny-phi-hf";
  export_hf(generate("tiny-gemma3", "tiny-llama-spm-f16"), gemma3, "");
  export_hf(generate("tiny-gemma2", "tiny-llama-spm-f16"), gemma2, "");
  export_hf(generate("tiny-phi", "tiny-llama-spm-f16"), phi, "");
  struct Case {
    std::string dir, want;
    std::function<void(json&)> edit;
  };
  const std::vector<Case> cases = {
      {gemma3, "sliding_window_pattern 4", [](json& c) { c["sliding_window_pattern"] = 4; }},
      {gemma3, "rope_local_base_freq", [](json& c) { c["rope_local_base_freq"] = 20000.0; }},
      {gemma3, "final_logit_softcapping", [](json& c) { c["final_logit_softcapping"] = 30.0; }},
      {gemma3, "rope_scaling type 'yarn'", [](json& c) { c["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}}; }},
      {gemma3, "layer_types", [](json& c) {
         json lt = json::array();
         for (int i = 0; i < 12; ++i) lt.push_back(i % 2 ? "full_attention" : "sliding_attention");
         c["layer_types"] = lt;
       }},
      {gemma2, "query_pre_attn_scalar", [](json& c) { c["query_pre_attn_scalar"] = 224; }},
      {gemma2, "hidden_activation 'gelu'", [](json& c) { c["hidden_activation"] = "gelu"; }},
      {gemma2, "attn_logit_softcapping null", [](json& c) { c["attn_logit_softcapping"] = nullptr; }},
      {gemma2, "rope_scaling type 'linear'", [](json& c) { c["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.0}}; }},
      {phi, "rope_scaling type 'yarn'", [](json& c) { c["rope_scaling"]["type"] = "yarn"; }},
      {phi, "rope_scaling.attention_factor", [](json& c) { c["rope_scaling"]["attention_factor"] = 1.2; }},
      {phi, "factors", [](json& c) { c["rope_scaling"]["long_factor"].erase(0); }},
      {phi, "partial_rotary_factor", [](json& c) { c["partial_rotary_factor"] = 0.3; }},
  };
  for (const Case& k : cases) {
    INFO("expecting an error naming " << k.want);
    const std::string saved = k.dir + "/config.saved";
    fs::copy_file(k.dir + "/config.json", saved, fs::copy_options::overwrite_existing);
    edit_config(k.dir, k.edit);
    const std::string err = convert_error(k.dir);
    INFO("error: " << err);
    CHECK(err.find(k.want) != std::string::npos);
    fs::copy_file(saved, k.dir + "/config.json", fs::copy_options::overwrite_existing);
  }
  // The untouched folders still convert, so the errors above came from the edits.
  CHECK(convert_error(gemma3).empty());
  CHECK(convert_error(phi).empty());
}
