// Inputs the fuzzers of tests/fuzz/ found (scripts/fuzz.sh), kept as regression tests: each
// must end in a clear xent::Error, quickly, with no undefined behaviour (the sanitizer job
// of scripts/run-tests.sh runs this file under ASan + UBSan).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "formats/error.h"
#include "formats/hf-convert.h"
#include "formats/hf-import.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A checkpoint folder holding config.json and a one-tensor model.safetensors.
struct Checkpoint {
  fs::path dir;
  explicit Checkpoint(const json& config) {
    dir = fs::path(XENT_BINARY_DIR) / ("fuzz-regression-" + std::to_string(getpid()));
    fs::create_directories(dir);
    std::ofstream(dir / "config.json") << config.dump();
    const std::string header = R"({"model.embed_tokens.weight": {"dtype": "F16", "shape": [2, 2], "data_offsets": [0, 8]}})";
    const uint64_t n = header.size();
    std::string bytes(8, '\0');
    std::memcpy(bytes.data(), &n, 8);
    bytes += header + std::string(8, '\0');
    std::ofstream(dir / "model.safetensors", std::ios::binary) << bytes;
  }
  ~Checkpoint() { fs::remove_all(dir); }
  std::string convert_error() const {
    xent::hf::ConvertParams p;
    p.dir = dir.string();
    p.output = (dir / "out.gguf").string();
    try {
      xent::hf::convert_checkpoint(p);
    } catch (const xent::Error& e) {
      return e.what();
    }
    return "";
  }
};

json llama_config() {
  return {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", 64},
          {"num_hidden_layers", 1}, {"num_attention_heads", 2}, {"max_position_embeddings", 8},
          {"intermediate_size", 8}, {"vocab_size", 8}};
}

}  // namespace

TEST_CASE("convert: a GPT-2 n_embd of 2^62 is out of range, not an overflow of 4 * n_embd", "[formats][fuzz]") {
  const Checkpoint c({{"architectures", {"GPT2LMHeadModel"}}, {"model_type", "gpt2"}, {"n_embd", int64_t{1} << 62},
                      {"n_layer", 1}, {"n_head", 1}, {"n_positions", 8}, {"vocab_size", 8}});
  CHECK_THAT(c.convert_error(), Catch::Contains("out of range"));
}

TEST_CASE("convert: 2^32 layers over a one-tensor checkpoint fail at once", "[formats][fuzz]") {
  // Found by fuzz-safetensors: the table of expected tensors was built for every layer
  // first (minutes and gigabytes) before any was found missing.
  json config = llama_config();
  config["num_hidden_layers"] = int64_t{1} << 32;
  const Checkpoint c(config);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_THAT(c.convert_error(), Catch::Contains("4294967296 layers, but the checkpoint holds only 1 tensors"));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
}

TEST_CASE("convert: head_dim is bounded, so n_head * head_dim cannot overflow", "[formats][fuzz]") {
  json config = llama_config();
  config["head_dim"] = int64_t{1} << 40;
  const Checkpoint c(config);
  CHECK_THAT(c.convert_error(), Catch::Contains("head_dim must be even, positive and at most 65536"));
}

TEST_CASE("convert: a model_type that is not a string is a clear error (fuzz-safetensors)", "[formats][fuzz]") {
  json config = llama_config();
  config["model_type"] = 7;
  const Checkpoint c(config);
  CHECK_THAT(c.convert_error(), Catch::Matchers::Contains("model_type is not a string"));
}

TEST_CASE("convert: tokenizer.json fields of the wrong JSON type are clear errors", "[formats][fuzz]") {
  const Checkpoint c(llama_config());
  const xent::hf::Config config = xent::hf::Config::load(c.dir.string());
  auto vocab_error = [&](const json& tokenizer) -> std::string {
    std::ofstream(c.dir / "tokenizer.json") << tokenizer.dump();
    try {
      (void)xent::hf::read_vocab(c.dir.string(), config, 2, "", "");
    } catch (const xent::Error& e) {
      return e.what();
    }
    return "";
  };
  const json model = {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}}}, {"merges", json::array()}};
  CHECK_THAT(vocab_error({{"model", {{"type", 5}}}}), Catch::Matchers::Contains("wrong type"));
  CHECK_THAT(vocab_error({{"model", model}, {"added_tokens", {{{"id", 1}, {"content", "<x>"}, {"special", "yes"}}}}}),
             Catch::Matchers::Contains("wrong type"));
  json bad_fallback = model;
  bad_fallback["byte_fallback"] = "no";
  CHECK_THAT(vocab_error({{"model", bad_fallback}}), Catch::Matchers::Contains("wrong type"));
}
