// `xent export-lora`: LoRA adapters merged into a copy of the base model, W' = W + s·B·A for
// each target, written in the target's own type (requantized), so the copy runs at the
// speed of the base with no adapter nodes. Every other tensor and key is copied as it is.
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "commands.h"
#include "common.h"
#include "formats/error.h"
#include "formats/gguf.h"
#include "formats/quants.h"
#include "runtime/inference/context.h"  // LoraBinding
#include "runtime/inference/lora.h"
#include "runtime/inference/model.h"

namespace xent::app {
namespace {

struct ExportLoraOptions {
  std::string model_path, output;
  LoraOptions lora;
  int threads = 0;
};

std::vector<float> rows_f32(const Tensor& t) {
  std::vector<float> out(static_cast<size_t>(t.n_elements()));
  for (int64_t r = 0; r < t.n_rows(); ++r)
    dequantize_row(t.type, static_cast<const uint8_t*>(t.data) + r * t.nb[1], &out[r * t.ne[0]], t.ne[0]);
  return out;
}

// w [n_out rows of n_in] += s·B·A (for the token embedding: row v += s·b·a[v]); see LoraTarget.
void add_delta(std::vector<float>& w, const LoraTarget& t, float s, int n_threads) {
  const std::vector<float> a = rows_f32(t.a), b = rows_f32(t.b);
  const int64_t n_in = t.weight->ne[0], n_out = t.weight->ne[1], r = t.rank;
  auto work = [&](int64_t first, int64_t last) {
    for (int64_t o = first; o < last; ++o) {
      float* row = &w[o * n_in];
      for (int64_t k = 0; k < r; ++k) {
        if (t.embedding) {
          const float f = s * a[o * r + k];  // a[v][k]
          for (int64_t i = 0; i < n_in; ++i) row[i] += f * b[i * r + k];
        } else {
          const float f = s * b[o * r + k];  // B[o][k]
          const float* ak = &a[k * n_in];    // A[k][:]
          for (int64_t i = 0; i < n_in; ++i) row[i] += f * ak[i];
        }
      }
    }
  };
  std::vector<std::thread> pool;
  const int64_t chunk = (n_out + n_threads - 1) / n_threads;
  for (int th = 0; th < n_threads; ++th)
    pool.emplace_back(work, std::min(n_out, th * chunk), std::min(n_out, (th + 1) * chunk));
  for (auto& th : pool) th.join();
}

int run(const ExportLoraOptions& o) {
  try {
    const auto list = o.lora.list();
    if (list.empty()) throw Error("give at least one adapter (--lora FILE or --lora-scaled FILE SCALE)");
    if (o.output.empty()) throw Error("give the file to write (-o)");
    std::unique_ptr<Model> model = Model::load(o.model_path);
    const std::vector<LoraBinding> adapters = load_adapters(*model, list);
    std::map<const Tensor*, std::vector<std::pair<const LoraTarget*, float>>> deltas;
    for (const auto& [ad, scale] : adapters)
      for (const LoraTarget& t : ad->targets()) deltas[t.weight].emplace_back(&t, ad->scale_for(t, scale));
    std::map<std::string, const Tensor*> by_name;
    for (const Tensor& w : model->weights()) by_name.emplace(w.name, &w);
    const int n_threads = o.threads > 0 ? o.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));

    const gguf::Reader& f = model->file();
    gguf::Writer w;
    for (const gguf::KeyValue& kv : f.kvs()) {
      if (kv.key == "general.alignment") w.set_alignment(static_cast<size_t>(kv.u));
      else w.copy_kv(kv);
    }
    std::deque<std::vector<uint8_t>> buffers;  // must outlive w.write()
    size_t n_merged = 0;
    for (const gguf::TensorInfo& t : f.tensors()) {
      const std::vector<int64_t> ne(t.ne, t.ne + std::max(1, t.n_dims));
      auto tw = by_name.find(t.name);
      auto d = tw == by_name.end() ? deltas.end() : deltas.find(tw->second);
      if (d == deltas.end()) {
        w.add_tensor(t.name, t.type, ne, t.data, t.size_bytes);
        continue;
      }
      std::vector<float> m = rows_f32(*tw->second);
      for (const auto& [target, s] : d->second) add_delta(m, *target, s, n_threads);
      std::vector<uint8_t>& out = buffers.emplace_back(t.size_bytes);
      quantize_rows(t.type, m.data(), out.data(), t.ne[1] * t.ne[2] * t.ne[3], t.ne[0]);
      w.add_tensor(t.name, t.type, ne, out.data(), out.size());
      ++n_merged;
    }
    w.write(o.output);
    std::fprintf(stderr, "xent export-lora: %zu adapter%s merged into %zu tensors of %s -> %s\n", adapters.size(),
                 adapters.size() == 1 ? "" : "s", n_merged, o.model_path.c_str(), o.output.c_str());
  } catch (const std::exception& e) {
    print_error("export-lora", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

void add_export_lora_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<ExportLoraOptions>();
  CLI::App* cmd = app.add_subcommand("export-lora", "merge LoRA adapters into a copy of the model (each tensor in its own type)");
  cmd->add_option("-m,--model", o->model_path, "base GGUF model")->required();
  cmd->add_option("-o,--output", o->output, "merged GGUF file to write")->required();
  cmd->add_option("-t,--threads", o->threads, "threads (0: all)")->check(CLI::Range(0, 1024));
  add_lora_options(*cmd, o->lora);
  cmd->callback([o, &exit_code] { exit_code = run(*o); });
}

}  // namespace xent::app
