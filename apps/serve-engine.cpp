// `xent serve`: continuous batching. One scheduler thread owns one context whose KV cache
// holds a sequence per slot; each step it admits waiting requests into free slots, builds
// one batch (the next token of every generating slot, then prompt chunks up to the batch
// size), evaluates it, samples a token per slot from that slot's row of logits, and hands
// the text to the HTTP threads through each request's Job.
#include <algorithm>
#include <cstdio>
#include <string>

#include "serve.h"

namespace xent::app::serve {

// ---- jobs ---------------------------------------------------------------------------

void Job::wait_started() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return started_ || done_; });
  if (error_) throw *error_;
}

bool Job::next_text(std::string* out) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !text_.empty() || done_; });
  if (!text_.empty()) {
    out->append(text_);
    text_.clear();
    return true;
  }
  if (error_) throw *error_;
  return false;
}

GenerationResult Job::wait_result() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return done_; });
  if (error_) throw *error_;
  return result_;
}

void Job::start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    started_ = true;
  }
  cv_.notify_all();
}

void Job::emit(const std::string& text) {
  if (text.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    text_ += text;
  }
  cv_.notify_all();
}

void Job::finish(GenerationResult r) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    result_ = std::move(r);
    done_ = true;
  }
  cv_.notify_all();
}

void Job::fail(const ApiError& e) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (done_) return;
    error_ = std::make_unique<ApiError>(e);
    done_ = true;
  }
  cv_.notify_all();
}

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

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
  std::vector<std::string> stop_;
  std::string pending_;
  bool stopped_ = false;
};

size_t common_prefix(const std::vector<xent_token>& a, const std::vector<xent_token>& b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

// A prefix held by another slot is copied when it saves at least this many tokens.
constexpr size_t kMinCopiedPrefix = 16;

}  // namespace

// ---- the engine ---------------------------------------------------------------------

struct Engine::Slot {
  int seq = 0;
  std::vector<xent_token> cells;  // the tokens in this sequence's KV cells, in order
  uint64_t last_used = 0;         // for choosing which idle slot's cache to give up

  // The request in flight (job null: idle).
  std::shared_ptr<Job> job;
  std::unique_ptr<xent_sampler, decltype(&xent_sampler_free)> sampler{nullptr, xent_sampler_free};
  std::unique_ptr<TextGate> gate;
  size_t n_read = 0;          // prompt tokens in the cells
  xent_token next = -1;       // sampled, not yet evaluated
  int32_t logit_row = -1;     // this step's batch row with our logits
  bool in_batch = false;      // tokens of ours are in this step's batch
  GenerationResult result;
  int copied_from = -1;       // the slot whose cells gave the prompt's prefix, if another
  std::string outcome;        // for the log: stop, length, cancelled, error
  std::vector<float> lora;        // the request's adapter scales
  std::vector<float> cells_lora;  // the scales the cells were computed with
  uint64_t served = 0;            // the last step that carried tokens of ours
  Clock::time_point t_start, t_first;
  bool generating() const { return job && next >= 0; }
};

Engine::Engine(xent_model* model, const ModelOptions& o, int n_slots, int max_queue, int queue_timeout_s,
               double max_request_s)
    : model_(model),
      n_slots_(n_slots),
      max_queue_(max_queue),
      queue_timeout_s_(queue_timeout_s),
      max_request_s_(max_request_s) {
  // As llama-server's -c: the total across slots. Unset: every slot gets the context a
  // single-sequence run would have. LoRA adapters (--lora) are attached here too.
  const int32_t per_slot = std::min<int32_t>(xent_model_n_ctx_train(model), 4096);
  ModelOptions base = o;
  base.lora = {};  // attached per step, below
  ctx_ = create_context(model, base, n_slots, o.ctx_size > 0 ? o.ctx_size : per_slot * n_slots);
  if (!ctx_) throw std::runtime_error(std::string("cannot create the context: ") + xent_last_error());
  lora_list_ = o.lora.list();
  for (const auto& [path, scale] : lora_list_) {
    xent_lora* l = xent_lora_load(model, path.c_str());
    if (!l) {
      const std::string why = xent_last_error();
      for (xent_lora* x : loras_) xent_lora_free(x);
      xent_context_free(ctx_);
      throw std::runtime_error("cannot load LoRA adapter '" + path + "': " + why);
    }
    loras_.push_back(l);
  }
  lora_active_.assign(loras_.size(), 0.0f);
  n_ctx_slot_ = xent_context_n_ctx_seq(ctx_);
  n_batch_ = std::max(1, o.batch_size);
  for (int i = 0; i < n_slots; ++i) {
    auto s = std::make_unique<Slot>();
    s->seq = i;
    slots_.push_back(std::move(s));
  }
  thread_ = std::thread([this] { loop(); });
}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  xent_context_free(ctx_);
  for (xent_lora* l : loras_) xent_lora_free(l);
}

// The request's scales, or the command line's when it names none.
std::vector<float> Engine::lora_of(const Job& job) const {
  if (!job.req->lora.empty()) return job.req->lora;
  std::vector<float> s;
  for (const auto& l : lora_list_) s.push_back(l.second);
  return s;
}

// Attaches the adapters with these scales (0: not attached) unless they already are.
bool Engine::use_lora(const std::vector<float>& scales) {
  if (scales == lora_active_) return true;
  std::vector<const xent_lora*> on;
  std::vector<float> on_scales;
  for (size_t i = 0; i < loras_.size(); ++i)
    if (scales[i] != 0.0f) {
      on.push_back(loras_[i]);
      on_scales.push_back(scales[i]);
    }
  // The other slots' cells stay: each is only ever evaluated under its own scales.
  if (xent_context_lora_set(ctx_, on.data(), on_scales.data(), static_cast<int32_t>(on.size())) != XENT_OK)
    return false;
  lora_active_ = scales;
  return true;
}

uint64_t Engine::kv_bytes() const { return xent_context_kv_bytes(ctx_); }

int Engine::n_waiting() {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(queue_.size());
}

std::shared_ptr<Job> Engine::submit(std::shared_ptr<const GenerationRequest> req) {
  auto job = std::make_shared<Job>();
  const int32_t n = xent_tokenize(model_, req->prompt.data(), static_cast<int32_t>(req->prompt.size()), nullptr, 0,
                                  true, true);
  if (n == INT32_MIN) throw bad_request(std::string("cannot tokenize the prompt: ") + xent_last_error());
  job->prompt.resize(static_cast<size_t>(n < 0 ? -n : n));
  if (xent_tokenize(model_, req->prompt.data(), static_cast<int32_t>(req->prompt.size()), job->prompt.data(),
                    static_cast<int32_t>(job->prompt.size()), true, true) < 0)
    throw ApiError(500, "server_error", "tokenization failed");
  if (job->prompt.empty()) throw bad_request("the prompt has no tokens");
  if (static_cast<int32_t>(job->prompt.size()) >= n_ctx_slot_)
    throw bad_request("the prompt has " + std::to_string(job->prompt.size()) + " tokens; a slot holds " +
                          std::to_string(n_ctx_slot_) + " (--ctx-size / --parallel)",
                      "context_length_exceeded");
  job->req = std::move(req);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) throw ApiError(503, "server_busy", "the server is stopping");
    const int free_slots = n_slots_ - n_busy_.load();
    if (static_cast<int>(queue_.size()) >= max_queue_ + std::max(0, free_slots))
      throw ApiError(503, "server_busy", "all " + std::to_string(n_slots_) + " slots are busy and " +
                                             std::to_string(queue_.size()) + " requests are waiting; try again later");
    queue_.push_back({job, Clock::now()});
  }
  wake_.notify_all();
  return job;
}

// Puts a job on an idle slot: reuses the slot's cells that match the prompt, or copies a
// longer matching prefix from another slot, then reads the rest in chunks.
void Engine::admit(const std::shared_ptr<Job>& job, Slot& slot) {
  const std::vector<xent_token>& prompt = job->prompt;
  slot.lora = lora_of(*job);
  size_t keep = slot.cells_lora == slot.lora ? common_prefix(slot.cells, prompt) : 0;
  Slot* donor = nullptr;
  size_t donor_keep = keep;
  for (auto& other : slots_) {
    if (other.get() == &slot || other->cells_lora != slot.lora) continue;
    const size_t c = common_prefix(other->cells, prompt);
    if (c >= donor_keep + kMinCopiedPrefix) {
      donor = other.get();
      donor_keep = c;
    }
  }
  slot.copied_from = -1;
  if (donor && xent_seq_copy(ctx_, donor->seq, slot.seq) == XENT_OK) {
    slot.cells = donor->cells;
    keep = donor_keep;
    slot.copied_from = donor->seq;
  }
  keep = std::min(keep, prompt.size() - 1);  // at least one token is read for fresh logits
  if (xent_seq_truncate(ctx_, slot.seq, static_cast<int32_t>(keep)) != XENT_OK) {
    keep = 0;
    xent_seq_truncate(ctx_, slot.seq, 0);
  }
  slot.cells.resize(keep);
  slot.cells_lora = slot.lora;

  slot.job = job;
  slot.sampler.reset(xent_sampler_create(&job->req->sampling));
  slot.gate = std::make_unique<TextGate>(job->req->stop);
  slot.n_read = keep;
  slot.next = -1;
  slot.result = GenerationResult{};
  slot.result.n_prompt = static_cast<int32_t>(prompt.size());
  slot.result.n_cached = static_cast<int32_t>(keep);
  slot.t_start = Clock::now();
  if (!slot.sampler) {
    job->fail(bad_request(std::string("invalid sampling parameters: ") + xent_last_error()));
    slot.job.reset();
    return;
  }
  // The grammar compiled when the request was read; the vocabulary's trie is the model's.
  if (!job->req->grammar.empty() &&
      xent_sampler_set_grammar(slot.sampler.get(), model_, job->req->grammar.c_str(), nullptr) != XENT_OK) {
    job->fail(bad_request(job->req->grammar_source + ": " + xent_last_error(), "invalid_grammar"));
    slot.job.reset();
    return;
  }
  ++n_busy_;
  job->start();
}

// Ends the slot's request. keep_cells false (a client gone, an error) frees its cells.
void Engine::end_slot(Slot& slot, bool keep_cells) {
  const GenerationResult& r = slot.result;
  std::string from;
  if (slot.copied_from >= 0) from = " copied from slot " + std::to_string(slot.copied_from);
  std::fprintf(stderr, "xent serve: slot %d: %d prompt tokens (%d cached%s), %d generated, %s, %.1f ms to first token\n",
               slot.seq, r.n_prompt, r.n_cached, from.c_str(), r.n_completion, slot.outcome.c_str(), r.prompt_ms);
  if (!keep_cells) {
    xent_seq_truncate(ctx_, slot.seq, 0);
    slot.cells.clear();
  }
  slot.job.reset();
  slot.sampler.reset();
  slot.gate.reset();
  slot.next = -1;
  --n_busy_;
}

void Engine::loop() {
  xent_batch batch = xent_batch_init(n_batch_ + n_slots_);
  uint64_t tick = 0;
  for (;;) {
    std::vector<std::shared_ptr<Job>> admitted;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || !queue_.empty() || n_busy_.load() > 0; });
      if (stop_) break;
      // Requests that waited too long for a slot get their 503 now.
      const auto now = Clock::now();
      for (auto it = queue_.begin(); it != queue_.end();) {
        if (it->job->cancelled.load()) {
          it->job->fail(ApiError(499, "cancelled", "the client went away"));
          it = queue_.erase(it);
        } else if (now - it->since > std::chrono::seconds(queue_timeout_s_)) {
          it->job->fail(ApiError(503, "server_busy", "timed out waiting for a free slot"));
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
      const int free_slots = n_slots_ - n_busy_.load();
      for (int i = 0; i < free_slots && !queue_.empty(); ++i) {
        admitted.push_back(queue_.front().job);
        queue_.erase(queue_.begin());
      }
    }
    for (const auto& job : admitted) {
      // The idle slot with the longest matching prefix; else the one unused longest.
      Slot* best = nullptr;
      size_t best_common = 0;
      const std::vector<float> lora = lora_of(*job);
      for (auto& s : slots_) {
        if (s->job) continue;
        const size_t c = s->cells_lora == lora ? common_prefix(s->cells, job->prompt) : 0;
        if (!best || c > best_common || (c == best_common && s->last_used < best->last_used)) {
          best = s.get();
          best_common = c;
        }
      }
      if (best) admit(job, *best);
      else job->fail(ApiError(503, "server_busy", "no free slot"));
    }

    // Requests whose client went away end before the step, freeing their cells.
    for (auto& s : slots_)
      if (s->job && s->job->cancelled.load()) {
        s->job->fail(ApiError(499, "cancelled", "the client went away"));
        s->outcome = "cancelled";
        end_slot(*s, false);
      }

    // The batch: one token per generating slot first, then prompt chunks in slot order
    // (admission order within a step) until the batch is full.
    batch.n_tokens = 0;
    auto add = [&](Slot& s, xent_token t, bool logits) {
      const int32_t i = batch.n_tokens++;
      batch.token[i] = t;
      batch.pos[i] = static_cast<int32_t>(s.cells.size());
      batch.seq_id[i] = s.seq;
      batch.logits[i] = logits ? 1 : 0;
      s.cells.push_back(t);
      s.in_batch = true;
      if (logits) s.logit_row = i;
    };
    // With adapters, a step serves the slots of one set of scales: those of the slot that
    // waited longest, so sets take turns.
    const std::vector<float>* step_lora = nullptr;
    if (!loras_.empty()) {
      const Slot* oldest = nullptr;
      for (auto& s : slots_)
        if (s->job && (!oldest || s->served < oldest->served)) oldest = s.get();
      if (oldest) step_lora = &oldest->lora;
    }
    auto in_step = [&](const Slot& s) { return !step_lora || s.lora == *step_lora; };
    for (auto& s : slots_) {
      s->logit_row = -1;
      s->in_batch = false;
      if (s->generating() && in_step(*s)) add(*s, s->next, true);
    }
    int32_t room = n_batch_ - batch.n_tokens;
    for (auto& s : slots_) {
      if (!s->job || s->generating() || room <= 0 || !in_step(*s)) continue;
      const size_t n = std::min<size_t>(s->job->prompt.size() - s->n_read, static_cast<size_t>(room));
      for (size_t k = 0; k < n; ++k) {
        const bool last = s->n_read + 1 == s->job->prompt.size();
        add(*s, s->job->prompt[s->n_read++], last);
      }
      room -= static_cast<int32_t>(n);
    }
    if (batch.n_tokens == 0) continue;
    for (auto& s : slots_)
      if (s->in_batch) s->served = tick + 1;
    // Nothing of the batch was evaluated: every request in it fails and its cells are freed.
    auto fail_batch = [&](const std::string& what) {
      const ApiError e(500, "server_error", what + xent_last_error());
      for (auto& s : slots_)
        if (s->job && s->in_batch) {
          s->job->fail(e);
          s->outcome = "error";
          end_slot(*s, false);
        }
    };
    if (step_lora && !use_lora(*step_lora)) {
      lora_active_.assign(loras_.size(), -1.0f);  // unknown: set again next step
      fail_batch("cannot apply the LoRA adapters: ");
      continue;
    }
    if (xent_decode_batch(ctx_, &batch) != XENT_OK) {
      fail_batch("evaluation failed: ");
      continue;
    }
    ++n_steps_;
    ++tick;

    for (auto& s : slots_) {
      if (!s->job || s->logit_row < 0) continue;
      Slot& slot = *s;
      slot.last_used = tick;
      const auto now = Clock::now();
      if (slot.next < 0) {
        slot.t_first = now;
        slot.result.prompt_ms = ms_between(slot.t_start, now);
      }
      const xent_token t = xent_sampler_sample_ith(slot.sampler.get(), ctx_, slot.logit_row);
      bool done = false;
      bool eog = false;
      const bool grammar = xent_sampler_grammar_state(slot.sampler.get()) != XENT_GRAMMAR_NONE;
      const bool grammar_stuck = t < 0 && grammar && std::string(xent_last_error()).rfind("grammar", 0) == 0;
      if (t < 0 && !grammar_stuck) {
        slot.job->fail(ApiError(500, "server_error", std::string("sampling failed: ") + xent_last_error()));
        slot.outcome = "error";
        end_slot(slot, false);
        continue;
      }
      if (t < 0) {
        // No token continues the grammar (a grammar the vocabulary cannot spell on from here):
        // the reply ends as "stop" with the text it has, and the log says why. The client's
        // grammar was valid, so this is no 4xx; nor a 500, the server did nothing wrong.
        std::fprintf(stderr, "xent serve: slot %d: the grammar (from %s) cannot go on after %d tokens (%s); ending as stop\n",
                     slot.seq, slot.job->req->grammar_source.c_str(), slot.result.n_completion, xent_last_error());
        done = eog = true;
      } else if (xent_token_is_eog(model_, t)) {
        done = eog = true;
      } else {
        ++slot.result.n_completion;
        char buf[256];
        const bool special = slot.job->req->render_special;
        int32_t len = xent_token_to_piece(model_, t, buf, sizeof buf, special);
        std::string piece;
        if (len >= 0) {
          piece.assign(buf, static_cast<size_t>(len));
        } else if (len != INT32_MIN) {
          piece.resize(static_cast<size_t>(-len));
          len = xent_token_to_piece(model_, t, piece.data(), -len, special);
          if (len < 0) piece.clear();
        }
        const std::string out = slot.gate->push(piece);
        slot.result.text += out;
        slot.job->emit(out);
        if (slot.gate->stopped() || (grammar && xent_sampler_grammar_state(slot.sampler.get()) == XENT_GRAMMAR_DONE)) {
          done = eog = true;  // a stop string, or a grammar that allows nothing more
        } else if ((slot.job->req->max_tokens > 0 && slot.result.n_completion >= slot.job->req->max_tokens) ||
                   static_cast<int32_t>(slot.cells.size()) >= n_ctx_slot_ ||
                   ms_between(slot.t_start, now) >= 1000.0 * max_request_s_) {
          done = true;  // length: max_tokens, the slot's cells or the time budget
        }
      }
      if (!done) {
        slot.next = t;
        continue;
      }
      if (!slot.gate->stopped()) {
        const std::string rest = slot.gate->flush();
        slot.result.text += rest;
        slot.job->emit(rest);
      }
      slot.result.finish_reason = eog ? "stop" : "length";
      slot.result.generate_ms = ms_between(slot.t_first, now);
      slot.outcome = slot.result.finish_reason;
      slot.job->finish(slot.result);
      end_slot(slot, true);
    }
  }
  // Stopping: every request still here gets an answer.
  const ApiError e(503, "server_busy", "the server is stopping");
  for (auto& s : slots_)
    if (s->job) {
      s->job->fail(e);
      s->outcome = "stopped";
      end_slot(*s, false);
    }
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& w : queue_) w.job->fail(e);
  queue_.clear();
  xent_batch_free(batch);
}

}  // namespace xent::app::serve
