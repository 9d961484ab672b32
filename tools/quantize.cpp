// `xent quantize`: rewrites a GGUF file with its weights in another type. The K-quant
// mixes give some tensors more bits by the per-tensor rules llama.cpp users know.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "commands.h"
#include "common.h"
#include "formats/error.h"
#include "formats/gguf.h"
#include "formats/hf-convert.h"
#include "formats/quants.h"
#include "quantize.h"

namespace xent::app {
namespace {

constexpr FileType kFileTypes[] = {
    {"F32", 0, DType::F32},     {"F16", 1, DType::F16},     {"BF16", 32, DType::BF16},
    {"Q4_0", 2, DType::Q4_0},   {"Q4_1", 3, DType::Q4_1},   {"Q5_0", 8, DType::Q5_0},
    {"Q5_1", 9, DType::Q5_1},   {"Q8_0", 7, DType::Q8_0},   {"Q2_K", 10, DType::Q2_K},
    {"Q3_K_S", 11, DType::Q3_K}, {"Q3_K_M", 12, DType::Q3_K}, {"Q3_K_L", 13, DType::Q3_K},
    {"Q4_K_S", 14, DType::Q4_K}, {"Q4_K_M", 15, DType::Q4_K}, {"Q5_K_S", 16, DType::Q5_K},
    {"Q5_K_M", 17, DType::Q5_K}, {"Q6_K", 18, DType::Q6_K},
};

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

const FileType* find_file_type(std::string name) {
  name = upper(name);
  // The plain K names mean their _M mix, as in llama-quantize.
  if (name == "Q3_K" || name == "Q4_K" || name == "Q5_K") name += "_M";
  for (const FileType& f : kFileTypes)
    if (name == f.name) return &f;
  return nullptr;
}

const FileType* find_file_type(uint32_t id) {
  for (const FileType& f : kFileTypes)
    if (f.id == id) return &f;
  return nullptr;
}

std::string file_type_names() {
  std::string names;
  for (const FileType& f : kFileTypes) names += std::string(names.empty() ? "" : ", ") + f.name;
  return names;
}

namespace {

bool is(const FileType& ft, const char* name) { return std::strcmp(ft.name, name) == 0; }
bool contains(const std::string& s, const char* frag) { return s.find(frag) != std::string::npos; }

// Whether a tensor is a weight matrix worth quantizing: norms, biases, 1-D tensors and
// learned position tables stay as they are.
bool should_quantize(const gguf::TensorInfo& t) {
  const std::string& n = t.name;
  if (n.size() < 6 || n.compare(n.size() - 6, 6, "weight") != 0) return false;
  if (t.n_dims < 2) return false;
  if (contains(n, "_norm.weight")) return false;
  if (contains(n, "ffn_gate_inp.weight")) return false;
  if (n == "position_embd.weight" || n == "token_types.weight") return false;
  return true;
}

int layer_of(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return 0;
  return std::atoi(name.c_str() + 4);
}

// The per-tensor type rules of the K mixes and the 32-block types, as llama.cpp's quantizer
// applies them without an importance matrix (see docs/quantization.md).
DType mix_type(const FileType& ft, const gguf::TensorInfo& t, MixState& s) {
  const std::string& name = t.name;
  DType type = ft.base;
  // Layers where the _M mixes spend more bits: the first and last eighth and every third.
  auto more_bits = [](int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; };
  const int n_layer = static_cast<int>(s.n_layer);

  if (name == "output.weight" || (!s.has_output && name == "token_embd.weight")) {
    if (t.ne[0] % dtype_block_elems(type) != 0) type = DType::Q8_0;
    else if (type != DType::Q8_0) type = DType::Q6_K;
  } else if (name == "token_embd.weight") {
    // stays at the base type
  } else if (contains(name, "attn_v.weight")) {
    if (is(ft, "Q2_K")) type = s.n_gqa >= 4 ? DType::Q4_K : DType::Q3_K;
    else if (is(ft, "Q3_K_M")) type = s.i_attention_wv < 2 ? DType::Q5_K : DType::Q4_K;
    else if (is(ft, "Q3_K_L")) type = DType::Q5_K;
    else if ((is(ft, "Q4_K_M") || is(ft, "Q5_K_M")) && more_bits(s.i_attention_wv, s.n_attention_wv)) type = DType::Q6_K;
    else if (is(ft, "Q4_K_S") && s.i_attention_wv < 4) type = DType::Q5_K;
    ++s.i_attention_wv;
  } else if (contains(name, "ffn_down")) {
    const int i = layer_of(name);
    if (is(ft, "Q2_K")) type = DType::Q3_K;
    else if (is(ft, "Q3_K_M")) type = i < n_layer / 16 ? DType::Q5_K : DType::Q4_K;
    else if (is(ft, "Q3_K_L")) type = DType::Q5_K;
    else if ((is(ft, "Q4_K_M") || is(ft, "Q5_K_M")) && more_bits(i, n_layer)) type = DType::Q6_K;
    else if (is(ft, "Q4_K_S") && i < n_layer / 8) type = DType::Q5_K;
  } else if (contains(name, "attn_output.weight")) {
    if (is(ft, "Q2_K")) type = DType::Q3_K;
    else if (is(ft, "Q3_K_M")) type = DType::Q4_K;
    else if (is(ft, "Q3_K_L")) type = DType::Q5_K;
  } else if (contains(name, "attn_qkv.weight")) {
    if (is(ft, "Q3_K_M") || is(ft, "Q3_K_L")) type = DType::Q4_K;
    else if (is(ft, "Q4_K_M")) type = DType::Q5_K;
    else if (is(ft, "Q5_K_M")) type = DType::Q6_K;
  }

  // Rows that are not whole 256-blocks fall back to a 32-block type of similar size.
  // (llama.cpp uses IQ4_NL for Q2_K/Q3_K; xent has no IQ types, so Q4_0.)
  if (t.ne[0] % dtype_block_elems(type) != 0) {
    switch (type) {
      case DType::Q2_K:
      case DType::Q3_K: type = DType::Q4_0; break;
      case DType::Q4_K: type = DType::Q5_0; break;
      case DType::Q5_K: type = DType::Q5_1; break;
      case DType::Q6_K: type = DType::Q8_0; break;
      default: break;
    }
    if (t.ne[0] % dtype_block_elems(type) != 0) type = DType::F16;
  }
  return type;
}

}  // namespace

DType planned_tensor_type(const FileType& ft, const gguf::TensorInfo& t, MixState& s, bool pure) {
  if (!should_quantize(t)) return t.type;
  return (pure || !dtype_info(ft.base).quantized) ? ft.base : mix_type(ft, t, s);
}

namespace {

struct QuantizeOptions {
  std::string input, output, type;
  int threads = 0;
  bool allow_requantize = false;
  bool pure = false;
  std::string output_tensor_type, token_embedding_type;
  bool verbose = false;
};

std::string mib(uint64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MiB", b / 1048576.0);
  return buf;
}

// Converts `nrows` rows of `src` (type `from`) into `dst` (type `to`) on n_threads threads.
// Every row is independent, so the bytes do not depend on the thread count.
void convert_rows(DType from, const uint8_t* src, DType to, uint8_t* dst, int64_t nrows, int64_t n_per_row,
                  int n_threads) {
  const size_t in_row = dtype_row_bytes(from, n_per_row), out_row = dtype_row_bytes(to, n_per_row);
  constexpr int64_t kChunkRows = 16;
  std::atomic<int64_t> next{0};
  auto work = [&] {
    std::vector<float> buf(static_cast<size_t>(n_per_row * kChunkRows));
    for (;;) {
      const int64_t r0 = next.fetch_add(kChunkRows);
      if (r0 >= nrows) return;
      const int64_t n = std::min(kChunkRows, nrows - r0);
      const float* f;
      if (from == DType::F32) {
        f = reinterpret_cast<const float*>(src + r0 * in_row);
      } else {
        for (int64_t r = 0; r < n; ++r) dequantize_row(from, src + (r0 + r) * in_row, &buf[r * n_per_row], n_per_row);
        f = buf.data();
      }
      quantize_rows(to, f, dst + r0 * out_row, n, n_per_row);
    }
  };
  std::vector<std::thread> pool;
  const int64_t useful = std::max<int64_t>(1, std::min<int64_t>(n_threads, (nrows + kChunkRows - 1) / kChunkRows));
  for (int64_t i = 1; i < useful; ++i) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
}

void progress(size_t done, size_t total, const std::string& name) {
  if (!isatty(STDERR_FILENO)) return;
  constexpr int kWidth = 30;
  const int filled = total ? static_cast<int>(kWidth * done / total) : kWidth;
  std::fprintf(stderr, "\r[%.*s%*s] %3zu%% %-40.40s", filled, "##############################", kWidth - filled, "",
               total ? 100 * done / total : 100, name.c_str());
  if (done == total) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

DType parse_tensor_type(const std::string& s, const char* what) {
  DType t;
  if (!dtype_from_name(s, &t) || !dtype_can_quantize(t)) throw Error(std::string(what) + ": unknown type '" + s + "'");
  return t;
}

int run(const QuantizeOptions& o) {
  try {
    namespace fs = std::filesystem;
    const FileType* ft = find_file_type(o.type);
    if (!ft) {
      throw Error("unknown type '" + o.type + "' (known: " + file_type_names() + "; Q3_K, Q4_K, Q5_K mean their _M mix)");
    }
    std::error_code ec;
    if (fs::weakly_canonical(o.input, ec) == fs::weakly_canonical(o.output, ec) ||
        (fs::exists(o.output) && fs::equivalent(o.input, o.output, ec)))
      throw Error("the output '" + o.output + "' is the input file; write to another path");
    std::unique_ptr<gguf::Reader> in = gguf::Reader::open(o.input);
    const int n_threads = o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());

    const std::string arch = in->get_string("general.architecture").value_or("");
    MixState st;
    st.n_layer = arch.empty() ? 0 : in->get_int(arch + ".block_count").value_or(0);
    const int64_t n_head = arch.empty() ? 0 : in->get_int(arch + ".attention.head_count").value_or(0);
    const int64_t n_head_kv = arch.empty() ? 0 : in->get_int(arch + ".attention.head_count_kv").value_or(n_head);
    st.n_gqa = n_head_kv > 0 ? n_head / n_head_kv : 1;
    for (const gguf::TensorInfo& t : in->tensors()) {
      if (contains(t.name, "attn_v.weight") || contains(t.name, "attn_qkv.weight")) ++st.n_attention_wv;
      if (t.name == "output.weight") st.has_output = true;
    }
    std::optional<DType> out_type, embd_type;
    if (!o.output_tensor_type.empty()) out_type = parse_tensor_type(o.output_tensor_type, "--output-tensor-type");
    if (!o.token_embedding_type.empty()) embd_type = parse_tensor_type(o.token_embedding_type, "--token-embedding-type");

    gguf::Writer w;
    for (const gguf::KeyValue& kv : in->kvs()) {
      if (kv.key == "general.alignment") w.set_alignment(static_cast<size_t>(kv.u));
      else w.copy_kv(kv);
    }
    // Re-set at the end, where other quantizers put them.
    w.remove("general.quantization_version");
    w.remove("general.file_type");
    w.set_u32("general.quantization_version", 2);
    w.set_u32("general.file_type", ft->id);

    std::vector<const gguf::TensorInfo*> order;
    for (const gguf::TensorInfo& t : in->tensors()) order.push_back(&t);
    std::stable_sort(order.begin(), order.end(), [](const gguf::TensorInfo* a, const gguf::TensorInfo* b) {
      return hf::tensor_name_order(a->name, b->name);
    });

    std::deque<std::vector<uint8_t>> buffers;  // must outlive w.write()
    uint64_t bytes_in = 0, bytes_out = 0, n_params = 0;
    size_t n_requantized = 0, done = 0;
    for (const gguf::TensorInfo* t : order) {
      DType type = planned_tensor_type(*ft, *t, st, o.pure);
      if (should_quantize(*t)) {
        if (embd_type && t->name == "token_embd.weight") type = *embd_type;
        if (out_type && t->name == "output.weight") type = *out_type;
        if (t->ne[0] % dtype_block_elems(type) != 0)
          throw Error("tensor '" + t->name + "': rows of " + std::to_string(t->ne[0]) + " are not whole " +
                      dtype_name(type) + " blocks");
      }
      std::vector<int64_t> ne(t->ne, t->ne + t->n_dims);
      size_t size_out = t->size_bytes;
      if (type == t->type) {
        w.add_tensor(t->name, type, ne, t->data, t->size_bytes);  // copied as it is
      } else {
        // Dequantizing (to F32/F16/BF16) loses nothing; quantizing quantized data again does.
        if (dtype_info(t->type).quantized && dtype_info(type).quantized) {
          if (!o.allow_requantize)
            throw Error("tensor '" + t->name + "' is already " + dtype_name(t->type) +
                        "; quantizing it again loses more precision (use --allow-requantize)");
          ++n_requantized;
        }
        if (!dtype_can_dequantize(t->type)) throw Error("tensor '" + t->name + "': cannot read type " + dtype_name(t->type));
        const int64_t nrows = t->n_elements() / t->ne[0];
        buffers.emplace_back(dtype_row_bytes(type, t->ne[0]) * static_cast<size_t>(nrows));
        convert_rows(t->type, t->data, type, buffers.back().data(), nrows, t->ne[0], n_threads);
        w.add_tensor(t->name, type, ne, buffers.back().data(), buffers.back().size());
        size_out = buffers.back().size();
      }
      bytes_out += size_out;
      bytes_in += t->size_bytes;
      n_params += static_cast<uint64_t>(t->n_elements());
      if (o.verbose)
        std::fprintf(stderr, "  %-36s %-6s -> %-6s %10s -> %10s\n", t->name.c_str(), dtype_name(t->type), dtype_name(type),
                     mib(t->size_bytes).c_str(), mib(size_out).c_str());
      progress(++done, order.size(), t->name);
    }
    w.write(o.output);
    const double bpw_in = n_params ? 8.0 * bytes_in / n_params : 0, bpw_out = n_params ? 8.0 * bytes_out / n_params : 0;
    std::fprintf(stderr, "xent quantize: %s -> %s (%s): %s (%.2f bits per weight) -> %s (%.2f bits per weight)%s\n",
                 o.input.c_str(), o.output.c_str(), ft->name, mib(bytes_in).c_str(), bpw_in, mib(bytes_out).c_str(), bpw_out,
                 n_requantized ? (", " + std::to_string(n_requantized) + " tensors requantized").c_str() : "");
  } catch (const std::exception& e) {
    print_error("quantize", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

void add_quantize_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<QuantizeOptions>();
  CLI::App* cmd = app.add_subcommand("quantize", "rewrite a GGUF model with quantized weights");
  cmd->add_option("input", o->input, "GGUF file to read (never modified)")->required();
  cmd->add_option("output", o->output, "GGUF file to write")->required();
  cmd->add_option("type", o->type,
                  "F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K_S/M/L, Q4_K_S/M, Q5_K_S/M, Q6_K "
                  "(Q3_K, Q4_K, Q5_K: the _M mixes)")
      ->required();
  cmd->add_option("-t,--threads", o->threads, "threads (0: all)")->check(CLI::Range(0, 1024));
  cmd->add_flag("--allow-requantize", o->allow_requantize, "accept already quantized input tensors");
  cmd->add_flag("--pure", o->pure, "every weight matrix in the base type, no mix rules");
  cmd->add_option("--output-tensor-type", o->output_tensor_type, "type of output.weight");
  cmd->add_option("--token-embedding-type", o->token_embedding_type, "type of token_embd.weight");
  cmd->add_flag("-v,--verbose", o->verbose, "print each tensor's types and sizes");
  cmd->callback([o, &exit_code] { exit_code = run(*o); });
}

}  // namespace xent::app
