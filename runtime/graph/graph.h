// The compute graph of one evaluation step: model code calls these builders, each
// checks shapes and appends a node, so `nodes()` is already in execution order.
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <vector>

#include "core/tensor.h"

namespace xent {

class Graph {
 public:
  // Leaves. `input` tensors get their bytes from the caller before each evaluation.
  Tensor* input(DType type, int64_t ne0, int64_t ne1 = 1, const char* name = "input");
  // Wraps a tensor owned elsewhere (weights, caches) so ops can use it.
  Tensor* external(Tensor* t) { return t; }

  // Both add the weight deltas set for `table` / `w` (set_weight_deltas).
  Tensor* get_rows(Tensor* table, Tensor* ids);
  Tensor* mul_mat(Tensor* w, Tensor* x);
  Tensor* add(Tensor* a, Tensor* b);
  Tensor* mul(Tensor* a, Tensor* b);
  Tensor* scale(Tensor* a, float s);
  Tensor* rms_norm(Tensor* x, Tensor* weight, float eps);
  Tensor* layer_norm(Tensor* x, Tensor* weight, Tensor* bias, float eps);
  // See Op::Rope in core/tensor.h for the formulas.
  struct RopeExtra {
    Tensor* freq_factors = nullptr;  // [n_dims / 2] f32 (Llama 3 rope_freqs, LongRoPE)
    float ext_factor = 0.0f;         // 1: YaRN
    float attn_factor = 1.0f;
    float beta_fast = 32.0f, beta_slow = 1.0f;
    int32_t n_ctx_orig = 0;          // YaRN: the training context the scaling extends
  };
  Tensor* rope(Tensor* x, Tensor* positions, int32_t n_dims, int32_t mode, float freq_base,
               float freq_scale, const RopeExtra& extra);
  Tensor* rope(Tensor* x, Tensor* positions, int32_t n_dims, int32_t mode, float freq_base,
               float freq_scale) {
    return rope(x, positions, n_dims, mode, freq_base, freq_scale, RopeExtra{});
  }
  // mask: optional [n_tok, n_tok] f32 (see Op::Attention); null means causal.
  // window > 0: sliding-window attention; softcap > 0: scores soft-capped (Op::Attention).
  Tensor* attention(Tensor* q, Tensor* k, Tensor* v, Tensor* k_cache, Tensor* v_cache,
                    int32_t n_past, float scale, Tensor* mask = nullptr, int32_t window = 0,
                    float softcap = 0.0f);
  // Steps with several sequences: every attention node built after this call takes the
  // sequence table (Op::Attention's src6, [4, n_seq] i32) and ignores n_past. Null: one
  // sequence. clear() resets it.
  void set_sequence_table(Tensor* seqs) { seqs_ = seqs; }
  Tensor* silu(Tensor* x);
  Tensor* gelu(Tensor* x);
  Tensor* soft_cap(Tensor* x, float cap);  // cap * tanh(x / cap)
  Tensor* swiglu(Tensor* gate, Tensor* up);

  // Views share their source's bytes. reshape needs a contiguous source.
  Tensor* reshape(Tensor* x, int64_t ne0, int64_t ne1, int64_t ne2 = 1);
  Tensor* view(Tensor* x, int64_t ne0, int64_t ne1, int64_t ne2, size_t nb1, size_t nb2,
               size_t offset_bytes);
  // The columns [first, first + n) of every row of a 2-D tensor, e.g. one token's logits.
  Tensor* rows(Tensor* x, int64_t first, int64_t n);

  // Low-rank weight updates (LoRA adapters), applied where the model code uses a weight, so
  // every architecture gets them from its ordinary mul_mat/get_rows calls:
  //   mul_mat(w, x)      -> w·x + scale · b·(a·x)            a [n_in, r], b [r, n_out]
  //   get_rows(w, ids)   -> rows + scale · b·get_rows(a, ids)  (embedding: a [r, n_rows], b [r, n_embd])
  // once per delta, in order. The map belongs to the caller and must outlive the graphs built
  // with it; clear() keeps it. Null or empty: the plain graph. The delta nodes of a mul_mat
  // join the node list when the next node that is not a mul_mat of the same x is built (or
  // at set_output): so q, k and v stay adjacent for the CPU's grouped matmul, and their
  // a·x products form a second group.
  struct WeightDelta {
    Tensor* a = nullptr;
    Tensor* b = nullptr;
    float scale = 0.0f;
    bool embedding = false;  // applies to get_rows, not mul_mat
  };
  using WeightDeltas = std::map<const Tensor*, std::vector<WeightDelta>>;
  void set_weight_deltas(const WeightDeltas* deltas) { deltas_ = deltas; }

  void set_current_layer(int layer) { layer_ = layer; }
  void set_output(Tensor* t);
  Tensor* output() const { return output_; }
  const std::vector<Tensor*>& nodes() const { return nodes_; }
  const std::vector<Tensor*>& inputs() const { return inputs_; }
  void clear();
  // Changes (to a value no other graph has had) whenever a node is added or the graph is
  // cleared, so a scheduler can tell whether the graph it planned is still the same one.
  // Setting node parameters or input bytes does not change it.
  uint64_t version() const { return version_; }

 private:
  Tensor* new_node(Op op, DType type, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3, bool listed = true);
  Tensor* plain_get_rows(Tensor* table, Tensor* ids);
  Tensor* plain_mul_mat(Tensor* w, Tensor* x);
  const std::vector<WeightDelta>* deltas_of(const Tensor* w) const;
  const WeightDeltas* deltas_ = nullptr;
  // Delta nodes made but not yet listed: the a·x products, then the rest in order.
  std::vector<Tensor*> pending_ax_, pending_rest_;
  void flush_pending();
  std::deque<Tensor> pool_;  // stable addresses
  std::vector<Tensor*> nodes_;
  std::vector<Tensor*> inputs_;
  Tensor* output_ = nullptr;
  int layer_ = -1;
  Tensor* seqs_ = nullptr;
  uint64_t version_ = 0;
};

}  // namespace xent
