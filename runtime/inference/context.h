// One inference session over a Model: its KV cache, backends, scheduler and logits.
// Not thread-safe: use one Context per thread (they can share the Model).
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "runtime/graph/graph.h"
#include "runtime/inference/kv-cache.h"
#include "runtime/inference/model.h"
#include "runtime/graph/scheduler.h"

namespace xent {
namespace cpu {
struct PackedWeights;
}
class LoraAdapter;
// An adapter and the scale it is applied with (LoraAdapter::scale_for).
using LoraBinding = std::pair<std::shared_ptr<const LoraAdapter>, float>;

// "vulkan,cpu" -> {"vulkan", "cpu"}: a --backend value split at commas, spaces dropped;
// {"cpu"} when nothing is left.
std::vector<std::string> parse_backend_list(const std::string& list);

struct ContextParams {
  int64_t n_ctx = 0;       // 0: the model's training context, at most 4096
  int32_t n_ubatch = 512;  // most tokens evaluated in one graph
  int n_threads = 0;       // 0: all hardware threads
  // Backend names in preference order ("vulkan", "cuda", "cpu"); the CPU is always added
  // last as the fallback. Unavailable backends are skipped with a message.
  std::vector<std::string> backends = {"cpu"};
  int n_gpu_layers = -1;   // layers on the first non-CPU backend; -1: all (+ the output)
  bool cpu_reference_kernels = false;  // tests: scalar dot products instead of SIMD
  // Keep the last step's graph and plan and reuse them while the step has the same shape
  // (token count, mask or not, which logits): a decode step then only patches n_past and
  // its inputs. Off: every step is built and planned afresh (tests compare the two).
  bool reuse_graph = true;
  // Sequences the cache holds at once (decode_batch). Each owns n_ctx / n_seq_max cells,
  // one contiguous region of the cache; as in llama-server, --ctx-size is the total.
  int32_t n_seq_max = 1;
  // Element types of the cached keys and values: F16, or Q8_0 (half the bytes; head_dim a
  // multiple of 32). Only the CPU reads a q8_0 cache: such layers keep their cache and
  // attention on the CPU, the matmuls still go where -ngl says.
  DType type_k = DType::F16;
  DType type_v = DType::F16;
};

// Tokens of several sequences for one decode_batch, like llama.cpp's llama_batch. Each
// sequence's tokens continue it: their positions are the sequence's next ones, in order.
struct Batch {
  std::vector<int32_t> tokens;
  std::vector<int32_t> seq_ids;
  std::vector<int32_t> positions;  // empty: each sequence's next positions
  std::vector<bool> logits;        // empty: none; logits_at(i) for the tokens marked
  void add(int32_t token, int32_t seq, int32_t pos, bool want_logits) {
    tokens.push_back(token);
    seq_ids.push_back(seq);
    positions.push_back(pos);
    logits.push_back(want_logits);
  }
  void clear() { tokens.clear(), seq_ids.clear(), positions.clear(), logits.clear(); }
  size_t size() const { return tokens.size(); }
};

class Context {
 public:
  // Throws xent::Error: n_ctx larger than a learned-position model allows, or too large
  // for memory. `notes` receives one line per backend that was asked for but skipped.
  Context(const Model& model, const ContextParams& params, std::vector<std::string>* notes = nullptr);
  ~Context();

  // Evaluates tokens at positions n_past() .. n_past() + n - 1 and appends them to the
  // cache. Throws xent::Error on an invalid id or when the context would overflow (the
  // cache is then unchanged). With all_logits, logits_at(i) gives token i's logits.
  void decode(const int32_t* tokens, size_t n, bool all_logits = false);
  // Evaluates a token tree in one step: token i goes to cache row n_past() + i with
  // RoPE/position positions[i]; mask[t * n + u] is 0 when token t may see batch token u
  // (and -INFINITY otherwise); every token sees the whole cached prefix. Logits of every
  // token are kept. n must be at most the ubatch size. Callers usually truncate() the
  // tree away afterwards.
  void decode_tree(const int32_t* tokens, const int32_t* positions, const float* mask, size_t n);
  // Evaluates tokens of several sequences together: the matmuls run once over all of them,
  // each sequence attends only to its own cells. Split into steps of at most n_ubatch
  // tokens. Afterwards logits_at(i) is batch token i's logits for each token marked.
  // Throws xent::Error (the cache unchanged) on a bad sequence id or token, positions that
  // do not continue their sequence, or a sequence that would outgrow its cells.
  void decode_batch(const Batch& batch);
  // Sequence bookkeeping, as llama.cpp's llama_memory_seq_*: a sequence's length, removal
  // of its positions >= p (p 0: the whole sequence), and a copy of src's cells into dst (a
  // shared prefix evaluated once, forked).
  int32_t seq_n_past(int32_t seq) const;
  void seq_truncate(int32_t seq, int32_t p);
  void seq_copy(int32_t src, int32_t dst);
  int32_t n_seq_max() const { return params_.n_seq_max; }
  int64_t n_ctx_per_seq() const { return n_ctx_ / params_.n_seq_max; }

  const float* logits() const;  // the last evaluated token's logits [n_vocab]
  const float* logits_at(size_t i) const;
  size_t n_logits() const { return n_logit_rows_; }

  int32_t n_past() const { return seq_n_past_[0]; }  // sequence 0's
  // Forgets positions >= n (keeps the first n tokens of the cache).
  void truncate(int32_t n);
  // After loading saved cache rows [0, n): those positions are valid again.
  void restore_n_past(int32_t n);
  int64_t n_ctx() const { return n_ctx_; }
  int64_t n_vocab() const { return model_.hparams().n_vocab; }
  uint64_t n_tokens_evaluated() const { return n_evaluated_; }  // since creation
  const Model& model() const { return model_; }
  KvCache& kv_cache() { return *kv_; }
  const KvCache& kv_cache() const { return *kv_; }
  const std::vector<std::unique_ptr<Backend>>& backends() const { return backends_; }
  const Scheduler& scheduler() const { return *sched_; }
  void set_n_threads(int n);
  // LoRA adapters applied from the next evaluation on, in this order, replacing the ones set
  // before ({}: none). The cache is left as it is: rows already evaluated keep what the
  // adapters of their time computed, so callers usually truncate(0) too. Throws xent::Error
  // for an adapter loaded for another model. Scale 0 keeps the adapter's nodes (adding zeros).
  void set_adapters(std::vector<LoraBinding> adapters);
  const std::vector<LoraBinding>& adapters() const { return adapters_; }
  // Bytes of weights the CPU backend reads from its repacked copy instead of the file.
  size_t repacked_bytes() const;

 private:
  const Model& model_;
  ContextParams params_;
  int64_t n_ctx_ = 0;
  std::vector<std::unique_ptr<Backend>> backends_;
  std::unique_ptr<KvCache> kv_;
  std::unique_ptr<Scheduler> sched_;
  // Weights uploaded once to a GPU backend: device copies and their buffers.
  std::deque<Tensor> resident_weights_;
  std::vector<std::unique_ptr<Buffer>> weight_buffers_;
  std::shared_ptr<const cpu::PackedWeights> packed_;  // the model's, shared
  std::vector<LoraBinding> adapters_;
  Graph::WeightDeltas deltas_;  // from adapters_, what graph_ applies
  Graph graph_;
  // What graph_ was built for; reused while a step has the same shape.
  struct GraphShape {
    size_t n_tok = 0;
    bool masked = false;
    bool all_logits = false;
    size_t n_out = 0;     // out_ids rows (multi-sequence steps), 0 otherwise
    bool multi = false;   // a sequence table
    bool operator==(const GraphShape&) const = default;
  };
  bool graph_built_ = false;
  GraphShape graph_shape_;
  StepInputs step_in_;
  Tensor* graph_out_ = nullptr;
  std::vector<Tensor*> attention_nodes_;  // their n_past is patched on reuse
  // One graph evaluation of n tokens at cache rows [n_past_, n_past_ + n).
  void evaluate(const int32_t* tokens, const int32_t* positions, const float* mask, size_t n,
                bool keep_all_logits, float* logits_out);
  // One multi-sequence step: tokens grouped by sequence (table rows as Op::Attention's
  // src6), out_rows the batch rows whose logits go to logits_out, in order.
  void evaluate_seqs(const int32_t* tokens, const int32_t* positions, size_t n, const std::vector<int32_t>& table,
                     const std::vector<int32_t>& out_rows, float* logits_out);
  // Builds graph_ for a step of this shape unless the last graph fits it (then false).
  bool prepare_graph(const GraphShape& shape);
  void check_tokens(const int32_t* tokens, size_t n) const;
  void check_tokens_in_vocab(const int32_t* tokens, size_t n) const;

  std::vector<int32_t> token_buf_, pos_buf_, positions_, seq_table_buf_, out_ids_buf_;
  std::vector<float> mask_buf_;
  std::vector<float> logits_;
  std::vector<bool> logit_kept_;  // decode_batch: which rows hold logits (empty: all)
  Tensor* seq_table_in_ = nullptr;
  size_t n_logit_rows_ = 0;
  std::vector<int32_t> seq_n_past_;  // per sequence; [0] is what decode() continues
  uint64_t n_evaluated_ = 0;
};

}  // namespace xent
