// Nothing in a model file that changes the arithmetic is ignored: a tensor the architecture
// does not consume, an <arch>.* key it does not apply, a rope scaling type it lacks, a
// mixture of experts - each is a load error naming it. The files are copies of a shipped
// model with one thing added.
#include <catch2/catch.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/run-xent.h"
#include "formats/error.h"
#include "formats/gguf.h"
#include "runtime/inference/model.h"

using namespace xent;

namespace {

std::string shared_model(const std::string& name) { return std::string(XENT_SHARED_DIR) + "/models/" + name + ".gguf"; }

// Copies `source` without the tensor `drop` and with edit() applied to the writer (after
// every key and tensor is added), and returns the error loading it gives ("" when it loads).
std::string load_error_of_copy(const std::string& source, const std::string& tag,
                               const std::function<void(gguf::Writer&)>& edit, const std::string& drop = "") {
  auto r = gguf::Reader::open(source);
  gguf::Writer w;
  for (const gguf::KeyValue& kv : r->kvs())
    if (kv.key != "general.alignment") w.copy_kv(kv);
  for (const gguf::TensorInfo& t : r->tensors())
    if (t.name != drop) w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + std::max(1, t.n_dims)), t.data, t.size_bytes);
  edit(w);
  const std::string path = std::string(XENT_BINARY_DIR) + "/strict-" + tag + ".gguf";
  w.write(path);
  try {
    Model::load(path);
  } catch (const Error& e) {
    std::filesystem::remove(path);
    return e.what();
  }
  std::filesystem::remove(path);
  return "";
}

const std::vector<float> kNorm(256, 1.0f);

// A generated model of `shape` (xent bench --synthetic) in the binary directory.
std::string generated(const std::string& shape) {
  const std::string dir = std::string(XENT_BINARY_DIR) + "/generated-models";
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/strict-" + shape + ".gguf";
  const auto r = test::run_xent(dir, "bench --synthetic " + shape + " --type F16 -o " + path);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return path;
}

}  // namespace

TEST_CASE("an unchanged copy loads: the check does not refuse what the architecture reads", "[model][strict]") {
  for (const char* m : {"tiny-llama-spm-f16", "tiny-llama-bpe-q8_0", "tiny-qwen2-q8_0", "tiny-gpt2-q8_0"})
    CHECK(load_error_of_copy(shared_model(m), "plain", [](gguf::Writer&) {}) == "");
}

TEST_CASE("a tensor no architecture consumes is refused by name", "[model][strict]") {
  // Qwen3's per-head Q norm in a llama file: ignoring it would compute a different model.
  const std::string err = load_error_of_copy(shared_model("tiny-llama-spm-f16"), "tensor", [](gguf::Writer& w) {
    w.add_tensor("blk.0.attn_q_norm.weight", DType::F32, {32}, kNorm.data(), 32 * sizeof(float));
  });
  INFO(err);
  CHECK(err.find("'blk.0.attn_q_norm.weight'") != std::string::npos);
  CHECK(err.find("not used") != std::string::npos);
  // And in GPT-2.
  const std::string err2 = load_error_of_copy(shared_model("tiny-gpt2-q8_0"), "tensor2", [](gguf::Writer& w) {
    w.add_tensor("blk.3.post_attention_norm.weight", DType::F32, {256}, kNorm.data(), 256 * sizeof(float));
  });
  CHECK(err2.find("'blk.3.post_attention_norm.weight'") != std::string::npos);
}

TEST_CASE("a rope scaling type xent lacks is refused naming key and value", "[model][strict]") {
  const std::string err = load_error_of_copy(shared_model("tiny-llama-spm-f16"), "longrope", [](gguf::Writer& w) {
    w.set_string("llama.rope.scaling.type", "longrope");
    w.set_f32("llama.rope.scaling.factor", 4.0f);
  });
  INFO(err);
  CHECK(err.find("llama.rope.scaling.type") != std::string::npos);
  CHECK(err.find("longrope") != std::string::npos);
}

TEST_CASE("an <arch> key that changes the arithmetic and is not applied is refused", "[model][strict]") {
  const std::string err = load_error_of_copy(shared_model("tiny-llama-spm-f16"), "softcap", [](gguf::Writer& w) {
    w.set_f32("llama.attn_logit_softcapping", 50.0f);
  });
  INFO(err);
  CHECK(err.find("'llama.attn_logit_softcapping' = 50") != std::string::npos);
  const std::string err2 = load_error_of_copy(shared_model("tiny-qwen2-q8_0"), "window", [](gguf::Writer& w) {
    w.set_u32("qwen2.attention.sliding_window", 64);
  });
  CHECK(err2.find("'qwen2.attention.sliding_window' = 64") != std::string::npos);
  const std::string err3 = load_error_of_copy(shared_model("tiny-llama-spm-f16"), "moe", [](gguf::Writer& w) {
    w.set_u32("llama.expert_count", 8);
    w.set_u32("llama.expert_used_count", 2);
  });
  CHECK(err3.find("llama.expert_count") != std::string::npos);
}

TEST_CASE("keys without effect on the arithmetic, and a zero expert count, still load", "[model][strict]") {
  CHECK(load_error_of_copy(shared_model("tiny-llama-spm-f16"), "benign", [](gguf::Writer& w) {
    w.set_u32("llama.expert_count", 0);
    w.set_bool("llama.rope.scaling.finetuned", false);
    w.set_string("llama.rope.scaling.type", "none");
    w.set_u32("llama.attention.key_length", 32);
    w.set_u32("llama.attention.value_length", 32);
  }) == "");
}

TEST_CASE("qwen3, gemma3 and phi3 files load, and what they cannot apply is refused by name", "[model][strict]") {
  const std::string qwen3 = generated("tiny-qwen3"), gemma3 = generated("tiny-gemma3"), phi3 = generated("tiny-phi");
  for (const std::string& m : {qwen3, gemma3, phi3}) CHECK(load_error_of_copy(m, "plain-new", [](gguf::Writer&) {}) == "");
  // Gemma 3 scales rope linearly or not at all.
  std::string err = load_error_of_copy(gemma3, "gemma3-yarn", [](gguf::Writer& w) {
    w.set_string("gemma3.rope.scaling.type", "yarn");
  });
  CHECK(err.find("gemma3.rope.scaling.type 'yarn'") != std::string::npos);
  // A Phi-3 file must say its window unless it is one of the shapes with a known default.
  err = load_error_of_copy(phi3, "phi3-nowindow", [](gguf::Writer& w) { w.remove("phi3.attention.sliding_window"); });
  CHECK(err.find("phi3.attention.sliding_window is missing") != std::string::npos);
  // LongRoPE needs both factor sets.
  err = load_error_of_copy(phi3, "phi3-onefactor", [](gguf::Writer&) {}, "rope_factors_short.weight");
  CHECK(err.find("only one of rope_factors_long.weight and rope_factors_short.weight") != std::string::npos);
  // Qwen3 without its per-head norms is not Qwen3.
  err = load_error_of_copy(qwen3, "qwen3-nonorm", [](gguf::Writer&) {}, "blk.1.attn_k_norm.weight");
  CHECK(err.find("blk.1.attn_k_norm.weight") != std::string::npos);
}
