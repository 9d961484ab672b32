// `xent convert`: the shipped Hugging Face checkpoints convert to GGUF files that
// reproduce the peer's reference logits; bad checkpoints and hostile safetensors headers
// give errors, never crashes.
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "common/reference.h"
#include "formats/error.h"
#include "formats/gguf.h"
#include "formats/hf-convert.h"
#include "formats/hf-import.h"
#include "formats/safetensors.h"

namespace fs = std::filesystem;
using xent::test::check_reference;
using xent::test::shared_path;

namespace {

const std::string kTmp = std::string(XENT_BINARY_DIR) + "/test-convert";
const char* const kPrompts[] = {"p1-clinical", "p2-story", "p3-note", "p4-unicode"};

std::string convert(const std::string& hf_name, const std::string& outtype) {
  fs::create_directories(kTmp);
  xent::hf::ConvertParams p;
  p.dir = shared_path("models/hf/" + hf_name);
  p.output = kTmp + "/" + hf_name + "-" + outtype + ".gguf";
  p.outtype = outtype;
  xent::hf::convert_checkpoint(p);
  return p.output;
}

void check_all_prompts(const std::string& path, const std::string& ref) {
  xent::ContextParams cp;
  for (const char* prompt : kPrompts) {
    INFO("prompt " << prompt);
    const auto r = check_reference(path, ref, prompt, cp, 0.05f);
    CHECK(r.top1_mismatch == 0);
  }
}

// A safetensors file from a header and a data section.
std::vector<uint8_t> safetensors_bytes(const std::string& header, size_t data_bytes, uint64_t claimed_len = 0) {
  std::vector<uint8_t> b(8 + header.size() + data_bytes, 0);
  const uint64_t len = claimed_len ? claimed_len : header.size();
  std::memcpy(b.data(), &len, 8);
  std::memcpy(b.data() + 8, header.data(), header.size());
  return b;
}

std::string error_of(const std::vector<uint8_t>& bytes) {
  try {
    xent::safetensors::File::from_memory(bytes.data(), bytes.size(), "test");
  } catch (const xent::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("GPT-2 checkpoint converts to F16 and F32 and matches the reference", "[tools][convert][model]") {
  const std::string f16 = convert("tiny-gpt2-f16", "f16");
  {
    auto f = xent::gguf::Reader::open(f16);
    CHECK(f->get_string("general.architecture") == "gpt2");
    CHECK(f->get_int("general.file_type") == 1);
    // Conv1D weights transposed to GGUF rows; position table and 1-D tensors stay F32;
    // the output matrix is an explicit copy of the embedding.
    REQUIRE(f->find_tensor("blk.0.attn_qkv.weight"));
    CHECK(f->find_tensor("blk.0.attn_qkv.weight")->ne[0] == 256);
    CHECK(f->find_tensor("blk.0.attn_qkv.weight")->ne[1] == 768);
    CHECK(f->find_tensor("blk.0.attn_qkv.weight")->type == xent::DType::F16);
    CHECK(f->find_tensor("position_embd.weight")->type == xent::DType::F32);
    CHECK(f->find_tensor("blk.0.attn_norm.bias")->type == xent::DType::F32);
    const auto* out = f->find_tensor("output.weight");
    const auto* emb = f->find_tensor("token_embd.weight");
    REQUIRE(out);
    REQUIRE(out->size_bytes == emb->size_bytes);
    CHECK(std::memcmp(out->data, emb->data, out->size_bytes) == 0);
    CHECK(f->get_string("tokenizer.ggml.pre") == "gpt-2");
  }
  check_all_prompts(f16, "tiny-gpt2-f16");
  check_all_prompts(convert("tiny-gpt2-f16", "f32"), "tiny-gpt2-f16");
}

TEST_CASE("Llama checkpoint (two shards, HF rotary layout) converts and matches", "[tools][convert][model]") {
  const std::string path = convert("tiny-llama-bpe-f16", "f16");
  check_all_prompts(path, "tiny-llama-bpe-f16");
  // The peer's F16 file was made from the same weights: every matrix, Q and K after the
  // rotary permutation included, must be the same bytes.
  auto ours = xent::gguf::Reader::open(path);
  auto theirs = xent::gguf::Reader::open(shared_path("models/tiny-llama-bpe-f16.gguf"));
  REQUIRE(ours->tensors().size() == theirs->tensors().size());
  int matrices = 0;
  for (const auto& t : theirs->tensors()) {
    const auto* o = ours->find_tensor(t.name);
    REQUIRE(o);
    CHECK(o->type == t.type);
    if (t.n_dims < 2) continue;
    INFO(t.name);
    REQUIRE(o->size_bytes == t.size_bytes);
    CHECK(std::memcmp(o->data, t.data, t.size_bytes) == 0);
    ++matrices;
  }
  CHECK(matrices == 1 + 1 + 4 * 7);
  CHECK(ours->get_string("tokenizer.chat_template") == theirs->get_string("tokenizer.chat_template"));
  CHECK(ours->get_bool("tokenizer.ggml.add_bos_token") == false);
  CHECK(ours->get_string("tokenizer.ggml.pre") == "gpt-2");
}

TEST_CASE("Qwen2 checkpoint converts to BF16 and matches", "[tools][convert][model]") {
  const std::string path = convert("tiny-qwen2-bf16", "auto");
  auto f = xent::gguf::Reader::open(path);
  CHECK(f->get_int("general.file_type") == 32);
  CHECK(f->find_tensor("blk.0.attn_q.weight")->type == xent::DType::BF16);
  CHECK(f->find_tensor("blk.0.attn_q.bias")->type == xent::DType::F32);
  CHECK(f->get_string("tokenizer.ggml.pre") == "qwen2");
  check_all_prompts(path, "tiny-qwen2-bf16");
}

TEST_CASE("convert refuses an unsupported architecture by name", "[tools][convert]") {
  const std::string dir = kTmp + "/mamba";
  fs::create_directories(dir);
  std::ofstream(dir + "/config.json") << R"({"architectures": ["MambaForCausalLM"], "model_type": "mamba"})";
  xent::hf::ConvertParams p;
  p.dir = dir;
  p.output = kTmp + "/mamba.gguf";
  try {
    xent::hf::convert_checkpoint(p);
    FAIL("no error");
  } catch (const xent::Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("MambaForCausalLM") != std::string::npos);
    CHECK(msg.find("LlamaForCausalLM") != std::string::npos);  // lists what is supported
  }
  CHECK_FALSE(fs::exists(p.output));
  // And through the command line: one line, non-zero exit.
  const std::string cmd = std::string(XENT_BINARY_DIR) + "/apps/xent convert " + dir + " -o " + p.output + " 2>" +
                          kTmp + "/err-" + std::to_string(::getpid()) + ".txt";
  CHECK(std::system(cmd.c_str()) != 0);
  std::ifstream err(kTmp + "/err-" + std::to_string(::getpid()) + ".txt");
  std::string line;
  std::getline(err, line);
  CHECK(line.find("unsupported architecture 'MambaForCausalLM'") != std::string::npos);
}

TEST_CASE("hostile safetensors headers are errors", "[tools][convert][safetensors]") {
  const std::string ok = R"({"w": {"dtype": "F16", "shape": [2, 3], "data_offsets": [0, 12]}})";
  {
    const auto b = safetensors_bytes(ok, 12);
    auto f = xent::safetensors::File::from_memory(b.data(), b.size());
    REQUIRE(f->tensors().size() == 1);
    CHECK(f->find("w")->size_bytes == 12);
  }
  CHECK(error_of(safetensors_bytes(ok, 12, uint64_t{1} << 62)).find("exceeds the limit") != std::string::npos);
  CHECK(error_of(safetensors_bytes(ok, 12, 10000)).find("past the end") != std::string::npos);
  CHECK(error_of(safetensors_bytes(ok, 6)).find("past the end") != std::string::npos);  // data truncated
  CHECK(error_of({1, 2, 3}).find("too short") != std::string::npos);
  const std::string mismatch = R"({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 12]}})";
  CHECK(error_of(safetensors_bytes(mismatch, 12)).find("needs 24") != std::string::npos);
  const std::string overflow =
      R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296, 4294967296], "data_offsets": [0, 0]}})";
  CHECK(error_of(safetensors_bytes(overflow, 0)).find("too large") != std::string::npos);
  const std::string reversed = R"({"w": {"dtype": "F16", "shape": [2], "data_offsets": [8, 4]}})";
  CHECK(error_of(safetensors_bytes(reversed, 12)).find("reversed") != std::string::npos);
  const std::string negative = R"({"w": {"dtype": "F16", "shape": [-2], "data_offsets": [0, 4]}})";
  CHECK(error_of(safetensors_bytes(negative, 4)).find("non-negative") != std::string::npos);
  CHECK(error_of(safetensors_bytes(R"({"w": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 4]}})", 4))
            .find("unsupported dtype") != std::string::npos);
  CHECK(error_of(safetensors_bytes("{not json", 0)).find("not valid JSON") != std::string::npos);
  CHECK(error_of(safetensors_bytes(R"({"w": 5})", 0)).find("not an object") != std::string::npos);
}

TEST_CASE("tokenizer import: merges in both forms, pre-tokenizer names", "[tools][convert][tokenizer]") {
  // The same tokenizer with [a, b] merges gives the same vocabulary as with "a b".
  const std::string src = shared_path("models/hf/tiny-llama-bpe-f16");
  const std::string dir = kTmp + "/array-merges";
  fs::create_directories(dir);
  fs::copy_file(src + "/config.json", dir + "/config.json", fs::copy_options::overwrite_existing);
  nlohmann::json tj = xent::hf::read_json_file(src + "/tokenizer.json");
  nlohmann::json pairs = nlohmann::json::array();
  for (const auto& m : tj["model"]["merges"]) {
    const std::string s = m.get<std::string>();
    pairs.push_back({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
  }
  tj["model"]["merges"] = pairs;
  std::ofstream(dir + "/tokenizer.json") << tj.dump();
  const auto config = xent::hf::Config::load(src);
  const auto a = xent::hf::read_vocab(src, config, 8192, "", "");
  const auto b = xent::hf::read_vocab(dir, config, 8192, "", "");
  CHECK(a.merges.size() == 7933);
  CHECK(a.merges == b.merges);
  CHECK(a.tokens == b.tokens);
  CHECK(a.token_types[8191] == 3);  // special added token -> control
  CHECK(a.bos == 8191);
  CHECK(a.eos == 8190);  // tokenizer_config.json's eos_token "<|im_end|>"

  using xent::hf::identify_pre_tokenizer;
  const nlohmann::json byte_level = {{"type", "ByteLevel"}, {"use_regex", true}};
  CHECK(identify_pre_tokenizer(byte_level) == "gpt-2");
  auto split = [](const std::string& re) {
    return nlohmann::json{{"type", "Sequence"},
                          {"pretokenizers",
                           {{{"type", "Split"}, {"pattern", {{"Regex", re}}}, {"behavior", "Isolated"}},
                            {{"type", "ByteLevel"}, {"use_regex", false}}}}};
  };
  CHECK(identify_pre_tokenizer(split("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                                     "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")) == "llama-bpe");
  CHECK(identify_pre_tokenizer(split("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                                     "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")) == "qwen2");
  const nlohmann::json smollm = {
      {"type", "Sequence"},
      {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, {{"type", "ByteLevel"}, {"use_regex", true}}}}};
  CHECK(identify_pre_tokenizer(smollm) == "smollm");
  CHECK(identify_pre_tokenizer(split("[0-9]+")) == "");
}

namespace {

// A copy of a shipped checkpoint whose config.json gets `rope_scaling`.
std::string checkpoint_with_rope_scaling(const std::string& hf_name, const std::string& tag,
                                         const nlohmann::json& rope_scaling) {
  const std::string src = shared_path("models/hf/" + hf_name), dir = kTmp + "/" + tag;
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(src))
    if (e.path().filename() != "config.json") fs::create_symlink(e.path(), dir + "/" + e.path().filename().string());
  std::ifstream in(src + "/config.json");
  nlohmann::json config = nlohmann::json::parse(in);
  config["rope_scaling"] = rope_scaling;
  std::ofstream(dir + "/config.json") << config.dump(1);
  return dir;
}

std::string convert_dir(const std::string& dir, const std::string& out) {
  xent::hf::ConvertParams p;
  p.dir = dir;
  p.output = out;
  p.outtype = "f16";
  xent::hf::convert_checkpoint(p);
  return out;
}

}  // namespace

TEST_CASE("convert: Llama 3 rope_scaling becomes rope_freqs.weight, as Hugging Face scales", "[tools][convert]") {
  const double factor = 8, low = 1, high = 4, orig = 64, base = 10000;
  const std::string dir = checkpoint_with_rope_scaling(
      "tiny-llama-bpe-f16", "llama3",
      {{"rope_type", "llama3"}, {"factor", factor}, {"low_freq_factor", low}, {"high_freq_factor", high},
       {"original_max_position_embeddings", orig}});
  const std::string path = convert_dir(dir, kTmp + "/llama3.gguf");
  auto f = xent::gguf::Reader::open(path);
  const auto* t = f->find_tensor("rope_freqs.weight");
  REQUIRE(t);
  REQUIRE(t->type == xent::DType::F32);
  REQUIRE(t->n_elements() == 16);  // head_dim 32 / 2
  const float* got = reinterpret_cast<const float*>(t->data);
  // Transformers' form: it rewrites the inverse frequencies; the file holds old / new.
  int n_kept = 0, n_scaled = 0, n_blended = 0;
  for (int i = 0; i < 16; ++i) {
    const double inv = std::pow(base, -2.0 * i / 32), wavelen = 2 * M_PI / inv;
    double inv_new = wavelen > orig / low ? inv / factor : inv;
    if (wavelen >= orig / high && wavelen <= orig / low) {
      const double smooth = (orig / wavelen - low) / (high - low);
      inv_new = (1 - smooth) * inv_new / factor + smooth * inv_new;
      ++n_blended;
    } else {
      ++(wavelen < orig / high ? n_kept : n_scaled);
    }
    INFO("pair " << i);
    CHECK(std::fabs(got[i] - inv / inv_new) < 1e-5 * (inv / inv_new));
  }
  CHECK(n_kept > 0);  // the case covers all three bands
  CHECK(n_scaled > 0);
  CHECK(n_blended > 0);
  // The file loads (rope_freqs.weight is consumed, not refused as unused).
  auto model = xent::Model::load(path);
  CHECK(model->hparams().n_rot == 32);
}

TEST_CASE("convert: YaRN rope_scaling becomes rope.scaling.* keys; unknown fields are refused", "[tools][convert]") {
  const std::string dir = checkpoint_with_rope_scaling(
      "tiny-qwen2-bf16", "yarn", {{"type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 512}});
  auto f = xent::gguf::Reader::open(convert_dir(dir, kTmp + "/yarn.gguf"));
  CHECK(f->get_string("qwen2.rope.scaling.type") == "yarn");
  CHECK(f->get_float("qwen2.rope.scaling.factor") == 4.0);
  CHECK(f->get_int("qwen2.rope.scaling.original_context_length") == 512);
  CHECK_NOTHROW(xent::Model::load(kTmp + "/yarn.gguf"));

  for (const auto& [tag, rs, needle] : std::vector<std::tuple<std::string, nlohmann::json, std::string>>{
           {"mrope", {{"type", "yarn"}, {"factor", 4.0}, {"mrope_section", {16, 24, 24}}}, "rope_scaling.mrope_section"},
           {"beta", {{"type", "yarn"}, {"factor", 4.0}, {"beta_fast", 16}}, "beta_fast"},
           {"dynamic", {{"type", "dynamic"}, {"factor", 2.0}}, "'dynamic'"}}) {
    const std::string d = checkpoint_with_rope_scaling("tiny-qwen2-bf16", tag, rs);
    INFO(tag);
    try {
      convert_dir(d, kTmp + "/" + tag + ".gguf");
      FAIL("no error");
    } catch (const xent::Error& e) {
      CHECK(std::string(e.what()).find(needle) != std::string::npos);
    }
  }
}
