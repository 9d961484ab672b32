// `xent serve`: the autocomplete slots (one context each, sharing the model, made on first
// use), the wait queue in front of them, and autocomplete sessions.
#include <algorithm>
#include <string>

#include "serve.h"

namespace xent::app::serve {

// ---- the pool -----------------------------------------------------------------------

SlotPool::SlotPool(xent_model* model, const ModelOptions& o, int n_slots, int max_queue)
    : model_(model), options_(o), max_queue_(max_queue) {
  for (int i = 0; i < n_slots; ++i) {
    auto s = std::make_unique<Slot>();
    s->id = i;
    slots_.push_back(std::move(s));
  }
}

SlotPool::~SlotPool() {
  for (auto& s : slots_) {
    if (s->ac) xent_autocomplete_free(s->ac);
    if (s->ctx) xent_context_free(s->ctx);
  }
}

SlotPool::Lease::~Lease() { pool_->release(slot_); }

void SlotPool::release(Slot* slot) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    slot->busy = false;
    slot->session.clear();
  }
  freed_.notify_all();
}

std::unique_ptr<SlotPool::Lease> SlotPool::acquire(const std::string& text, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto any_free = [&] {
    return std::any_of(slots_.begin(), slots_.end(), [](const auto& s) { return !s->busy; });
  };
  if (!any_free()) {
    if (waiting_ >= max_queue_)
      throw ApiError(503, "server_busy", "all " + std::to_string(slots_.size()) + " slots are busy and " +
                                             std::to_string(waiting_) + " requests are waiting; try again later");
    ++waiting_;
    const bool got = freed_.wait_for(lock, timeout, any_free);
    --waiting_;
    if (!got) throw ApiError(503, "server_busy", "timed out waiting for a free slot");
  }
  // The free slot whose cache already holds the longest prefix of this text.
  Slot* best = nullptr;
  size_t best_common = 0;
  for (auto& s : slots_) {
    if (s->busy) continue;
    const size_t n = std::min(s->cached_text.size(), text.size());
    size_t common = 0;
    while (common < n && s->cached_text[common] == text[common]) ++common;
    if (!best || common > best_common) {
      best = s.get();
      best_common = common;
    }
  }
  best->busy = true;
  auto lease = std::make_unique<Lease>(this, best);
  lock.unlock();
  if (!best->ctx) {
    best->ctx = create_context(model_, options_);
    if (best->ctx) best->ac = xent_autocomplete_create(best->ctx);
    if (!best->ac) {
      const std::string why = xent_last_error();
      if (best->ctx) xent_context_free(best->ctx);
      best->ctx = nullptr;
      throw ApiError(500, "server_error", "cannot create an autocomplete context: " + why);
    }
  }
  return lease;
}

uint64_t SlotPool::session_begin(const std::string& session) {
  if (session.empty()) return 0;
  std::lock_guard<std::mutex> lock(mutex_);
  if (sessions_.size() > 4096) sessions_.clear();  // forget old sessions; worst case one stale run
  const uint64_t seq = ++session_seq_;
  sessions_[session] = seq;
  for (auto& s : slots_)
    if (s->busy && s->session == session) xent_autocomplete_cancel(s->ac);
  return seq;
}

bool SlotPool::session_current(const std::string& session, uint64_t seq) {
  if (session.empty()) return true;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = sessions_.find(session);
  return it == sessions_.end() || it->second == seq;
}

void SlotPool::session_running(Slot& slot, const std::string& session) {
  std::lock_guard<std::mutex> lock(mutex_);
  slot.session = session;
}

int SlotPool::n_busy() {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int>(std::count_if(slots_.begin(), slots_.end(), [](const auto& s) { return s->busy; }));
}

int SlotPool::n_waiting() {
  std::lock_guard<std::mutex> lock(mutex_);
  return waiting_;
}

}  // namespace xent::app::serve
