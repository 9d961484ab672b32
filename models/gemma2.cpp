// Gemma 2: the embedding scaled by sqrt(n_embd), RMSNorm before and after both attention and
// the feed-forward block, GELU-tanh gated FFN, NeoX RoPE, attention scores soft-capped
// (attn_logit_softcapping) and a sliding window on the even layers, final logits soft-capped
// (final_logit_softcapping), output tied to the token embedding. The file's norm weights
// already hold Gemma's (1 + w).
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "models/registry.h"
#include "runtime/inference/kv-cache.h"

namespace xent {
namespace {

struct Gemma2Layer {
  Tensor* attn_norm;       // [n_embd]
  Tensor* wq;              // [n_embd, n_head * head_dim]
  Tensor* wk;              // [n_embd, n_head_kv * head_dim]
  Tensor* wv;
  Tensor* wo;              // [n_head * head_dim, n_embd]
  Tensor* attn_post_norm;  // [n_embd]
  Tensor* ffn_norm;
  Tensor* w_gate;          // [n_embd, n_ff]
  Tensor* w_up;
  Tensor* w_down;          // [n_ff, n_embd]
  Tensor* ffn_post_norm;
};

class Gemma2 final : public Architecture {
 public:
  Gemma2(WeightLoader& w, HParams& hp) {
    const std::string& a = hp.arch;
    hp.n_ctx_train = w.arch_int(a, "context_length");
    hp.n_embd = w.arch_int(a, "embedding_length");
    hp.n_layer = w.arch_int(a, "block_count");
    hp.n_ff = w.arch_int(a, "feed_forward_length");
    hp.n_head = w.arch_int(a, "attention.head_count");
    hp.n_head_kv = w.arch_int_or(a, "attention.head_count_kv", hp.n_head);
    if (hp.n_head % hp.n_head_kv != 0)
      throw Error("model: " + a + ": head counts " + std::to_string(hp.n_head) + "/" + std::to_string(hp.n_head_kv) +
                  " are inconsistent");
    hp.head_dim = w.arch_int_or(a, "attention.key_length", hp.n_embd / hp.n_head);
    if (const int64_t v = w.arch_int_or(a, "attention.value_length", hp.head_dim); v != hp.head_dim)
      throw Error("model: " + a + ".attention.value_length " + std::to_string(v) + " differs from key_length " +
                  std::to_string(hp.head_dim) + ", which xent does not support");
    hp.n_rot = w.arch_int_or(a, "rope.dimension_count", hp.head_dim);
    if (hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0)
      throw Error("model: " + a + ".rope.dimension_count " + std::to_string(hp.n_rot) + " does not fit head size " +
                  std::to_string(hp.head_dim));
    hp.norm_eps = w.arch_float_or(a, "attention.layer_norm_rms_epsilon", 1e-6f);
    hp.rope_freq_base = w.arch_float_or(a, "rope.freq_base", 10000.0f);
    w.mark_key(a + ".vocab_size");
    // The defaults are Gemma 2's, as other GGUF readers assume them when a key is absent.
    window_ = static_cast<int32_t>(w.arch_int_or(a, "attention.sliding_window", 4096));
    attn_softcap_ = w.arch_float_or(a, "attn_logit_softcapping", 50.0f);
    final_softcap_ = w.arch_float_or(a, "final_logit_softcapping", 30.0f);
    if (!(attn_softcap_ > 0) || !(final_softcap_ > 0))
      throw Error("model: " + a + ": soft-capping values must be positive");
    // Queries are scaled by query_pre_attn_scalar^-1/2: head_dim for 2B and 9B, n_embd / n_head
    // for 27B (46 layers), which is how readers of files without the key tell them apart.
    const float fallback = static_cast<float>(hp.n_layer == 46 ? hp.n_embd / hp.n_head : hp.head_dim);
    kq_scale_ = 1.0f / std::sqrt(w.arch_float_or(a, "attention.query_pre_attn_scalar", fallback));

    // Even layers attend within the sliding window, odd ones globally.
    for (int64_t i = 0; i < hp.n_layer; ++i) hp.layer_window.push_back(i % 2 == 0 ? window_ : 0);
    hp.attn_softcap = attn_softcap_;

    const int64_t d = hp.n_embd, q_dim = hp.n_head * hp.head_dim, kv_dim = hp.n_head_kv * hp.head_dim;
    tok_embd_ = w.get("token_embd.weight", {d, hp.n_vocab});
    output_norm_ = w.get("output_norm.weight", {d});
    output_ = w.get("output.weight", {d, hp.n_vocab}, -1, false);
    if (!output_) output_ = tok_embd_;
    layers_.resize(hp.n_layer);
    for (int64_t i = 0; i < hp.n_layer; ++i) {
      const std::string p = "blk." + std::to_string(i) + ".";
      const int l = static_cast<int>(i);
      Gemma2Layer& L = layers_[i];
      L.attn_norm = w.get(p + "attn_norm.weight", {d}, l);
      L.wq = w.get(p + "attn_q.weight", {d, q_dim}, l);
      L.wk = w.get(p + "attn_k.weight", {d, kv_dim}, l);
      L.wv = w.get(p + "attn_v.weight", {d, kv_dim}, l);
      L.wo = w.get(p + "attn_output.weight", {q_dim, d}, l);
      L.attn_post_norm = w.get(p + "post_attention_norm.weight", {d}, l);
      L.ffn_norm = w.get(p + "ffn_norm.weight", {d}, l);
      L.w_gate = w.get(p + "ffn_gate.weight", {d, hp.n_ff}, l);
      L.w_up = w.get(p + "ffn_up.weight", {d, hp.n_ff}, l);
      L.w_down = w.get(p + "ffn_down.weight", {hp.n_ff, d}, l);
      L.ffn_post_norm = w.get(p + "post_ffw_norm.weight", {d}, l);
    }
    hp_ = hp;
  }

  Tensor* build(Graph& g, const StepInputs& in) const override {
    const int64_t n_tok = in.n_tok, hd = hp_.head_dim;
    Tensor* x = g.scale(g.get_rows(tok_embd_, in.tokens), std::sqrt(static_cast<float>(hp_.n_embd)));
    for (int64_t il = 0; il < hp_.n_layer; ++il) {
      const Gemma2Layer& L = layers_[il];
      g.set_current_layer(static_cast<int>(il));
      Tensor* h = g.rms_norm(x, L.attn_norm, hp_.norm_eps);
      Tensor* q = g.reshape(g.mul_mat(L.wq, h), hd, hp_.n_head, n_tok);
      Tensor* k = g.reshape(g.mul_mat(L.wk, h), hd, hp_.n_head_kv, n_tok);
      Tensor* v = g.reshape(g.mul_mat(L.wv, h), hd, hp_.n_head_kv, n_tok);
      q = g.rope(q, in.positions, static_cast<int32_t>(hp_.n_rot), kRopeModeNeox, hp_.rope_freq_base, 1.0f);
      k = g.rope(k, in.positions, static_cast<int32_t>(hp_.n_rot), kRopeModeNeox, hp_.rope_freq_base, 1.0f);
      const int32_t window = hp_.layer_window[static_cast<size_t>(il)];
      Tensor* attn = g.attention(q, k, v, in.kv->k(il), in.kv->v(il), in.n_past, kq_scale_, in.mask, window,
                                 attn_softcap_);
      x = g.add(x, g.rms_norm(g.mul_mat(L.wo, attn), L.attn_post_norm, hp_.norm_eps));
      h = g.rms_norm(x, L.ffn_norm, hp_.norm_eps);
      Tensor* ff = g.mul(g.gelu(g.mul_mat(L.w_gate, h)), g.mul_mat(L.w_up, h));
      x = g.add(x, g.rms_norm(g.mul_mat(L.w_down, ff), L.ffn_post_norm, hp_.norm_eps));
    }
    g.set_current_layer(-1);
    if (!in.all_logits) x = g.rows(x, n_tok - 1, 1);
    x = g.rms_norm(x, output_norm_, hp_.norm_eps);
    return g.soft_cap(g.mul_mat(output_, x), final_softcap_);
  }

 private:
  HParams hp_;
  int32_t window_ = 0;
  float attn_softcap_ = 0, final_softcap_ = 0, kq_scale_ = 1;
  Tensor* tok_embd_;
  Tensor* output_norm_;
  Tensor* output_;
  std::vector<Gemma2Layer> layers_;
};

}  // namespace

std::unique_ptr<Architecture> load_gemma2(WeightLoader& w, HParams& hp) { return std::make_unique<Gemma2>(w, hp); }

}  // namespace xent
