// Phi-3 / Phi-3.5 / Phi-4(-mini): the llama graph with Q, K and V in one matrix
// (attn_qkv) and gate and up in one (ffn_up, gate first), NeoX RoPE, untied output, and
// LongRoPE for the long-context files: a divisor per frequency pair for short contexts
// (rope_factors_short) and one for long ones (rope_factors_long), chosen as the peer
// chooses them, by whether the context exceeds rope.scaling.original_context_length, with
// cos and sin scaled by rope.scaling.attn_factor. Every layer attends within
// attention.sliding_window when the file sets one (0: none).
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "models/decoder.h"
#include "models/registry.h"
#include "runtime/inference/kv-cache.h"

namespace xent {
namespace {

struct Phi3Layer {
  Tensor* attn_norm;  // [n_embd]
  Tensor* wqkv;       // [n_embd, q_dim + 2 * kv_dim]
  Tensor* wo;         // [q_dim, n_embd]
  Tensor* ffn_norm;   // [n_embd]
  Tensor* w_gate_up;  // [n_embd, 2 * n_ff]: gate rows, then up rows
  Tensor* w_down;     // [n_ff, n_embd]
};

class Phi3 final : public Architecture {
 public:
  Phi3(WeightLoader& w, HParams& hp) {
    const std::string& a = hp.arch;
    read_decoder_hparams(w, hp, 1e-5f);
    refuse_experts(w, a);
    // LongRoPE files have no rope.scaling.type (the factors tensors say it); a linear
    // factor would be applied on top, as the peer does.
    rope_ = read_rope_scaling(w, hp, "none,linear");
    n_ctx_orig_ = w.arch_int_or(a, "rope.scaling.original_context_length", hp.n_ctx_train);
    // The peer's defaults for files written before the key existed (Phi-3-mini/medium 4k
    // and 128k); anything else without it is refused, as the peer refuses it.
    int64_t window = 0;
    const bool has_window = w.file().find(a + ".attention.sliding_window") != nullptr;
    if (has_window) {
      window = w.arch_int(a, "attention.sliding_window");
    } else if ((hp.n_layer == 32 || hp.n_layer == 40) && hp.n_ctx_train == 4096) {
      window = 2047;
    } else if (hp.n_layer == 32 && hp.n_head_kv == 32 && hp.n_ctx_train == 131072) {
      window = 262144;
    } else if (hp.n_layer == 40 && hp.n_ctx_train == 131072) {
      window = 131072;
    } else {
      throw Error("model: " + a + ".attention.sliding_window is missing, and this shape has no known default");
    }
    if (window < 0 || window > INT32_MAX) throw Error("model: " + a + ".attention.sliding_window is out of range");
    hp.layer_window.assign(static_cast<size_t>(hp.n_layer), static_cast<int32_t>(window));

    const int64_t d = hp.n_embd, q_dim = hp.n_head * hp.head_dim, kv_dim = hp.n_head_kv * hp.head_dim;
    q_dim_ = q_dim;
    kv_dim_ = kv_dim;
    tok_embd_ = w.get("token_embd.weight", {d, hp.n_vocab});
    output_norm_ = w.get("output_norm.weight", {d});
    output_ = w.get("output.weight", {d, hp.n_vocab}, -1, false);
    if (!output_) output_ = tok_embd_;  // Phi-4-mini ties them
    // Only the first layer's factors are stored by converters; every layer shares them.
    long_ = w.get("rope_factors_long.weight", {hp.n_rot / 2}, -1, false);
    short_ = w.get("rope_factors_short.weight", {hp.n_rot / 2}, -1, false);
    if (!long_ != !short_)
      throw Error("model: " + a + " has only one of rope_factors_long.weight and rope_factors_short.weight");
    for (const Tensor* t : {long_, short_})
      if (t && t->type != DType::F32)
        throw Error("model: tensor '" + std::string(t->name) + "' is " + std::string(dtype_name(t->type)) + ", expected F32");
    layers_.resize(hp.n_layer);
    for (int64_t i = 0; i < hp.n_layer; ++i) {
      const std::string p = "blk." + std::to_string(i) + ".";
      const int l = static_cast<int>(i);
      Phi3Layer& L = layers_[i];
      L.attn_norm = w.get(p + "attn_norm.weight", {d}, l);
      L.wqkv = w.get(p + "attn_qkv.weight", {d, q_dim + 2 * kv_dim}, l);
      L.wo = w.get(p + "attn_output.weight", {q_dim, d}, l);
      L.ffn_norm = w.get(p + "ffn_norm.weight", {d}, l);
      L.w_gate_up = w.get(p + "ffn_up.weight", {d, 2 * hp.n_ff}, l);
      L.w_down = w.get(p + "ffn_down.weight", {hp.n_ff, d}, l);
    }
    hp_ = hp;
  }

  Tensor* build(Graph& g, const StepInputs& in) const override {
    const int64_t n_tok = in.n_tok, hd = hp_.head_dim, n_ff = hp_.n_ff;
    const float kq_scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const size_t f = sizeof(float);
    Graph::RopeExtra rope = rope_;
    if (long_) rope.freq_factors = in.kv->n_ctx() > n_ctx_orig_ ? long_ : short_;
    Tensor* x = g.get_rows(tok_embd_, in.tokens);
    for (int64_t il = 0; il < hp_.n_layer; ++il) {
      const Phi3Layer& L = layers_[il];
      g.set_current_layer(static_cast<int>(il));
      Tensor* h = g.rms_norm(x, L.attn_norm, hp_.norm_eps);
      Tensor* qkv = g.mul_mat(L.wqkv, h);  // [q_dim + 2 kv_dim, n_tok]
      Tensor* q = g.view(qkv, hd, hp_.n_head, n_tok, hd * f, qkv->nb[1], 0);
      Tensor* k = g.view(qkv, hd, hp_.n_head_kv, n_tok, hd * f, qkv->nb[1], static_cast<size_t>(q_dim_) * f);
      Tensor* v = g.view(qkv, hd, hp_.n_head_kv, n_tok, hd * f, qkv->nb[1],
                         static_cast<size_t>(q_dim_ + kv_dim_) * f);
      q = g.rope(q, in.positions, static_cast<int32_t>(hp_.n_rot), kRopeModeNeox, hp_.rope_freq_base,
                 hp_.rope_freq_scale, rope);
      k = g.rope(k, in.positions, static_cast<int32_t>(hp_.n_rot), kRopeModeNeox, hp_.rope_freq_base,
                 hp_.rope_freq_scale, rope);
      Tensor* attn = g.attention(q, k, v, in.kv->k(il), in.kv->v(il), in.n_past, kq_scale, in.mask,
                                 hp_.layer_window[static_cast<size_t>(il)]);
      x = g.add(x, g.mul_mat(L.wo, attn));
      h = g.rms_norm(x, L.ffn_norm, hp_.norm_eps);
      Tensor* gu = g.mul_mat(L.w_gate_up, h);  // [2 n_ff, n_tok]
      Tensor* gate = g.view(gu, n_ff, n_tok, 1, gu->nb[1], gu->nb[1] * static_cast<size_t>(n_tok), 0);
      Tensor* up = g.view(gu, n_ff, n_tok, 1, gu->nb[1], gu->nb[1] * static_cast<size_t>(n_tok),
                          static_cast<size_t>(n_ff) * f);
      x = g.add(x, g.mul_mat(L.w_down, g.swiglu(gate, up)));
    }
    g.set_current_layer(-1);
    x = output_rows(g, x, in);
    x = g.rms_norm(x, output_norm_, hp_.norm_eps);
    return g.mul_mat(output_, x);
  }

 private:
  HParams hp_;
  Graph::RopeExtra rope_;
  int64_t n_ctx_orig_ = 0, q_dim_ = 0, kv_dim_ = 0;
  Tensor* long_ = nullptr;
  Tensor* short_ = nullptr;
  Tensor* tok_embd_;
  Tensor* output_norm_;
  Tensor* output_;
  std::vector<Phi3Layer> layers_;
};

}  // namespace

std::unique_ptr<Architecture> load_phi3(WeightLoader& w, HParams& hp) { return std::make_unique<Phi3>(w, hp); }

}  // namespace xent
