// GGUF bytes -> the reader's metadata and tensor table (every typed getter on every key),
// the tokenizer built from that metadata, then, when the tensors are small, a model load
// through the C API from a memfd and a two-token decode. Errors are expected; crashes,
// sanitizer reports and exceptions that are not xent::Error are findings.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "formats/error.h"
#include "formats/gguf.h"
#include "fuzz-common.h"
#include "runtime/inference/model.h"
#include "runtime/tokenizer/tokenizer.h"
#include "xent.h"

namespace {

// Keeps each run fast: larger tensor sections are parsed but not loaded.
constexpr uint64_t kMaxLoadTensorBytes = 4u << 20;
constexpr size_t kMaxLoadTensors = 256;

void read_everything(const xent::gguf::Reader& r) {
  for (const xent::gguf::KeyValue& kv : r.kvs()) {
    // Each getter either returns or throws xent::Error for the wrong type.
    auto quiet = [](auto&& f) {
      try {
        f();
      } catch (const xent::Error&) {
      }
    };
    quiet([&] { (void)r.get_int(kv.key); });
    quiet([&] { (void)r.get_float(kv.key); });
    quiet([&] { (void)r.get_bool(kv.key); });
    quiet([&] { (void)r.get_string(kv.key); });
    quiet([&] { (void)r.get_string_array(kv.key); });
    quiet([&] { (void)r.get_float_array(kv.key); });
    quiet([&] { (void)r.get_int_array(kv.key); });
    if (r.find(kv.key) != &kv) xent::fuzz::finding("find", "key '" + kv.key + "' does not find itself");
  }
  for (const xent::gguf::TensorInfo& t : r.tensors()) {
    // The reader promises the data lies inside the buffer: touch its first and last byte.
    if (t.size_bytes > 0) {
      volatile uint8_t sink = t.data[0];
      sink = t.data[t.size_bytes - 1];
      (void)sink;
    }
    if (r.find_tensor(t.name) != &t) xent::fuzz::finding("find_tensor", "tensor '" + t.name + "'");
  }
}

void tokenize_with(const xent::gguf::Reader& r) {
  std::unique_ptr<xent::Tokenizer> tok;
  try {
    tok = xent::Tokenizer::from_gguf(r);
  } catch (const xent::Error&) {
    return;
  }
  static const char* kTexts[] = {"Hello world", " <|im_start|>user\n12345 \xe2\x96\x81x\xff", ""};
  for (const char* text : kTexts) {
    try {
      for (bool special : {false, true}) {
        const std::vector<int32_t> ids = tok->encode(text, special, special);
        for (int32_t id : ids)
          if (id < 0 || id >= tok->n_vocab()) xent::fuzz::finding("tokenizer", "id out of range: " + std::to_string(id));
        (void)tok->decode(ids, special);
      }
    } catch (const xent::Error&) {
    }
  }
}

void load_through_c_api(const uint8_t* data, size_t size) {
  const int fd = memfd_create("fuzz-gguf", MFD_CLOEXEC);
  if (fd < 0) return;
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  // The library's own load first, so that an exception other than xent::Error (which the C
  // API would turn into a vague message) is caught as a finding.
  try {
    (void)xent::Model::load(path);
  } catch (const xent::Error&) {
    ::close(fd);
    return;
  }
  xent_model* model = xent_model_load(path.c_str(), nullptr);
  if (model == nullptr) xent::fuzz::finding("xent_model_load", std::string("failed after Model::load passed: ") + xent_last_error());
  xent_context_params cp = xent_context_default_params();
  cp.n_ctx = 8;
  cp.n_threads = 1;
  if (xent_context* ctx = xent_context_create(model, &cp)) {
    const xent_token tokens[2] = {0, xent_model_n_vocab(model) - 1};
    if (xent_decode(ctx, tokens, 2, false) == XENT_OK) (void)xent_get_logits(ctx);
    xent_context_free(ctx);
  }
  xent_model_free(model);
  ::close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  xent_set_log_callback([](xent_log_level, const char*, void*) {}, nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<xent::gguf::Reader> r;
  try {
    r = xent::gguf::Reader::from_memory(data, size);
  } catch (const xent::Error&) {
    return 0;
  } catch (const std::exception& e) {
    xent::fuzz::unexpected_exception(e);
  }
  try {
    read_everything(*r);
    tokenize_with(*r);
  } catch (const std::exception& e) {
    xent::fuzz::unexpected_exception(e);
  }
  uint64_t tensor_bytes = 0;
  for (const auto& t : r->tensors()) tensor_bytes += t.size_bytes;
  if (!r->tensors().empty() && r->tensors().size() <= kMaxLoadTensors && tensor_bytes <= kMaxLoadTensorBytes)
    load_through_c_api(data, size);
  return 0;
}
