// `xent bench --mem`: the memory bandwidth a token-generation step is bounded by (STREAM
// triad), and the process's peak resident memory.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench.h"

namespace xent::app {

double triad_bandwidth_gbs(int n_threads) {
  // 3 x 64 MiB: well past the last-level caches of the machines we run on.
  constexpr size_t kN = size_t{8} << 20;
  constexpr int kPasses = 5;
  n_threads = std::max(1, n_threads);
  std::unique_ptr<double[]> a(new double[kN]), b(new double[kN]), c(new double[kN]);
  const double s = 3.0;
  // Each thread touches its own slice first, so its pages sit near it (NUMA first touch).
  auto slice = [&](int t, size_t* lo, size_t* hi) {
    *lo = kN * static_cast<size_t>(t) / static_cast<size_t>(n_threads);
    *hi = kN * static_cast<size_t>(t + 1) / static_cast<size_t>(n_threads);
  };
  auto parallel = [&](auto&& body) {
    std::vector<std::thread> pool;
    for (int t = 1; t < n_threads; ++t) pool.emplace_back(body, t);
    body(0);
    for (std::thread& th : pool) th.join();
  };
  parallel([&](int t) {
    size_t lo, hi;
    slice(t, &lo, &hi);
    for (size_t i = lo; i < hi; ++i) {
      a[i] = 0;
      b[i] = 1.0;
      c[i] = 2.0;
    }
  });
  double best_s = 1e30;
  for (int pass = 0; pass < kPasses; ++pass) {
    const auto t0 = std::chrono::steady_clock::now();
    parallel([&](int t) {
      size_t lo, hi;
      slice(t, &lo, &hi);
      double* __restrict pa = a.get();
      const double* __restrict pb = b.get();
      const double* __restrict pc = c.get();
      for (size_t i = lo; i < hi; ++i) pa[i] = pb[i] + s * pc[i];
    });
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (pass > 0) best_s = std::min(best_s, dt);  // the first pass also pays for thread start-up
  }
  // Keep the result observable so the loops are not optimised away.
  volatile double sink = a[kN / 2];
  (void)sink;
  return 3.0 * sizeof(double) * static_cast<double>(kN) / best_s / 1e9;
}

uint64_t peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) == 0) return static_cast<uint64_t>(ru.ru_maxrss) * 1024;  // KiB on Linux
  return 0;
}

bool reset_peak_rss() {
  std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (!f) return false;
  const bool ok = std::fputs("5", f) >= 0;
  return std::fclose(f) == 0 && ok;
}

}  // namespace xent::app
