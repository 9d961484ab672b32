// `xent serve`: the slots (one context each, sharing the model), the wait queue in front
// of them, autocomplete sessions, and a generation run on a slot with stop strings.
#include <algorithm>
#include <string>

#include "serve.h"

namespace xent::app::serve {

// ---- the pool -----------------------------------------------------------------------

SlotPool::SlotPool(xent_model* model, const ModelOptions& o, int n_slots, int max_queue) : max_queue_(max_queue) {
  for (int i = 0; i < n_slots; ++i) {
    auto s = std::make_unique<Slot>();
    s->id = i;
    s->ctx = create_context(model, o);
    if (!s->ctx) throw std::runtime_error("cannot create the context of slot " + std::to_string(i));
    s->ac = xent_autocomplete_create(s->ctx);
    if (!s->ac) {
      xent_context_free(s->ctx);
      throw std::runtime_error(std::string("cannot create the autocomplete engine: ") + xent_last_error());
    }
    slots_.push_back(std::move(s));
  }
}

SlotPool::~SlotPool() {
  for (auto& s : slots_) {
    xent_autocomplete_free(s->ac);
    xent_context_free(s->ctx);
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
  return std::make_unique<Lease>(this, best);
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

// ---- generation ---------------------------------------------------------------------

namespace {

// Bytes at the end of s that start a UTF-8 character not yet complete.
size_t incomplete_utf8_tail(const std::string& s) {
  for (size_t back = 1; back <= std::min<size_t>(4, s.size()); ++back) {
    const unsigned char c = static_cast<unsigned char>(s[s.size() - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

// Decides which generated text is final: text that might still become a stop string, or
// half a UTF-8 character, waits for the next token.
class TextGate {
 public:
  explicit TextGate(const std::vector<std::string>& stop) : stop_(stop) {}
  bool stopped() const { return stopped_; }

  std::string push(const std::string& piece) {
    pending_ += piece;
    size_t cut = std::string::npos;
    for (const std::string& s : stop_) cut = std::min(cut, pending_.find(s));
    if (cut != std::string::npos) {
      std::string out = pending_.substr(0, cut);
      pending_.clear();
      stopped_ = true;
      return out;
    }
    size_t hold = incomplete_utf8_tail(pending_);
    for (const std::string& s : stop_) {
      for (size_t k = std::min(s.size() - 1, pending_.size()); k > hold; --k) {
        if (pending_.compare(pending_.size() - k, k, s, 0, k) == 0) {
          hold = k;
          break;
        }
      }
    }
    std::string out = pending_.substr(0, pending_.size() - hold);
    pending_.erase(0, pending_.size() - hold);
    return out;
  }
  std::string flush() {
    std::string out;
    out.swap(pending_);
    return out;
  }

 private:
  const std::vector<std::string>& stop_;
  std::string pending_;
  bool stopped_ = false;
};

struct RunState {
  TextGate gate;
  const std::function<bool(const std::string&)>* on_text;
  GenerationResult* result;
  bool client_gone = false;
};

bool on_token(xent_token, const char* piece, int32_t len, void* user_data) {
  auto* st = static_cast<RunState*>(user_data);
  ++st->result->n_completion;
  const std::string out = st->gate.push(std::string(piece, static_cast<size_t>(len)));
  if (!out.empty()) {
    st->result->text += out;
    if (!(*st->on_text)(out)) {
      st->client_gone = true;
      return false;
    }
  }
  return !st->gate.stopped();
}

}  // namespace

GenerationResult generate(Slot& slot, const GenerationRequest& req,
                          const std::function<bool(const std::string&)>& on_text) {
  GenerationResult result;
  xent_sampler* sampler = xent_sampler_create(&req.sampling);
  if (!sampler) throw bad_request(std::string("invalid sampling parameters: ") + xent_last_error());
  std::unique_ptr<xent_sampler, decltype(&xent_sampler_free)> guard(sampler, xent_sampler_free);

  RunState st{TextGate(req.stop), &on_text, &result};
  xent_generate_stats stats{};
  slot.cached_text = req.prompt;
  const xent_status s = xent_generate(slot.ctx, sampler, req.prompt.c_str(), req.max_tokens, on_token, &st, &stats);
  if (s != XENT_OK) {
    slot.cached_text.clear();
    if (s == XENT_ERROR_CONTEXT_FULL || s == XENT_ERROR_INVALID_ARGUMENT)
      throw bad_request(xent_last_error(), s == XENT_ERROR_CONTEXT_FULL ? "context_length_exceeded" : "");
    throw ApiError(500, "server_error", std::string("generation failed: ") + xent_last_error());
  }
  if (!st.gate.stopped() && !st.client_gone) {
    const std::string rest = st.gate.flush();
    if (!rest.empty()) {
      result.text += rest;
      on_text(rest);
    }
  }
  result.n_prompt = req.n_prompt;
  result.n_cached = std::max(0, req.n_prompt - stats.n_prompt);
  result.prompt_ms = stats.prompt_ms;
  result.generate_ms = stats.generate_ms;
  const bool ended = stats.stopped_by_eog || st.gate.stopped();
  result.finish_reason = ended ? "stop" : (result.n_completion >= req.max_tokens || !st.client_gone ? "length" : "stop");
  return result;
}

}  // namespace xent::app::serve
