// `xent info`: what a GGUF file holds (metadata, tensors, types, sizes) and what it
// would need in memory; `--devices` lists the compute devices this build can use.
#include <cinttypes>
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "backends/backend.h"
#include "commands.h"
#include "common.h"
#include "formats/gguf.h"
#include "runtime/inference/model.h"

namespace xent::app {
namespace {

struct InfoOptions {
  std::string model_path;
  bool devices = false;
  bool all_metadata = false;
  int ctx_size = 0;
};

std::string value_text(const gguf::KeyValue& kv) {
  using VT = gguf::ValueType;
  switch (kv.type) {
    case VT::STRING: {
      std::string s(kv.str.substr(0, 80));
      for (char& c : s)
        if (c == '\n') c = ' ';
      return "\"" + s + (kv.str.size() > 80 ? "…\"" : "\"");
    }
    case VT::BOOL: return kv.u ? "true" : "false";
    case VT::F32:
    case VT::F64: return std::to_string(kv.f);
    case VT::ARRAY:
      return std::string("[") + gguf::value_type_name(kv.array_type) + " x " + std::to_string(kv.array_count) + "]";
    case VT::I8: case VT::I16: case VT::I32: case VT::I64: return std::to_string(kv.i);
    default: return std::to_string(kv.u);
  }
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f %s", b, units[u]);
  return buf;
}

int run(const InfoOptions& o) {
  if (o.devices) {
    std::printf("backends compiled in:");
    for (const std::string& b : available_backends()) std::printf(" %s", b.c_str());
    std::printf("\n");
    for (const std::string& d : list_devices()) std::printf("  %s\n", d.c_str());
    if (o.model_path.empty()) return 0;
  }
  if (o.model_path.empty()) {
    print_error("info", "give a model file (or --devices)");
    return 1;
  }
  try {
    std::unique_ptr<gguf::Reader> f = gguf::Reader::open(o.model_path);
    std::printf("file: %s\nGGUF v%u, %s, alignment %zu, %zu metadata keys, %zu tensors\n\n", o.model_path.c_str(),
                f->version(), human_bytes(static_cast<double>(f->file_size())).c_str(), f->alignment(),
                f->kvs().size(), f->tensors().size());
    std::printf("metadata:\n");
    for (const gguf::KeyValue& kv : f->kvs()) {
      if (!o.all_metadata && kv.key.rfind("tokenizer.ggml.", 0) == 0 && kv.type == gguf::ValueType::ARRAY) {
        std::printf("  %-44s %s\n", kv.key.c_str(), value_text(kv).c_str());
        continue;
      }
      std::printf("  %-44s %s\n", kv.key.c_str(), value_text(kv).c_str());
    }
    std::printf("\ntensors:\n  %-36s %-8s %-22s %12s\n", "name", "type", "shape", "bytes");
    std::map<std::string, std::pair<uint64_t, uint64_t>> by_type;  // type -> (count, bytes)
    uint64_t total = 0, n_params = 0;
    for (const gguf::TensorInfo& t : f->tensors()) {
      std::string shape = "[";
      for (int d = 0; d < t.n_dims; ++d) shape += (d ? ", " : "") + std::to_string(t.ne[d]);
      shape += "]";
      std::printf("  %-36s %-8s %-22s %12" PRIu64 "\n", t.name.c_str(), dtype_name(t.type), shape.c_str(),
                  t.size_bytes);
      auto& bt = by_type[dtype_name(t.type)];
      ++bt.first;
      bt.second += t.size_bytes;
      total += t.size_bytes;
      n_params += static_cast<uint64_t>(t.n_elements());
    }
    std::printf("\ntypes:");
    for (const auto& [name, cb] : by_type) std::printf("  %s: %" PRIu64 " tensors, %s", name.c_str(), cb.first,
                                                       human_bytes(static_cast<double>(cb.second)).c_str());
    std::printf("\nparameters: %.2fM, weights %s, %.2f bits per weight\n", n_params / 1e6,
                human_bytes(static_cast<double>(total)).c_str(), n_params ? 8.0 * total / n_params : 0.0);

    // Memory estimate from the hyperparameters alone (no weights are touched).
    try {
      std::unique_ptr<Model> m = Model::load(o.model_path);
      const HParams& hp = m->hparams();
      const int64_t n_ctx = o.ctx_size > 0 ? o.ctx_size : std::min<int64_t>(hp.n_ctx_train, 4096);
      const double kv = 2.0 * hp.n_layer * n_ctx * hp.n_head_kv * hp.head_dim * 2;  // f16 K and V
      const double scratch = 4.0 * 512 * (hp.n_embd * 6 + hp.n_ff * 3) + 4.0 * hp.n_vocab * 512;
      std::printf("architecture: %s, %" PRId64 " layers, d=%" PRId64 ", %" PRId64 "/%" PRId64
                  " heads, ffn %" PRId64 ", context %" PRId64 "\n",
                  hp.arch.c_str(), hp.n_layer, hp.n_embd, hp.n_head, hp.n_head_kv, hp.n_ff, hp.n_ctx_train);
      if (hp.n_rot > 0)
        std::printf("rope: %" PRId64 " dims, base %g, scaling %s (freq_scale %g)%s\n", hp.n_rot,
                    static_cast<double>(hp.rope_freq_base), hp.rope_scaling.c_str(),
                    static_cast<double>(hp.rope_freq_scale),
                    m->file().find_tensor("rope_freqs.weight") ? ", per-frequency factors (rope_freqs.weight)" : "");
      std::printf("estimated memory at context %" PRId64 ": weights %s (mapped) + KV cache %s + scratch ~%s = %s\n",
                  n_ctx, human_bytes(static_cast<double>(total)).c_str(), human_bytes(kv).c_str(),
                  human_bytes(scratch).c_str(), human_bytes(total + kv + scratch).c_str());
    } catch (const std::exception& e) {
      std::printf("(cannot run this model: %s)\n", e.what());
    }
  } catch (const std::exception& e) {
    print_error("info", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

void add_info_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<InfoOptions>();
  CLI::App* cmd = app.add_subcommand("info", "show what a GGUF file holds, or the compute devices");
  cmd->add_option("model", o->model_path, "GGUF file");
  cmd->add_option("-m,--model", o->model_path, "GGUF file");
  cmd->add_flag("--devices", o->devices, "list backends and devices");
  cmd->add_flag("--all", o->all_metadata, "print every metadata value in full");
  cmd->add_option("-c,--ctx-size", o->ctx_size, "context size for the memory estimate");
  cmd->callback([o, &exit_code] { exit_code = run(*o); });
}

}  // namespace xent::app
