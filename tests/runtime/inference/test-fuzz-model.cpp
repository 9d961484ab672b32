// Model files the fuzzers of tests/fuzz/ (fuzz-gguf) found or pointed at, as regression
// tests: each load ends in a clear xent::Error, quickly and within memory.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "formats/error.h"
#include "formats/gguf.h"
#include "runtime/inference/model.h"

using namespace xent;

namespace {

// The load error of a copy of a shipped model with edit() applied ("" when it loads).
std::string load_error(const std::string& model, const std::function<void(gguf::Writer&)>& edit) {
  auto r = gguf::Reader::open(std::string(XENT_SHARED_DIR) + "/models/" + model + ".gguf");
  gguf::Writer w;
  for (const gguf::KeyValue& kv : r->kvs())
    if (kv.key != "general.alignment") w.copy_kv(kv);
  for (const gguf::TensorInfo& t : r->tensors())
    w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims), t.data, t.size_bytes);
  edit(w);
  const std::string path = std::string(XENT_BINARY_DIR) + "/fuzz-model-" + std::to_string(getpid()) + ".gguf";
  w.write(path);
  std::string err;
  try {
    Model::load(path);
  } catch (const Error& e) {
    err = e.what();
  }
  std::filesystem::remove(path);
  return err;
}

}  // namespace

TEST_CASE("a block_count beyond the file's tensors is refused before layers are allocated", "[model][fuzz]") {
  // Found by fuzz-gguf: block_count 2^40 sized the layer table first (out of memory).
  CHECK_THAT(load_error("tiny-llama-spm-q8_0", [](gguf::Writer& w) { w.set_u32("llama.block_count", 4000000000u); }),
             Catch::Contains("block_count 4000000000 but the file holds only 39 tensors"));
  CHECK_THAT(load_error("tiny-gpt2-q8_0", [](gguf::Writer& w) { w.set_u64("gpt2.block_count", uint64_t{1} << 40); }),
             Catch::Contains("but the file holds only 53 tensors"));
}

TEST_CASE("GPT-2 with head_count 0 is an error, not a division by zero", "[model][fuzz]") {
  CHECK_THAT(load_error("tiny-gpt2-q8_0", [](gguf::Writer& w) { w.set_u32("gpt2.attention.head_count", 0); }),
             Catch::Contains("'gpt2.attention.head_count' has invalid value 0"));
}
