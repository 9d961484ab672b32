// Tests of the CPU backend's own thread pool (used when built without OpenMP): every
// thread runs its share once, barriers order the phases, and errors come back.
#include <catch2/catch.hpp>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "backends/cpu/thread-pool.h"

using xent::cpu::ThreadPool;

namespace {

struct PhaseJob {
  int n_phases = 0;
  std::vector<std::atomic<int>>* slots = nullptr;
  std::atomic<int> wrong{0};
  std::atomic<int> calls{0};
  std::atomic<int> ith_mask{0};
};

// Each phase every thread stores the phase in its slot, waits at the barrier and then
// reads every slot: all must show this phase (nobody lagging, nobody ahead).
void phase_job(void* p, int ith, int nth) {
  auto& j = *static_cast<PhaseJob*>(p);
  j.calls.fetch_add(1);
  j.ith_mask.fetch_or(1 << ith);
  for (int phase = 1; phase <= j.n_phases; ++phase) {
    (*j.slots)[ith].store(phase, std::memory_order_relaxed);
    ThreadPool::barrier();
    for (int k = 0; k < nth; ++k)
      if ((*j.slots)[k].load(std::memory_order_relaxed) != phase) j.wrong.fetch_add(1);
    ThreadPool::barrier();  // nobody writes the next phase before all have read this one
  }
}

void throwing_job(void* p, int ith, int /*nth*/) {
  if (ith == *static_cast<int*>(p)) throw std::runtime_error("thread failed on purpose");
  for (int i = 0; i < 50; ++i) ThreadPool::barrier();  // must not wait for the dead thread
}

}  // namespace

TEST_CASE("thread pool: each thread runs once per job and barriers order the phases", "[cpu][threads]") {
  for (int n : {1, 2, 3, 4}) {
    ThreadPool pool(n);
    REQUIRE(pool.size() == n);
    for (int nth = 1; nth <= n; ++nth) {
      INFO("pool " << n << " threads, job on " << nth);
      std::vector<std::atomic<int>> slots(static_cast<size_t>(nth));
      for (auto& s : slots) s.store(0);
      PhaseJob job;
      job.n_phases = 300;
      job.slots = &slots;
      pool.run(nth, phase_job, &job);
      CHECK(job.calls.load() == nth);
      CHECK(job.ith_mask.load() == (1 << nth) - 1);
      CHECK(job.wrong.load() == 0);
    }
  }
}

TEST_CASE("thread pool: many short jobs back to back", "[cpu][threads]") {
  ThreadPool pool(3);
  std::atomic<int> total{0};
  auto add = [](void* p, int ith, int) { static_cast<std::atomic<int>*>(p)->fetch_add(ith + 1); };
  for (int i = 0; i < 2000; ++i) pool.run(3, add, &total);
  CHECK(total.load() == 2000 * (1 + 2 + 3));
}

TEST_CASE("thread pool: an exception in any thread is rethrown and the pool still works", "[cpu][threads]") {
  ThreadPool pool(3);
  for (int who : {0, 1, 2}) {
    INFO("thread " << who << " throws");
    CHECK_THROWS_WITH(pool.run(3, throwing_job, &who), "thread failed on purpose");
  }
  std::vector<std::atomic<int>> slots(3);
  for (auto& s : slots) s.store(0);
  PhaseJob job;
  job.n_phases = 50;
  job.slots = &slots;
  pool.run(3, phase_job, &job);
  CHECK(job.wrong.load() == 0);
  CHECK(job.calls.load() == 3);
}
