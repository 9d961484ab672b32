// `xent quantize`: from tiny-llama-spm-f32.gguf, every type reproduces the peer's reference
// logits; the 32-block types are the peer's bytes exactly; the mixes choose the peer's type
// for every tensor; the fallbacks and the never-overwrite-the-input rule hold.
#include <unistd.h>
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "common/reference.h"
#include "formats/gguf.h"
#include "formats/quants.h"

namespace fs = std::filesystem;
using xent::test::shared_path;

namespace {

const std::string kXent = std::string(XENT_BINARY_DIR) + "/apps/xent";
const std::string kTmp = std::string(XENT_BINARY_DIR) + "/test-quantize";
const std::string kF32 = shared_path("models/tiny-llama-spm-f32.gguf");
const char* const kPrompts[] = {"p1-clinical", "p2-story", "p3-note", "p4-unicode"};

struct Run {
  int exit_code = -1;
  std::string err;
};

Run run_xent(const std::string& args) {
  fs::create_directories(kTmp);
  const std::string err_path = kTmp + "/stderr-" + std::to_string(::getpid()) + ".txt";
  const int status = std::system((kXent + " " + args + " >/dev/null 2>" + err_path).c_str());
  Run r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(err_path);
  r.err.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return r;
}

// Quantizes the F32 model once per type per test run.
std::string quantized(const std::string& type) {
  static std::map<std::string, std::string> done;
  auto it = done.find(type);
  if (it != done.end()) return it->second;
  const std::string out = kTmp + "/tiny-llama-spm-" + type + ".gguf";
  const Run r = run_xent("quantize " + kF32 + " " + out + " " + type + " --threads 2");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  done[type] = out;
  return out;
}

std::vector<float> dequantized(const xent::gguf::TensorInfo& t) {
  std::vector<float> out(static_cast<size_t>(t.n_elements()));
  const int64_t rows = t.n_elements() / t.ne[0];
  const size_t row_bytes = xent::dtype_row_bytes(t.type, t.ne[0]);
  for (int64_t r = 0; r < rows; ++r) xent::dequantize_row(t.type, t.data + r * row_bytes, &out[r * t.ne[0]], t.ne[0]);
  return out;
}

}  // namespace

TEST_CASE("every quantization type passes its peer reference", "[tools][quantize][model]") {
  // Shipped files and the references of files the peer made but did not ship.
  const char* types[] = {"q8_0", "q4_0", "q5_0", "q2_k", "q4_k_m", "q5_k_m", "q6_k", "bf16", "q4_1", "q5_1", "q3_k_m"};
  for (const char* type : types) {
    const std::string ref = std::string("tiny-llama-spm-") + type;
    const float tol = xent::test::reference_tolerance(ref);
    for (const char* prompt : kPrompts) {
      INFO(ref << " " << prompt);
      const auto r = xent::test::check_reference(quantized(type), ref, prompt, xent::ContextParams{}, tol);
      CHECK(r.top1_mismatch == 0);
    }
  }
}

TEST_CASE("Q8_0, Q4_0, Q5_0 are byte-identical to the shipped files", "[tools][quantize]") {
  for (const char* type : {"q8_0", "q4_0", "q5_0"}) {
    auto ours = xent::gguf::Reader::open(quantized(type));
    auto theirs = xent::gguf::Reader::open(shared_path(std::string("models/tiny-llama-spm-") + type + ".gguf"));
    REQUIRE(ours->tensors().size() == theirs->tensors().size());
    for (size_t i = 0; i < theirs->tensors().size(); ++i) {
      const auto& t = theirs->tensors()[i];
      const auto& o = ours->tensors()[i];
      INFO(type << " " << t.name);
      CHECK(o.name == t.name);  // same order
      REQUIRE(o.type == t.type);
      REQUIRE(o.size_bytes == t.size_bytes);
      CHECK(std::memcmp(o.data, t.data, t.size_bytes) == 0);
    }
    CHECK(ours->get_int("general.file_type") == theirs->get_int("general.file_type"));
    CHECK(ours->get_int("general.quantization_version") == 2);
  }
}

TEST_CASE("the mixes choose the peer's type for every tensor", "[tools][quantize]") {
  for (const char* type : {"q2_k", "q4_k_m", "q5_k_m", "q6_k", "q4_0", "q5_0", "q8_0"}) {
    auto ours = xent::gguf::Reader::open(quantized(type));
    auto theirs = xent::gguf::Reader::open(shared_path(std::string("models/tiny-llama-spm-") + type + ".gguf"));
    REQUIRE(ours->tensors().size() == theirs->tensors().size());
    for (const auto& t : theirs->tensors()) {
      const auto* o = ours->find_tensor(t.name);
      REQUIRE(o);
      INFO(type << " " << t.name << ": ours " << xent::dtype_name(o->type) << ", peer " << xent::dtype_name(t.type));
      CHECK(o->type == t.type);
    }
    CHECK(ours->get_int("general.file_type") == theirs->get_int("general.file_type"));
  }
  // Q3_K_M has no shipped file: its rules, spelled out (4 layers, GQA 2).
  auto q3 = xent::gguf::Reader::open(quantized("q3_k_m"));
  using xent::DType;
  CHECK(q3->find_tensor("output.weight")->type == DType::Q6_K);
  CHECK(q3->find_tensor("token_embd.weight")->type == DType::Q3_K);
  CHECK(q3->find_tensor("blk.0.attn_v.weight")->type == DType::Q5_K);
  CHECK(q3->find_tensor("blk.1.attn_v.weight")->type == DType::Q5_K);
  CHECK(q3->find_tensor("blk.2.attn_v.weight")->type == DType::Q4_K);
  CHECK(q3->find_tensor("blk.3.attn_output.weight")->type == DType::Q4_K);
  CHECK(q3->find_tensor("blk.3.ffn_down.weight")->type == DType::Q4_K);
  CHECK(q3->find_tensor("blk.3.ffn_up.weight")->type == DType::Q3_K);
  CHECK(q3->find_tensor("blk.3.ffn_norm.weight")->type == DType::F32);
  CHECK(q3->get_int("general.file_type") == 12);
}

TEST_CASE("quantize -> dequantize error stays within each type's bound", "[tools][quantize]") {
  // Relative RMS error over a whole weight matrix; bounds are about 1.5x the measured
  // error of these random weights, so a broken block layout fails them by far. (Q6_K
  // measures 0.0177: its blocks are byte-identical to the peer's, so that is the format's.)
  const std::map<std::string, double> bound = {
      {"bf16", 0.005}, {"q8_0", 0.006}, {"q6_k", 0.027}, {"q5_1", 0.04}, {"q5_0", 0.045},
      {"q5_k_m", 0.045}, {"q4_1", 0.08}, {"q4_0", 0.09}, {"q4_k_m", 0.09}, {"q3_k_m", 0.2}, {"q2_k", 0.4}};
  auto base = xent::gguf::Reader::open(kF32);
  const auto* src = base->find_tensor("blk.1.ffn_up.weight");
  REQUIRE(src);
  const float* x = reinterpret_cast<const float*>(src->data);
  for (const auto& [type, limit] : bound) {
    auto q = xent::gguf::Reader::open(quantized(type));
    const auto* t = q->find_tensor("blk.1.ffn_up.weight");
    REQUIRE(t);
    const std::vector<float> y = dequantized(*t);
    double err = 0, ref = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      err += (double(y[i]) - x[i]) * (double(y[i]) - x[i]);
      ref += double(x[i]) * x[i];
    }
    const double rel = std::sqrt(err / ref);
    INFO(type << " (" << xent::dtype_name(t->type) << "): relative RMS error " << rel << ", bound " << limit);
    CHECK(rel < limit);
    CHECK(rel > 0);  // it did quantize
  }
}

TEST_CASE("the input is never overwritten; bad requests are refused", "[tools][quantize]") {
  fs::create_directories(kTmp);
  const std::string in = kTmp + "/input-f16.gguf";
  fs::copy_file(shared_path("models/tiny-llama-spm-f16.gguf"), in, fs::copy_options::overwrite_existing);
  const auto size = fs::file_size(in);
  const auto mtime = fs::last_write_time(in);
  for (const std::string& out : {in, kTmp + "/./input-f16.gguf", kTmp + "/../test-quantize/input-f16.gguf"}) {
    const Run r = run_xent("quantize " + in + " " + out + " q4_0");
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("is the input") != std::string::npos);
  }
  CHECK(fs::file_size(in) == size);
  CHECK(fs::last_write_time(in) == mtime);

  Run r = run_xent("quantize " + in + " " + kTmp + "/x.gguf q9_9");
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("unknown type 'q9_9'") != std::string::npos);
  // Requantizing an already quantized file needs a flag.
  r = run_xent("quantize " + shared_path("models/tiny-llama-spm-q8_0.gguf") + " " + kTmp + "/x.gguf q4_0");
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("--allow-requantize") != std::string::npos);
  CHECK_FALSE(fs::exists(kTmp + "/x.gguf"));
  // F16 input works and reports sizes.
  r = run_xent("quantize " + in + " " + kTmp + "/from-f16-q8_0.gguf Q8_0 -t 2");
  CHECK(r.exit_code == 0);
  CHECK(r.err.find("bits per weight") != std::string::npos);
}

TEST_CASE("tied embeddings and odd row sizes follow the fallback rules", "[tools][quantize]") {
  fs::create_directories(kTmp);
  using xent::DType;
  // Without output.weight the token embedding is the output matrix: Q6_K even under Q4_0.
  {
    auto f = xent::gguf::Reader::open(kF32);
    xent::gguf::Writer w;
    for (const auto& kv : f->kvs()) w.copy_kv(kv);
    for (const auto& t : f->tensors())
      if (t.name != "output.weight")
        w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims), t.data, t.size_bytes);
    w.write(kTmp + "/tied-f32.gguf");
    REQUIRE(run_xent("quantize " + kTmp + "/tied-f32.gguf " + kTmp + "/tied-q4_0.gguf q4_0").exit_code == 0);
    auto q = xent::gguf::Reader::open(kTmp + "/tied-q4_0.gguf");
    CHECK(q->find_tensor("token_embd.weight")->type == DType::Q6_K);
    CHECK(q->find_tensor("blk.0.attn_q.weight")->type == DType::Q4_0);
  }
  // Rows of 96 are not whole 256-blocks: K types fall back to 32-block types; rows of 80
  // are not even whole 32-blocks: F16.
  {
    xent::gguf::Writer w;
    w.set_string("general.architecture", "llama");
    w.set_u32("llama.block_count", 1);
    w.set_u32("llama.attention.head_count", 2);
    w.set_u32("llama.attention.head_count_kv", 2);
    std::vector<float> data(96 * 8, 0.5f);
    for (size_t i = 0; i < data.size(); ++i) data[i] = std::sin(0.37f * i);
    for (const char* n : {"blk.0.ffn_up.weight", "blk.0.attn_v.weight", "output.weight", "token_embd.weight"})
      w.add_tensor(n, DType::F32, {96, 8}, data.data(), data.size() * 4);
    w.add_tensor("blk.0.ffn_gate.weight", DType::F32, {80, 8}, data.data(), 80 * 8 * 4);
    w.write(kTmp + "/odd-f32.gguf");
    struct Want {
      const char* type;
      DType ffn_up, attn_v, output, gate;
    };
    for (const Want& want : {Want{"q4_k_m", DType::Q5_0, DType::Q8_0, DType::Q8_0, DType::F16},
                             Want{"q5_k_m", DType::Q5_1, DType::Q8_0, DType::Q8_0, DType::F16},
                             Want{"q2_k", DType::Q4_0, DType::Q4_0, DType::Q8_0, DType::F16},
                             Want{"q4_0", DType::Q4_0, DType::Q4_0, DType::Q8_0, DType::F16}}) {
      const std::string out = kTmp + "/odd-" + want.type + ".gguf";
      const Run r = run_xent("quantize " + kTmp + "/odd-f32.gguf " + out + " " + want.type);
      INFO(want.type << ": " << r.err);
      REQUIRE(r.exit_code == 0);
      auto q = xent::gguf::Reader::open(out);
      CHECK(q->find_tensor("blk.0.ffn_up.weight")->type == want.ffn_up);
      CHECK(q->find_tensor("blk.0.attn_v.weight")->type == want.attn_v);
      CHECK(q->find_tensor("output.weight")->type == want.output);
      CHECK(q->find_tensor("blk.0.ffn_gate.weight")->type == want.gate);
    }
  }
}
