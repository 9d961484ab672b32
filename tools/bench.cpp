// `xent bench`: prompt-processing and generation speed (tok/s, mean ± stddev over
// repetitions) in llama-bench's table layout, plus load time, peak memory, optional memory
// bandwidth use, a PNG chart, and random-weight models of real shapes (--synthetic).
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bench-synthetic.h"
#include "bench.h"
#include "commands.h"
#include "common.h"
#include "formats/error.h"
#include "quantize.h"
#include "runtime/inference/context.h"
#include "runtime/inference/lora.h"
#include "runtime/inference/model.h"

namespace xent::app {

std::vector<double> BenchResult::samples_ts() const {
  std::vector<double> ts;
  for (double ns : samples_ns) ts.push_back(ns > 0 ? 1e9 * n_tokens() / ns : 0.0);
  return ts;
}

namespace {

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

// Sample standard deviation (n - 1), as llama-bench reports it.
double stddev(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  const double m = mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

}  // namespace

double BenchResult::avg_ns() const { return mean(samples_ns); }
double BenchResult::stddev_ns() const { return stddev(samples_ns); }
double BenchResult::avg_ts() const { return mean(samples_ts()); }
double BenchResult::stddev_ts() const { return stddev(samples_ts()); }
double BenchResult::bandwidth_fraction() const {
  if (n_gen == 0 || mem_bw_gbs <= 0) return 0;
  return avg_ts() * static_cast<double>(weight_bytes_per_token) / (mem_bw_gbs * 1e9);
}

namespace {

struct BenchOptions {
  std::vector<std::string> models;
  std::vector<int> n_prompt{512}, n_gen{128}, threads;
  int reps = 5;
  std::string output = "md";
  std::string plot_path;
  std::string backend = "cpu";
  int n_gpu_layers = -1;
  int ubatch = 512;
  std::vector<int> parallel{1};  // -np: sequences decoding together
  std::string cache_type_k = "f16", cache_type_v = "f16";  // -ctk / -ctv
  bool mem = false;
  uint64_t seed = 1234;
  SyntheticParams synthetic;
  SyntheticLoraParams synthetic_lora;
  int64_t synthetic_lora_rank = 0;  // --synthetic-lora RANK; 0: none
  LoraOptions lora;
  bool autocomplete = false;  // replay typing -f NOTE instead of pp/tg
  std::string note_path;
  int autocomplete_words = 1;  // --autocomplete: words per suggestion
};

// --autocomplete: the keystroke replay of `xent bench-autocomplete`, once per model and
// thread count.
int run_autocomplete(const BenchOptions& o) {
  if (o.note_path.empty()) {
    print_error("bench", "--autocomplete needs the note to type: -f FILE");
    return 1;
  }
  if (o.models.empty()) {
    print_error("bench", "--autocomplete needs a model (-m FILE)");
    return 1;
  }
  if (o.output == "csv") {
    print_error("bench", "--autocomplete writes md (text) or json, not csv");
    return 1;
  }
  const std::vector<int> threads = o.threads.empty() ? std::vector<int>{0} : o.threads;
  for (const std::string& m : o.models)
    for (int t : threads) {
      AutocompleteBenchOptions a;
      a.model.model_path = m;
      a.model.threads = t;
      a.model.backend = o.backend;
      a.model.n_gpu_layers = o.n_gpu_layers;
      a.note_path = o.note_path;
      a.max_words = o.autocomplete_words;
      a.output = o.output == "json" ? "json" : "text";
      if (const int rc = run_autocomplete_bench(a); rc != 0) return rc;
    }
  return 0;
}

std::string human_size(uint64_t bytes) {
  char buf[32];
  if (bytes >= (uint64_t{1} << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / 1073741824.0);
  else std::snprintf(buf, sizeof buf, "%.2f MiB", bytes / 1048576.0);
  return buf;
}

std::string human_params(uint64_t n) {
  char buf[32];
  if (n >= 1000000000) std::snprintf(buf, sizeof buf, "%.2f B", n / 1e9);
  else if (n >= 1000000) std::snprintf(buf, sizeof buf, "%.2f M", n / 1e6);
  else std::snprintf(buf, sizeof buf, "%.2f K", n / 1e3);
  return buf;
}

// "llama 135M Q8_0": architecture, rounded size, file type (or the weights' main type).
std::string model_label(const Model& m, std::string* file_type) {
  const gguf::Reader& f = m.file();
  std::string ft;
  if (auto id = f.get_int("general.file_type"); id && *id >= 0)
    if (const FileType* t = find_file_type(static_cast<uint32_t>(*id))) ft = t->name;
  if (ft.empty()) {
    std::map<std::string, uint64_t> bytes;
    for (const gguf::TensorInfo& t : f.tensors())
      if (t.n_dims >= 2) bytes[dtype_name(t.type)] += t.size_bytes;
    uint64_t best = 0;
    for (const auto& [name, b] : bytes)
      if (b > best) {
        best = b;
        ft = name;
      }
    for (char& c : ft) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  *file_type = ft;
  const double n = static_cast<double>(m.n_params());
  char size[32];
  if (n >= 1e9) std::snprintf(size, sizeof size, "%.1fB", n / 1e9);
  else std::snprintf(size, sizeof size, "%.0fM", n / 1e6);
  return m.hparams().arch + " " + size + " " + ft;
}

// Weight bytes one generated token streams from memory: every matrix once, except the
// embedding tables, of which it reads a single row (unless the token embedding is also
// the output matrix). The KV cache is not counted.
uint64_t weight_bytes_per_token(const Model& m) {
  const gguf::Reader& f = m.file();
  uint64_t n = 0;
  for (const gguf::TensorInfo& t : f.tensors()) {
    if (t.name == "token_embd.weight" || t.name == "position_embd.weight" || t.name == "token_types.weight") continue;
    n += t.size_bytes;
  }
  if (!f.find_tensor("output.weight"))
    if (const gguf::TensorInfo* e = f.find_tensor("token_embd.weight")) n += e->size_bytes;
  return n;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}


// Prints rows as they are measured, in the chosen format.
class Reporter {
 public:
  Reporter(const std::string& format, bool with_bandwidth) : format_(format), bw_(with_bandwidth) {}

  void begin() {
    if (format_ == "md") {
      std::printf("| %-30s | %10s | %10s | %-10s | %7s | %13s | %20s |%s\n", "model", "size", "params", "backend", "threads",
                  "test", "t/s", bw_ ? "  bw use |" : "");
      std::printf("| %s | %s | %s | %s | %s | %s | %s |%s\n", std::string(30, '-').c_str(), "---------:", "---------:",
                  "----------", "------:", "------------:", "-------------------:", bw_ ? " ------: |" : "");
    } else if (format_ == "csv") {
      std::printf(
          "model_filename,model_type,model_size,model_n_params,backends,device,n_threads,n_ubatch,n_gpu_layers,n_prompt,"
          "n_gen,test,test_time,load_ms,peak_rss_bytes,weight_bytes_per_token,mem_bw_gbs,bw_fraction,avg_ns,stddev_ns,"
          "avg_ts,stddev_ts\n");
    } else {
      std::printf("[");
    }
    std::fflush(stdout);
  }

  void row(const BenchResult& r, int n_gpu_layers) {
    if (format_ == "md") {
      char ts[64];
      std::snprintf(ts, sizeof ts, "%.2f ± %.2f", r.avg_ts(), r.stddev_ts());
      std::string bw;
      if (bw_) {
        char b[32];
        if (r.n_gen > 0 && r.mem_bw_gbs > 0) std::snprintf(b, sizeof b, " %5.1f%% |", 100.0 * r.bandwidth_fraction());
        else std::snprintf(b, sizeof b, " %6s |", "-");
        bw = b;
      }
      // "±" is two bytes: widen the field so the column still lines up.
      std::printf("| %-30s | %10s | %10s | %-10s | %7d | %13s | %21s |%s\n", r.model_label.c_str(),
                  human_size(r.size_bytes).c_str(), human_params(r.n_params).c_str(), r.backends.c_str(), r.n_threads,
                  r.test.c_str(), ts, bw.c_str());
    } else if (format_ == "csv") {
      std::printf("%s,%s,%" PRIu64 ",%" PRIu64 ",%s,%s,%d,%d,%d,%d,%d,%s,%s,%.3f,%" PRIu64 ",%" PRIu64
                  ",%.3f,%.4f,%.0f,%.0f,%.6f,%.6f\n",
                  quote(r.model_path).c_str(), quote(r.model_label).c_str(), r.size_bytes, r.n_params,
                  quote(r.backends).c_str(), quote(r.device).c_str(), r.n_threads, r.n_ubatch, n_gpu_layers, r.n_prompt,
                  r.n_gen, quote(r.test).c_str(), quote(r.test_time).c_str(), r.load_ms, r.peak_rss_bytes,
                  r.weight_bytes_per_token, r.mem_bw_gbs, r.bandwidth_fraction(), r.avg_ns(), r.stddev_ns(), r.avg_ts(),
                  r.stddev_ts());
    } else {
      nlohmann::json j = {
          {"model_filename", r.model_path},
          {"model_type", r.model_label},
          {"file_type", r.file_type},
          {"model_size", r.size_bytes},
          {"model_n_params", r.n_params},
          {"backends", r.backends},
          {"device", r.device},
          {"n_threads", r.n_threads},
          {"n_ubatch", r.n_ubatch},
          {"n_gpu_layers", n_gpu_layers},
          {"n_prompt", r.n_prompt},
          {"n_gen", r.n_gen},
          {"n_seq", r.n_seq},
          {"test", r.test},
          {"test_time", r.test_time},
          {"load_ms", r.load_ms},
          {"repacked_bytes", r.repacked_bytes},
          {"peak_rss_bytes", r.peak_rss_bytes},
          {"weight_bytes_per_token", r.weight_bytes_per_token},
          {"mem_bw_gbs", r.mem_bw_gbs},
          {"bw_fraction", r.bandwidth_fraction()},
          {"avg_ns", r.avg_ns()},
          {"stddev_ns", r.stddev_ns()},
          {"avg_ts", r.avg_ts()},
          {"stddev_ts", r.stddev_ts()},
          {"samples_ns", r.samples_ns},
          {"samples_ts", r.samples_ts()},
      };
      std::printf("%s\n  %s", n_rows_ ? "," : "", j.dump().c_str());
    }
    ++n_rows_;
    std::fflush(stdout);
  }

  void end() {
    if (format_ == "json") std::printf("%s]\n", n_rows_ ? "\n" : "");
    std::fflush(stdout);
  }

 private:
  static std::string quote(const std::string& s) {
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  }
  std::string format_;
  bool bw_;
  size_t n_rows_ = 0;
};

// Times `reps` runs of one test after a warm-up run that is not counted (it pages the
// weights in and sizes the scratch buffers). pp: n_prompt tokens as one batch from an
// empty cache; tg: n_gen tokens one at a time from an empty cache.
std::vector<double> time_test(Context& ctx, const std::vector<int32_t>& tokens, int n_prompt, int n_gen, int reps) {
  std::vector<double> ns;
  for (int rep = -1; rep < reps; ++rep) {
    ctx.truncate(0);
    const auto t0 = std::chrono::steady_clock::now();
    if (n_prompt > 0) ctx.decode(tokens.data(), static_cast<size_t>(n_prompt));
    for (int i = 0; i < n_gen; ++i) ctx.decode(&tokens[static_cast<size_t>(i)], 1);
    const auto t1 = std::chrono::steady_clock::now();
    if (rep >= 0) ns.push_back(static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
  }
  return ns;
}

// The same with n_seq sequences together (a context with n_seq_max >= n_seq): pp puts
// all n_seq prompts in one batch; tg advances every sequence by one token per step, one
// batch of n_seq tokens, as a server's continuous batching does.
std::vector<double> time_test_parallel(Context& ctx, const std::vector<int32_t>& tokens, int n_prompt, int n_gen,
                                       int n_seq, int reps) {
  std::vector<double> ns;
  Batch b;
  for (int rep = -1; rep < reps; ++rep) {
    for (int s = 0; s < ctx.n_seq_max(); ++s) ctx.seq_truncate(s, 0);
    const auto t0 = std::chrono::steady_clock::now();
    if (n_prompt > 0) {
      b.clear();
      for (int s = 0; s < n_seq; ++s)
        for (int i = 0; i < n_prompt; ++i)
          b.add(tokens[static_cast<size_t>((i + 7 * s) % static_cast<int>(tokens.size()))], s, i, i + 1 == n_prompt);
      ctx.decode_batch(b);
    }
    for (int i = 0; i < n_gen; ++i) {
      b.clear();
      for (int s = 0; s < n_seq; ++s)
        b.add(tokens[static_cast<size_t>((i + 7 * s) % static_cast<int>(tokens.size()))], s, i, true);
      ctx.decode_batch(b);
    }
    const auto t1 = std::chrono::steady_clock::now();
    if (rep >= 0) ns.push_back(static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
  }
  return ns;
}

int run(BenchOptions o) {
  try {
    if (o.synthetic_lora_rank > 0) {
      if (!o.synthetic.shape.empty()) throw Error("--synthetic and --synthetic-lora write one file each; give one");
      if (o.synthetic_lora.base_path.empty() || o.synthetic.output.empty())
        throw Error("--synthetic-lora RANK needs --base BASE.gguf and -o ADAPTER.gguf");
      o.synthetic_lora.rank = o.synthetic_lora_rank;
      o.synthetic_lora.output = o.synthetic.output;
      o.synthetic_lora.type = o.synthetic.type;
      o.synthetic_lora.seed = o.synthetic.seed;
      const SyntheticLoraResult r = write_synthetic_lora(o.synthetic_lora);
      std::fprintf(stderr, "xent bench: synthetic LoRA rank %" PRId64 " on %s -> %s: %zu targets, %s\n",
                   o.synthetic_lora.rank, o.synthetic_lora.base_path.c_str(), o.synthetic_lora.output.c_str(),
                   r.n_targets, human_size(r.tensor_bytes).c_str());
      if (o.models.empty()) return 0;
    } else if (!o.synthetic.shape.empty()) {
      const auto t0 = std::chrono::steady_clock::now();
      const SyntheticResult r = write_synthetic_model(o.synthetic);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::fprintf(stderr, "xent bench: synthetic %s (%s, %" PRId64 " tokens) -> %s: %s parameters, %s, %.1f s\n",
                   o.synthetic.shape.c_str(), r.arch.c_str(), r.n_vocab, o.synthetic.output.c_str(),
                   human_params(r.n_params).c_str(), human_size(r.tensor_bytes).c_str(), s);
      if (o.models.empty()) return 0;
    } else if (!o.synthetic.output.empty()) {
      throw Error("-o names the file --synthetic writes; give --synthetic NAME too");
    }
    if (o.models.empty() && !o.mem) throw Error("give a model (-m FILE), --mem or --synthetic NAME");
    for (const std::string& m : o.models) {
      struct stat st;
      if (stat(m.c_str(), &st) != 0) throw Error("cannot open model '" + m + "': no such file");
      if (S_ISDIR(st.st_mode)) throw Error("'" + m + "' is a directory, not a GGUF model file");
    }
    const int hw = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    if (o.threads.empty()) o.threads = {hw};
    for (int t : o.threads)
      if (t < 1) throw Error("-t: thread counts must be at least 1");
    const int max_prompt = o.n_prompt.empty() ? 0 : *std::max_element(o.n_prompt.begin(), o.n_prompt.end());
    const int max_gen = o.n_gen.empty() ? 0 : *std::max_element(o.n_gen.begin(), o.n_gen.end());
    if (!o.models.empty() && max_prompt <= 0 && max_gen <= 0) throw Error("nothing to run: -p 0 and -n 0");

    // Bandwidth at 1 thread, every thread count asked for, and all hardware threads.
    std::map<int, double> bw;
    if (o.mem) {
      std::set<int> counts(o.threads.begin(), o.threads.end());
      counts.insert(1);
      counts.insert(hw);
      std::string line = "memory bandwidth (STREAM triad, 3 x 64 MiB):";
      for (int t : counts) {
        bw[t] = triad_bandwidth_gbs(t);
        char buf[64];
        std::snprintf(buf, sizeof buf, " %d thread%s %.1f GB/s%s", t, t == 1 ? "" : "s", bw[t],
                      t == *counts.rbegin() ? "" : ",");
        line += buf;
      }
      // Machine-readable outputs keep stdout to themselves.
      std::fprintf(o.output == "md" ? stdout : stderr, "%s\n%s", line.c_str(), o.output == "md" && !o.models.empty() ? "\n" : "");
      if (o.models.empty()) return 0;
    }

    Reporter rep(o.output, o.mem);
    rep.begin();
    std::vector<BenchResult> all;
    int status = 0;
    for (const std::string& path : o.models) {
      try {
        reset_peak_rss();
        const auto t0 = std::chrono::steady_clock::now();
        std::unique_ptr<Model> model = Model::load(path);
        const HParams& hp = model->hparams();
        const int n_ctx = std::max({max_prompt, max_gen, 1});
        if (hp.learned_positions && n_ctx > hp.n_ctx_train)
          throw Error("a test of " + std::to_string(n_ctx) + " tokens does not fit this " + hp.arch + " model's " +
                      std::to_string(hp.n_ctx_train) + "-position table");
        ContextParams cp;
        cp.n_ctx = n_ctx;
        cp.n_ubatch = o.ubatch;
        cp.n_threads = o.threads.front();
        cp.backends = parse_backend_list(o.backend);
        cp.n_gpu_layers = o.n_gpu_layers;
        cp.type_k = o.cache_type_k == "q8_0" ? DType::Q8_0 : DType::F16;
        cp.type_v = o.cache_type_v == "q8_0" ? DType::Q8_0 : DType::F16;
        std::vector<std::string> notes;
        Context ctx(*model, cp, &notes);
        const std::vector<LoraBinding> adapters = load_adapters(*model, o.lora.list());
        ctx.set_adapters(adapters);
        std::unique_ptr<Context> multi;  // -np > 1: a context with that many sequences
        // Ready to run: the file mapped, the context made and the weights repacked.
        const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        for (const std::string& n : notes) std::fprintf(stderr, "xent bench: %s\n", n.c_str());

        BenchResult base;
        base.model_path = path;
        base.model_label = model_label(*model, &base.file_type);
        base.size_bytes = model->weight_bytes();
        base.n_params = model->n_params();
        for (const auto& b : ctx.backends()) base.backends += (base.backends.empty() ? "" : ",") + b->name();
        base.n_ubatch = o.ubatch;
        base.load_ms = load_ms;
        base.weight_bytes_per_token = weight_bytes_per_token(*model);
        base.repacked_bytes = ctx.repacked_bytes();

        // Seeded random ids over the whole vocabulary: the same for every test and model size.
        std::mt19937 rng(static_cast<uint32_t>(o.seed));
        std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(hp.n_vocab - 1));
        std::vector<int32_t> tokens(static_cast<size_t>(n_ctx));
        for (int32_t& t : tokens) t = pick(rng);

        for (int t : o.threads) {
          ctx.set_n_threads(t);
          std::vector<std::pair<int, int>> tests;  // (n_prompt, n_gen)
          for (int p : o.n_prompt)
            if (p > 0) tests.emplace_back(p, 0);
          for (int n : o.n_gen)
            if (n > 0) tests.emplace_back(0, n);
          for (const auto& [p, n] : tests)
            for (int np : o.parallel) {
              BenchResult r = base;
              r.n_threads = t;
              r.device = ctx.backends().front()->device_description();  // names the thread count
              r.n_prompt = p;
              r.n_gen = n;
              r.test = p > 0 ? "pp" + std::to_string(p) : "tg" + std::to_string(n);
              r.n_seq = np;
              if (np > 1) r.test += " x" + std::to_string(np);
              // A quantized cache is named in the test, so rows of both kinds can share a table.
              if (o.cache_type_k != "f16" || o.cache_type_v != "f16")
                r.test += " kv " + o.cache_type_k + "/" + o.cache_type_v;
              r.test_time = utc_now();
              if (np == 1) {
                r.samples_ns = time_test(ctx, tokens, p, n, o.reps);
              } else {
                if (!multi || multi->n_seq_max() < np) {
                  multi.reset();
                  ContextParams mp = cp;
                  mp.n_seq_max = np;
                  mp.n_ctx = static_cast<int64_t>(n_ctx) * np;
                  multi = std::make_unique<Context>(*model, mp);
                  multi->set_adapters(adapters);
                }
                multi->set_n_threads(t);
                r.samples_ns = time_test_parallel(*multi, tokens, p, n, np, o.reps);
              }
              r.peak_rss_bytes = peak_rss_bytes();
              if (auto it = bw.find(t); it != bw.end()) r.mem_bw_gbs = it->second;
              rep.row(r, o.n_gpu_layers);
              all.push_back(r);
            }
        }
      } catch (const std::exception& e) {
        print_error("bench", path + ": " + e.what());
        status = 1;
        break;
      }
    }
    rep.end();
    if (o.output == "md") {
      // Load time and peak memory do not vary by test: one line per model.
      std::string last;
      for (const BenchResult& r : all) {
        if (r.model_path == last) continue;
        last = r.model_path;
        uint64_t peak = 0;
        for (const BenchResult& q : all)
          if (q.model_path == r.model_path) peak = std::max(peak, q.peak_rss_bytes);
        std::printf("%s%s: load %.1f ms, peak RSS %s, %s of weights read per generated token", &r == &all.front() ? "\n" : "",
                    r.model_path.c_str(), r.load_ms, human_size(peak).c_str(), human_size(r.weight_bytes_per_token).c_str());
        if (r.repacked_bytes > 0) std::printf(" (%s of them repacked for the CPU kernels)", human_size(r.repacked_bytes).c_str());
        std::printf("\n");
      }
    }
    if (!o.plot_path.empty() && !all.empty()) {
      write_bench_plot(o.plot_path, all);
      std::fprintf(stderr, "xent bench: wrote %s\n", o.plot_path.c_str());
    }
    return status;
  } catch (const std::exception& e) {
    print_error("bench", e.what());
    return 1;
  }
}

}  // namespace

void add_bench_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand("bench", "prompt and generation speed (tok/s), as llama-bench measures it");
  cmd->add_option("-m,--model", o->models, "GGUF model file (repeat the option or separate files with commas)")
      ->delimiter(',');
  cmd->add_option("-p,--n-prompt", o->n_prompt, "prompt tokens evaluated as one batch, comma list (0: no pp test)")
      ->delimiter(',')
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("-n,--n-gen", o->n_gen, "tokens generated one at a time, comma list (0: no tg test)")
      ->delimiter(',')
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("-t,--threads", o->threads, "CPU thread counts, comma list (default: all hardware threads)")
      ->delimiter(',')
      ->check(CLI::Range(1, 1024));
  cmd->add_option("-r,--repetitions", o->reps, "timed repetitions of each test (after one warm-up)")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--output", o->output, "md, csv or json")->check(CLI::IsMember({"md", "csv", "json"}));
  cmd->add_option("--plot", o->plot_path, "also draw the results as a PNG bar chart");
  cmd->add_option("--backend", o->backend, "backends in preference order: cpu, vulkan, cuda (comma-separated)");
  cmd->add_option("--ngl,--n-gpu-layers", o->n_gpu_layers, "layers on the GPU backend (-1: all; -ngl works too)");
  cmd->add_option("-b,--batch-size", o->ubatch, "most tokens evaluated in one step")->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--np,--parallel", o->parallel,
                  "sequences evaluated together, comma list (default 1; -np works too): pp and tg of N "
                  "sequences in shared batches, t/s over all of them")
      ->delimiter(',')
      ->check(CLI::Range(1, 256));
  cmd->add_option("--ctk,--cache-type-k", o->cache_type_k, "KV cache type of the keys: f16 or q8_0 (-ctk works too)")
      ->check(CLI::IsMember({"f16", "q8_0"}));
  cmd->add_option("--ctv,--cache-type-v", o->cache_type_v, "KV cache type of the values: f16 or q8_0 (-ctv works too)")
      ->check(CLI::IsMember({"f16", "q8_0"}));
  cmd->add_option("--seed", o->seed, "seed of the random token ids");
  cmd->add_flag("--mem", o->mem, "measure memory bandwidth (STREAM triad) and how much of it generation uses");
  cmd->add_option("--synthetic", o->synthetic.shape,
                  "write a random-weight model of a real shape: " + synthetic_shape_names());
  cmd->add_option("--type", o->synthetic.type, "--synthetic: weight type as xent quantize names it (F16, Q8_0, Q4_K_M ...)");
  cmd->add_option("-o", o->synthetic.output, "--synthetic, --synthetic-lora: the GGUF file to write");
  cmd->add_option("--vocab", o->synthetic.vocab_path, "--synthetic: copy the tokenizer of this GGUF (default: synthetic)");
  cmd->add_option("--synthetic-seed", o->synthetic.seed, "--synthetic, --synthetic-lora: seed of the weights");
  cmd->add_option("--synthetic-lora", o->synthetic_lora_rank,
                  "write a random LoRA adapter of this rank for --base (-o the file, --type F32/F16/BF16)")
      ->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--base", o->synthetic_lora.base_path, "--synthetic-lora: the base model it adapts");
  cmd->add_option("--lora-alpha", o->synthetic_lora.alpha, "--synthetic-lora: adapter.lora.alpha (default 2 x rank)");
  cmd->add_option("--lora-targets", o->synthetic_lora.targets,
                  "--synthetic-lora: comma list (attn_q, ffn_down, output, token_embd ...; default: every block weight and output)");
  add_lora_options(*cmd, o->lora);
  CLI::Option* autocomplete = cmd->add_flag("--autocomplete", o->autocomplete,
               "replay typing the note -f FILE and report suggestion latency (p50/p95/p99 ms) instead");
  cmd->add_option("-f,--file", o->note_path, "--autocomplete: the note to type");
  cmd->add_option("--words", o->autocomplete_words, "--autocomplete: words per suggestion (2-3: phrases, scored as one key "
                  "for the whole phrase and a key per word for its right first words)")
      ->check(CLI::Range(1, 8))
      ->needs(autocomplete);
  cmd->callback([o, &exit_code] { exit_code = o->autocomplete ? run_autocomplete(*o) : run(*o); });
}

}  // namespace xent::app
