#include "runtime/inference/context.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <thread>

#include "backends/cpu/cpu-backend.h"
#include "backends/cpu/packed-weights.h"
#include "formats/error.h"
#include "runtime/inference/lora.h"

namespace xent {

std::vector<std::string> parse_backend_list(const std::string& list) {
  std::vector<std::string> out;
  std::string cur;
  for (const char c : list + ",") {
    if (c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else if (c != ' ') {
      cur += c;
    }
  }
  if (out.empty()) out.push_back("cpu");
  return out;
}

Context::Context(const Model& model, const ContextParams& params, std::vector<std::string>* notes)
    : model_(model), params_(params) {
  const HParams& hp = model.hparams();
  n_ctx_ = params.n_ctx > 0 ? params.n_ctx : std::min<int64_t>(hp.n_ctx_train, 4096);
  if (n_ctx_ <= 0) throw Error("context: invalid context size " + std::to_string(n_ctx_));
  if (n_ctx_ > (int64_t{1} << 24)) throw Error("context: size " + std::to_string(n_ctx_) + " is too large");
  if (params_.n_ubatch <= 0) params_.n_ubatch = 512;
  if (params_.n_seq_max < 1 || params_.n_seq_max > 256 || params_.n_seq_max > n_ctx_)
    throw Error("context: " + std::to_string(params_.n_seq_max) + " sequences cannot share " +
                std::to_string(n_ctx_) + " cells (1 to 256, at least one cell each)");
  // Positions count within a sequence: each one's cells are what must fit the table.
  const int64_t cells_per_seq = n_ctx_ / params_.n_seq_max;
  if (hp.learned_positions && cells_per_seq > hp.n_ctx_train)
    throw Error("context: " + std::to_string(cells_per_seq) + " tokens per sequence requested, but this " +
                hp.arch + " model has learned positions for only " + std::to_string(hp.n_ctx_train));
  seq_n_past_.assign(static_cast<size_t>(params_.n_seq_max), 0);

  const int n_threads = params.n_threads > 0
                            ? params.n_threads
                            : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  bool have_cpu = false;
  for (const std::string& name : params.backends) {
    std::string why;
    std::unique_ptr<Backend> b = create_backend(name, n_threads, &why);
    if (!b) {
      if (notes) notes->push_back(name + " backend unavailable: " + why + "; using the CPU");
      continue;
    }
    have_cpu = have_cpu || b->is_host();
    backends_.push_back(std::move(b));
  }
  if (!have_cpu) backends_.push_back(create_backend("cpu", n_threads, nullptr));
  if (params.cpu_reference_kernels) {
    for (auto& b : backends_)
      if (b->is_host()) b = std::make_unique<cpu::CpuBackend>(n_threads, true);
  }

  // Everything on the CPU: its matmuls read the weights repacked (made once per model).
  // With a GPU backend the CPU is only the fallback, and the originals stay as they are.
  // Only a mapped file's pages can be given back after copying; a model read into memory
  // (--no-mmap) keeps its one copy rather than holding the weights twice.
  bool cpu_only = true;
  for (auto& b : backends_) cpu_only = cpu_only && b->is_host();
  if (cpu_only && !params.cpu_reference_kernels && model.mmapped()) {
    packed_ = std::static_pointer_cast<const cpu::PackedWeights>(model.shared_state(
        "cpu-packed-weights", [&] { return cpu::pack_weights(model.weights()); }));
    for (auto& b : backends_)
      if (auto* cpu = dynamic_cast<cpu::CpuBackend*>(b.get())) cpu->set_packed_weights(packed_);
  }

  // -ngl: layers [0, n_gpu_layers) on the first non-host backend; the output layer (-1)
  // when all blocks are there.
  int gpu_layers = params.n_gpu_layers < 0 ? static_cast<int>(hp.n_layer) + 1 : params.n_gpu_layers;
  auto layer_allowed = [gpu_layers, n_layer = hp.n_layer](size_t, int layer) {
    if (layer < 0) return gpu_layers > n_layer;
    return layer < gpu_layers;
  };
  std::vector<Backend*> order;
  for (auto& b : backends_) order.push_back(b.get());
  sched_ = std::make_unique<Scheduler>(order, layer_allowed);

  // Each layer's cache lives on the backend that will run its attention.
  Backend* host = nullptr;
  for (auto& b : backends_)
    if (b->is_host() && !host) host = b.get();
  std::vector<Backend*> cache_home(hp.n_layer, host);
  Tensor probe_q, probe_k, probe_cache;
  probe_q.ne[0] = probe_k.ne[0] = probe_cache.ne[0] = hp.head_dim;
  Tensor probe_cache_v;
  probe_cache_v.ne[0] = hp.head_dim;
  probe_cache.type = params_.type_k;
  probe_cache_v.type = params_.type_v;
  // Real strides, so backends that check operand layouts judge the probe like a real node.
  for (Tensor* t : {&probe_q, &probe_k, &probe_cache, &probe_cache_v}) t->set_contiguous_strides();
  Tensor probe;
  probe.op = Op::Attention;
  probe.src[0] = &probe_q;
  probe.src[1] = probe.src[2] = &probe_k;
  probe.src[3] = &probe_cache;
  probe.src[4] = &probe_cache_v;
  probe.f_params[1] = hp.attn_softcap;
  // Several sequences: attention takes a sequence table, which only the CPU runs.
  Tensor probe_seqs;
  probe_seqs.type = DType::I32;
  probe_seqs.ne[0] = 4;
  probe_seqs.set_contiguous_strides();
  if (params_.n_seq_max > 1) probe.src[6] = &probe_seqs;
  for (int64_t l = 0; l < hp.n_layer; ++l) {
    probe.i_params[kAttnWindow] = hp.layer_window.empty() ? 0 : hp.layer_window[static_cast<size_t>(l)];
    for (size_t i = 0; i < order.size(); ++i) {
      if (order[i]->is_host()) break;
      if (layer_allowed(i, static_cast<int>(l)) && order[i]->supports(probe)) {
        cache_home[l] = order[i];
        break;
      }
    }
  }
  kv_ = std::make_unique<KvCache>(hp.n_layer, hp.head_dim, hp.n_head_kv, n_ctx_, cache_home, params_.type_k,
                                  params_.type_v);

  // Upload the weights of the layers the first GPU backend may run, once.
  for (size_t i = 0; i < order.size(); ++i) {
    if (order[i]->is_host()) continue;
    for (const Tensor& w : model.weights()) {
      if (!layer_allowed(i, w.layer)) continue;
      weight_buffers_.push_back(order[i]->alloc_buffer(w.n_bytes()));
      Buffer* buf = weight_buffers_.back().get();
      order[i]->upload(*buf, 0, w.data, w.n_bytes());
      Tensor& copy = resident_weights_.emplace_back(w);
      copy.data = nullptr;
      copy.buffer = buf;
      copy.offset = 0;
      sched_->add_resident(&w, &copy);
    }
    break;
  }
}

Context::~Context() = default;

size_t Context::repacked_bytes() const { return packed_ ? packed_->bytes : 0; }

void Context::set_adapters(std::vector<LoraBinding> adapters) {
  Graph::WeightDeltas deltas;
  for (const auto& [ad, scale] : adapters) {
    if (!ad) throw Error("context: null LoRA adapter");
    if (&ad->base() != &model_)
      throw Error("context: LoRA adapter '" + ad->path() + "' was loaded for another model");
    for (const LoraTarget& t : ad->targets())
      deltas[t.weight].push_back(Graph::WeightDelta{const_cast<Tensor*>(&t.a), const_cast<Tensor*>(&t.b),
                                                    ad->scale_for(t, scale), t.embedding});
  }
  adapters_ = std::move(adapters);
  deltas_ = std::move(deltas);
  graph_.set_weight_deltas(&deltas_);
  graph_built_ = false;  // the next step builds a graph with the new deltas
}

void Context::set_n_threads(int n) {
  for (auto& b : backends_) b->set_n_threads(n);
}

void Context::truncate(int32_t n) { seq_n_past_[0] = std::clamp<int32_t>(n, 0, seq_n_past_[0]); }

void Context::restore_n_past(int32_t n) {
  if (n < 0 || n > n_ctx_per_seq()) throw Error("context: cannot restore " + std::to_string(n) + " positions");
  seq_n_past_[0] = n;
}

void Context::check_tokens(const int32_t* tokens, size_t n) const {
  if (n == 0) throw Error("decode: no tokens to evaluate");
  if (static_cast<int64_t>(seq_n_past_[0]) + static_cast<int64_t>(n) > n_ctx_per_seq())
    throw Error("decode: " + std::to_string(n) + " tokens after " + std::to_string(seq_n_past_[0]) +
                " would exceed the context of " + std::to_string(n_ctx_per_seq()) + " tokens");
  check_tokens_in_vocab(tokens, n);
}

void Context::check_tokens_in_vocab(const int32_t* tokens, size_t n) const {
  const int64_t n_vocab = model_.hparams().n_vocab;
  for (size_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= n_vocab)
      throw Error("decode: token id " + std::to_string(tokens[i]) + " is outside the vocabulary (" +
                  std::to_string(n_vocab) + ")");
}

bool Context::prepare_graph(const GraphShape& shape) {
  if (params_.reuse_graph && graph_built_ && shape == graph_shape_) return false;
  const int64_t n = static_cast<int64_t>(shape.n_tok);
  graph_built_ = false;
  attention_nodes_.clear();
  graph_.clear();
  step_in_ = StepInputs{};
  step_in_.tokens = graph_.input(DType::I32, n, 1, "tokens");
  step_in_.positions = graph_.input(DType::I32, n, 1, "positions");
  if (shape.masked) step_in_.mask = graph_.input(DType::F32, n, n, "mask");
  seq_table_in_ = nullptr;
  if (shape.multi) {
    seq_table_in_ = graph_.input(DType::I32, 4, params_.n_seq_max, "sequences");
    graph_.set_sequence_table(seq_table_in_);
    step_in_.out_ids = graph_.input(DType::I32, static_cast<int64_t>(shape.n_out), 1, "out_ids");
  }
  step_in_.n_tok = static_cast<int32_t>(n);
  step_in_.n_past = shape.multi ? 0 : seq_n_past_[0];
  step_in_.kv = kv_.get();
  step_in_.all_logits = shape.all_logits;
  graph_out_ = model_.architecture().build(graph_, step_in_);
  graph_.set_output(graph_out_);
  for (Tensor* node : graph_.nodes())
    if (node->op == Op::Attention) attention_nodes_.push_back(node);
  graph_shape_ = shape;
  graph_built_ = true;
  return true;
}

void Context::evaluate(const int32_t* tokens, const int32_t* positions, const float* mask, size_t n,
                       bool keep_all_logits, float* logits_out) {
  const int64_t n_vocab = model_.hparams().n_vocab;
  token_buf_.assign(tokens, tokens + n);
  pos_buf_.assign(positions, positions + n);
  if (mask) mask_buf_.assign(mask, mask + n * n);
  const GraphShape shape{n, mask != nullptr, keep_all_logits};
  if (!prepare_graph(shape)) {
    // The same graph one step on: only the cache position moves (check_tokens made sure
    // the new rows fit).
    for (Tensor* a : attention_nodes_) a->i_params[kAttnNPast] = seq_n_past_[0];
  }
  step_in_.tokens->data = token_buf_.data();
  step_in_.positions->data = pos_buf_.data();
  if (mask) step_in_.mask->data = mask_buf_.data();
  Tensor* out = graph_out_;
  sched_->run(graph_);
  if (logits_out) {
    const size_t rows = static_cast<size_t>(out->ne[1]);
    for (size_t r = 0; r < rows; ++r)
      std::memcpy(logits_out + r * n_vocab, static_cast<const uint8_t*>(out->data) + r * out->nb[1],
                  n_vocab * sizeof(float));
  }
  seq_n_past_[0] += static_cast<int32_t>(n);
  n_evaluated_ += n;
}

void Context::decode(const int32_t* tokens, size_t n, bool all_logits) {
  check_tokens(tokens, n);
  const int64_t n_vocab = model_.hparams().n_vocab;
  n_logit_rows_ = all_logits ? n : 1;
  logit_kept_.clear();
  logits_.resize(n_logit_rows_ * static_cast<size_t>(n_vocab));
  std::vector<int32_t>& positions = positions_;
  for (size_t done = 0; done < n;) {
    const size_t n_tok = std::min<size_t>(n - done, static_cast<size_t>(params_.n_ubatch));
    const bool last = done + n_tok == n;
    positions.resize(n_tok);
    for (size_t i = 0; i < n_tok; ++i) positions[i] = seq_n_past_[0] + static_cast<int32_t>(i);
    float* out = all_logits ? &logits_[done * n_vocab] : (last ? logits_.data() : nullptr);
    evaluate(tokens + done, positions.data(), nullptr, n_tok, all_logits, out);
    done += n_tok;
  }
}

void Context::decode_tree(const int32_t* tokens, const int32_t* positions, const float* mask, size_t n) {
  check_tokens(tokens, n);
  if (n > static_cast<size_t>(params_.n_ubatch))
    throw Error("decode_tree: " + std::to_string(n) + " tokens exceed the batch size " +
                std::to_string(params_.n_ubatch));
  const int64_t n_vocab = model_.hparams().n_vocab;
  n_logit_rows_ = n;
  logit_kept_.clear();
  logits_.resize(n * static_cast<size_t>(n_vocab));
  evaluate(tokens, positions, mask, n, true, logits_.data());
}

int32_t Context::seq_n_past(int32_t seq) const {
  if (seq < 0 || seq >= params_.n_seq_max)
    throw Error("context: sequence " + std::to_string(seq) + " is outside [0, " + std::to_string(params_.n_seq_max) + ")");
  return seq_n_past_[static_cast<size_t>(seq)];
}

void Context::seq_truncate(int32_t seq, int32_t p) {
  const int32_t n = seq_n_past(seq);
  seq_n_past_[static_cast<size_t>(seq)] = std::clamp<int32_t>(p, 0, n);
}

void Context::seq_copy(int32_t src, int32_t dst) {
  const int32_t n = seq_n_past(src);
  seq_n_past(dst);
  if (src == dst) return;
  // Rows [0, n) of src's region into dst's, every layer, on whichever backend holds it.
  const int64_t per_seq = n_ctx_per_seq();
  for (int64_t l = 0; l < model_.hparams().n_layer; ++l) {
    for (Tensor* t : {kv_->k(l), kv_->v(l)}) {
      const size_t row = t->nb[2], bytes = row * static_cast<size_t>(n);
      const size_t from = static_cast<size_t>(src * per_seq) * row, to = static_cast<size_t>(dst * per_seq) * row;
      if (t->data) {
        std::memmove(static_cast<uint8_t*>(t->data) + to, static_cast<const uint8_t*>(t->data) + from, bytes);
      } else {
        std::vector<uint8_t> tmp(bytes);
        Backend* b = t->buffer->backend;
        b->download(*t->buffer, t->offset + from, tmp.data(), bytes);
        b->upload(*t->buffer, t->offset + to, tmp.data(), bytes);
      }
    }
  }
  seq_n_past_[static_cast<size_t>(dst)] = n;
}

void Context::decode_batch(const Batch& batch) {
  const size_t n = batch.size();
  if (n == 0) throw Error("decode_batch: no tokens to evaluate");
  if (batch.seq_ids.size() != n || (!batch.positions.empty() && batch.positions.size() != n) ||
      (!batch.logits.empty() && batch.logits.size() != n))
    throw Error("decode_batch: tokens, sequence ids, positions and logits flags differ in length");
  check_tokens_in_vocab(batch.tokens.data(), n);
  // Every check before anything is evaluated, so an error leaves the cache as it was.
  std::vector<int32_t> next(seq_n_past_);
  std::vector<int32_t> pos(n);
  for (size_t i = 0; i < n; ++i) {
    const int32_t s = batch.seq_ids[i];
    seq_n_past(s);
    pos[i] = next[static_cast<size_t>(s)]++;
    if (!batch.positions.empty() && batch.positions[i] != pos[i])
      throw Error("decode_batch: token " + std::to_string(i) + " of sequence " + std::to_string(s) +
                  " is at position " + std::to_string(batch.positions[i]) + ", but the sequence continues at " +
                  std::to_string(pos[i]));
    if (next[static_cast<size_t>(s)] > n_ctx_per_seq())
      throw Error("decode_batch: sequence " + std::to_string(s) + " would exceed its " +
                  std::to_string(n_ctx_per_seq()) + " cells");
  }
  const int64_t n_vocab = model_.hparams().n_vocab;
  n_logit_rows_ = n;
  logits_.assign(n * static_cast<size_t>(n_vocab), 0.0f);
  logit_kept_.assign(n, false);

  // Steps of at most n_ubatch tokens, in batch order; within a step the tokens are grouped
  // by sequence (stably, so each sequence's stay in order).
  const size_t ub = static_cast<size_t>(params_.n_ubatch);
  std::vector<int32_t> order, tokens, positions, table, out_rows;
  std::vector<float> out;
  for (size_t first = 0; first < n; first += ub) {
    const size_t count = std::min(ub, n - first);
    order.resize(count);
    for (size_t i = 0; i < count; ++i) order[i] = static_cast<int32_t>(first + i);
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return batch.seq_ids[a] < batch.seq_ids[b]; });
    tokens.clear(), positions.clear(), table.clear(), out_rows.clear();
    table.assign(static_cast<size_t>(4 * params_.n_seq_max), 0);
    int32_t n_used = 0;
    for (size_t i = 0; i < count; ++i) {
      const int32_t b = order[i], s = batch.seq_ids[b];
      if (i == 0 || batch.seq_ids[order[i - 1]] != s) {
        int32_t* row = &table[static_cast<size_t>(4 * n_used++)];
        row[0] = static_cast<int32_t>(i);
        row[2] = static_cast<int32_t>(s * n_ctx_per_seq());
        row[3] = seq_n_past_[static_cast<size_t>(s)];
      }
      ++table[static_cast<size_t>(4 * (n_used - 1) + 1)];
      tokens.push_back(batch.tokens[b]);
      positions.push_back(pos[b]);
      if (!batch.logits.empty() && batch.logits[b]) out_rows.push_back(static_cast<int32_t>(i));
    }
    out.resize(out_rows.size() * static_cast<size_t>(n_vocab));
    evaluate_seqs(tokens.data(), positions.data(), count, table, out_rows, out.data());
    for (size_t r = 0; r < out_rows.size(); ++r) {
      const size_t b = static_cast<size_t>(order[static_cast<size_t>(out_rows[r])]);
      std::memcpy(&logits_[b * n_vocab], &out[r * n_vocab], n_vocab * sizeof(float));
      logit_kept_[b] = true;
    }
    for (int32_t u = 0; u < n_used; ++u)
      seq_n_past_[static_cast<size_t>(table[4 * u + 2] / n_ctx_per_seq())] += table[4 * u + 1];
  }
}

void Context::evaluate_seqs(const int32_t* tokens, const int32_t* positions, size_t n,
                            const std::vector<int32_t>& table, const std::vector<int32_t>& out_rows,
                            float* logits_out) {
  const int64_t n_vocab = model_.hparams().n_vocab;
  token_buf_.assign(tokens, tokens + n);
  pos_buf_.assign(positions, positions + n);
  seq_table_buf_ = table;
  // A step without wanted logits still needs an output; it computes row 0's and drops it.
  out_ids_buf_ = out_rows.empty() ? std::vector<int32_t>{0} : out_rows;
  prepare_graph(GraphShape{n, false, false, out_ids_buf_.size(), true});
  step_in_.tokens->data = token_buf_.data();
  step_in_.positions->data = pos_buf_.data();
  step_in_.out_ids->data = out_ids_buf_.data();
  seq_table_in_->data = seq_table_buf_.data();
  sched_->run(graph_);
  Tensor* out = graph_out_;
  for (size_t r = 0; r < out_rows.size(); ++r)
    std::memcpy(logits_out + r * n_vocab, static_cast<const uint8_t*>(out->data) + r * out->nb[1],
                n_vocab * sizeof(float));
  n_evaluated_ += n;
}

const float* Context::logits() const {
  if (n_logit_rows_ == 0) throw Error("logits: nothing has been evaluated yet");
  return &logits_[(n_logit_rows_ - 1) * static_cast<size_t>(n_vocab())];
}

const float* Context::logits_at(size_t i) const {
  if (i >= n_logit_rows_ || (!logit_kept_.empty() && !logit_kept_[i]))
    throw Error("logits: row " + std::to_string(i) + " was not kept");
  return &logits_[i * static_cast<size_t>(n_vocab())];
}

}  // namespace xent
