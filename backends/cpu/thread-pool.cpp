// The CPU backend's own thread pool (see thread-pool.h): workers sleep on a condition
// variable between jobs and spin, then yield, at barriers, which come every few µs.
#include "backends/cpu/thread-pool.h"

namespace xent::cpu {
namespace {

// The pool whose job this thread is running, so ThreadPool::barrier() (a plain function
// pointer in OpContext) needs no argument.
thread_local ThreadPool* t_pool = nullptr;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  const int n = n_threads > 1 ? n_threads : 1;
  workers_.reserve(static_cast<size_t>(n - 1));
  for (int i = 1; i < n; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  start_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::run_job(int ith) {
  ThreadPool* const outer = t_pool;
  t_pool = this;
  try {
    job_(arg_, ith, nth_);
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!error_) error_ = std::current_exception();
    failed_.store(true, std::memory_order_release);
  }
  t_pool = outer;
}

void ThreadPool::worker(int ith) {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      start_cv_.wait(lock, [&] { return stop_ || job_generation_ != seen; });
      if (stop_) return;
      seen = job_generation_;
      if (ith >= nth_) continue;  // this run uses fewer threads than the pool has
    }
    run_job(ith);
    std::lock_guard<std::mutex> lock(mutex_);
    if (--pending_ == 0) done_cv_.notify_one();
  }
}

void ThreadPool::run(int nth, void (*job)(void*, int, int), void* arg) {
  nth = nth < 1 ? 1 : (nth > size() ? size() : nth);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = job;
    arg_ = arg;
    nth_ = nth;
    pending_ = nth - 1;
    error_ = nullptr;
    arrived_.store(0, std::memory_order_relaxed);
    failed_.store(false, std::memory_order_relaxed);
    ++job_generation_;
  }
  if (nth > 1) start_cv_.notify_all();
  run_job(0);
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    done_cv_.wait(lock, [&] { return pending_ == 0; });
    error = error_;
    error_ = nullptr;
  }
  if (error) std::rethrow_exception(error);
}

void ThreadPool::barrier() {
  if (t_pool) t_pool->wait_barrier();
}

void ThreadPool::wait_barrier() {
  if (nth_ <= 1) return;
  const uint32_t phase = phase_.load(std::memory_order_acquire);
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) == nth_ - 1) {
    arrived_.store(0, std::memory_order_relaxed);
    phase_.fetch_add(1, std::memory_order_acq_rel);  // publishes every thread's writes
    return;
  }
  // Spin briefly (barriers between ops are short), then give the core away: on a phone
  // or board there may be fewer cores than threads.
  for (int spins = 0; phase_.load(std::memory_order_acquire) == phase; ++spins) {
    if (failed_.load(std::memory_order_acquire)) return;  // a thread threw: stop waiting
    if (spins < 2000) cpu_relax();
    else std::this_thread::yield();
  }
}

}  // namespace xent::cpu
