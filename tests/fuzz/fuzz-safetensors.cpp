// The inputs of `xent convert`: config.json text, a NUL byte, then a .safetensors file.
// The safetensors bytes go to the header parser from memory; then both files, beside the
// tiny GPT-2 checkpoint's tokenizer, make a checkpoint folder that convert_checkpoint
// turns into a GGUF file in a scratch folder. Errors are expected; crashes, sanitizer
// reports and exceptions other than xent::Error are findings.
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "formats/error.h"
#include "formats/hf-convert.h"
#include "formats/safetensors.h"
#include <nlohmann/json.hpp>
#include "fuzz-common.h"

namespace fs = std::filesystem;

namespace {

std::string g_dir;  // the scratch checkpoint folder

void write_file(const std::string& path, const uint8_t* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

void touch_tensors(const std::vector<xent::safetensors::TensorView>& tensors) {
  for (const auto& t : tensors) {
    if (t.size_bytes == 0) continue;
    volatile uint8_t sink = t.data[0];
    sink = t.data[t.size_bytes - 1];
    (void)sink;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // /dev/shm when there is one: each run writes two files and converts them (fsync).
  std::string tmpl = std::string(access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp") + "/xent-fuzz-safetensors-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) xent::fuzz::finding("setup", "mkdtemp failed");
  g_dir = tmpl;
  // The tiny GPT-2's tokenizer cut to the seeds' 320 tokens (make-seeds.cpp), the last
  // one <|endoftext|>, so that a seed converts all the way.
  const std::string hf = xent::fuzz::shared_path("models/hf/tiny-gpt2-f16");
  const nlohmann::json full = nlohmann::json::parse(std::ifstream(hf + "/vocab.json"));
  nlohmann::json vocab = nlohmann::json::object();
  for (auto it = full.begin(); it != full.end(); ++it)
    if (it.value().get<int64_t>() < 319) vocab[it.key()] = it.value();
  vocab["<|endoftext|>"] = 319;
  std::ofstream(g_dir + "/vocab.json") << vocab.dump();
  std::ifstream merges_in(hf + "/merges.txt");
  std::ofstream merges_out(g_dir + "/merges.txt");
  for (std::string line; std::getline(merges_in, line);) {
    const size_t sp = line.find(' ');
    if (line.rfind("#", 0) == 0 || sp == std::string::npos) continue;
    const std::string a = line.substr(0, sp), b = line.substr(sp + 1);
    if (vocab.contains(a) && vocab.contains(b) && vocab.contains(a + b)) merges_out << line << "\n";
  }
  std::atexit([] {
    std::error_code ec;
    fs::remove_all(g_dir, ec);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint8_t* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
  const size_t config_size = nul ? static_cast<size_t>(nul - data) : size;
  const uint8_t* st = nul ? nul + 1 : data + size;
  const size_t st_size = nul ? size - config_size - 1 : 0;

  try {
    auto f = xent::safetensors::File::from_memory(st, st_size, "fuzz");
    touch_tensors(f->tensors());
    for (const auto& t : f->tensors()) {
      if (f->find(t.name) != &t) xent::fuzz::finding("find", t.name);
      if (t.size_bytes <= (1u << 20) && (t.type == xent::safetensors::ElemType::F32 ||
                                         t.type == xent::safetensors::ElemType::F16 ||
                                         t.type == xent::safetensors::ElemType::BF16 ||
                                         t.type == xent::safetensors::ElemType::F64)) {
        std::vector<float> out(static_cast<size_t>(t.n_elements()));
        xent::safetensors::to_f32(t, out.data());
      }
    }
  } catch (const xent::Error&) {
  } catch (const std::exception& e) {
    xent::fuzz::unexpected_exception(e);
  }

  write_file(g_dir + "/config.json", data, config_size);
  write_file(g_dir + "/model.safetensors", st, st_size);
  xent::hf::ConvertParams p;
  p.dir = g_dir;
  p.output = g_dir + "/out.gguf";
  try {
    (void)xent::hf::convert_checkpoint(p);
  } catch (const xent::Error&) {
  } catch (const std::exception& e) {
    xent::fuzz::unexpected_exception(e);
  }
  return 0;
}
