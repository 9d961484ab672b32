// A small pool of persistent threads for the CPU backend when it is built without OpenMP
// (embedded builds): one job per call, run by every thread, with a barrier between phases.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace xent::cpu {

class ThreadPool {
 public:
  // The caller of run() is thread 0, so n_threads - 1 threads are started here.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls job(arg, ith, nth) on nth threads (nth <= size(); the caller is ith 0) and
  // returns when all have finished. The first exception any thread throws is rethrown
  // here, after the others have run out (barriers stop waiting once one has failed).
  // Not reentrant: one run() at a time per pool.
  void run(int nth, void (*job)(void* arg, int ith, int nth), void* arg);

  // Blocks until all nth threads of the current run() have reached it. Callable only
  // from inside a job; a one-thread run returns at once.
  static void barrier();

 private:
  void worker(int ith);
  void run_job(int ith);
  void wait_barrier();

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_cv_, done_cv_;
  uint64_t job_generation_ = 0;  // under mutex_: bumped once per run()
  int pending_ = 0;              // under mutex_: workers still in the current job
  bool stop_ = false;
  void (*job_)(void*, int, int) = nullptr;
  void* arg_ = nullptr;
  int nth_ = 1;
  std::exception_ptr error_;  // under mutex_

  // Sense-reversing barrier: the last thread in resets the count, then bumps the phase.
  std::atomic<int> arrived_{0};
  std::atomic<uint32_t> phase_{0};
  std::atomic<bool> failed_{false};
};

}  // namespace xent::cpu
