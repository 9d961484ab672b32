// Shared pieces of `xent bench`: one measured result, the memory-bandwidth probe and
// peak-RSS reading (bench-memory.cpp), and the PNG bar chart (bench-plot.cpp).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common.h"

namespace xent::app {

// `xent bench --autocomplete` and `xent bench-autocomplete`: replays typing a note one
// character at a time and reports suggestion latency and tokens evaluated per keystroke.
struct AutocompleteBenchOptions {
  ModelOptions model;
  std::string note_path;
  std::string output = "text";  // text or json
  size_t max_chars = 0;         // type only the first N bytes (0: all)
  int n_suggestions = 3;
  int max_words = 1;
  int beam_width = 0;              // 0: the engine's default
  int max_tokens = 0;              // 0: the engine's default
  float min_probability = -1.0f;   // < 0: the engine's default
  bool per_key = false;         // a line per keystroke on stderr
};
int run_autocomplete_bench(const AutocompleteBenchOptions& o);

// One row of the report: a model, a thread count and a test (pp<N> or tg<N>).
struct BenchResult {
  std::string model_path;
  std::string model_label;  // "llama 135M Q8_0"
  std::string file_type;    // "Q8_0"
  uint64_t size_bytes = 0;  // tensor bytes
  uint64_t n_params = 0;
  std::string backends;     // "cpu", "vulkan0,cpu"
  std::string device;       // the first backend's description
  int n_threads = 0;
  int n_ubatch = 0;
  int n_prompt = 0, n_gen = 0;
  int n_seq = 1;            // sequences evaluated together (-np); t/s counts all their tokens
  std::string test;         // "pp512", "tg128"
  std::string test_time;    // ISO 8601, UTC
  std::vector<double> samples_ns;  // one per repetition
  double load_ms = 0;
  uint64_t peak_rss_bytes = 0;
  uint64_t weight_bytes_per_token = 0;  // weights one generated token reads
  uint64_t repacked_bytes = 0;          // of the weights, read from the CPU's repacked copy
  double mem_bw_gbs = 0;                // triad bandwidth at n_threads (0: not measured)

  int n_tokens() const { return (n_prompt + n_gen) * n_seq; }
  std::vector<double> samples_ts() const;
  double avg_ns() const;
  double stddev_ns() const;
  double avg_ts() const;
  double stddev_ts() const;
  // tg: tok/s x weight bytes per token / bandwidth; 0 when not measured or pp.
  double bandwidth_fraction() const;
};

// STREAM triad a[i] = b[i] + s * c[i] over arrays much larger than the caches, on
// n_threads threads; the best of a few passes, counting 3 x 8 bytes per element.
double triad_bandwidth_gbs(int n_threads);

// The process's peak resident set (VmHWM; ru_maxrss where /proc is absent), in bytes.
uint64_t peak_rss_bytes();
// Starts a new peak (Linux clear_refs 5); false where the kernel does not allow it.
bool reset_peak_rss();

// Draws avg t/s (with a stddev whisker) as bars, one panel per test; throws xent::Error.
void write_bench_plot(const std::string& path, const std::vector<BenchResult>& results);

}  // namespace xent::app
