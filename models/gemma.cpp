// Gemma 2 and Gemma 3 (text): the embedding scaled by sqrt(n_embd), RMSNorm before and after
// both attention and the feed-forward block, GELU-tanh gated FFN, NeoX RoPE, output tied to
// the token embedding. The file's norm weights already hold Gemma's (1 + w).
//   gemma2: attention scores soft-capped (attn_logit_softcapping), a sliding window on the
//           even layers, final logits soft-capped (final_logit_softcapping).
//   gemma3: each head's query and key RMS-normalised; five sliding-window layers to one
//           global layer; local layers rotate with base 10000 unscaled, global ones with the
//           file's rope.freq_base and rope scaling; soft-caps only where the file sets them.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "models/decoder.h"
#include "models/registry.h"
#include "runtime/inference/kv-cache.h"

namespace xent {
namespace {

struct GemmaLayer {
  Tensor* attn_norm;       // [n_embd]
  Tensor* wq;              // [n_embd, n_head * head_dim]
  Tensor* wk;              // [n_embd, n_head_kv * head_dim]
  Tensor* wv;
  Tensor* q_norm = nullptr;  // gemma3, [head_dim]
  Tensor* k_norm = nullptr;
  Tensor* wo;              // [n_head * head_dim, n_embd]
  Tensor* attn_post_norm;  // [n_embd]
  Tensor* ffn_norm;
  Tensor* w_gate;          // [n_embd, n_ff]
  Tensor* w_up;
  Tensor* w_down;          // [n_ff, n_embd]
  Tensor* ffn_post_norm;
};

class Gemma final : public Architecture {
 public:
  Gemma(WeightLoader& w, HParams& hp, int version) : version_(version) {
    const std::string& a = hp.arch;
    read_decoder_hparams(w, hp, 1e-6f);
    if (version_ == 2) {
      // Gemma 2 files carry no rope scaling; the defaults are Gemma 2's, as other GGUF
      // readers assume them when a key is absent.
      hp.rope_freq_base = w.arch_float_or(a, "rope.freq_base", 10000.0f);
      window_ = static_cast<int32_t>(w.arch_int_or(a, "attention.sliding_window", 4096));
      attn_softcap_ = w.arch_float_or(a, "attn_logit_softcapping", 50.0f);
      final_softcap_ = w.arch_float_or(a, "final_logit_softcapping", 30.0f);
      if (!(attn_softcap_ > 0) || !(final_softcap_ > 0))
        throw Error("model: " + a + ": soft-capping values must be positive");
    } else {
      // Global layers take the file's rope (Gemma 3 4B+ scales it linearly by 8); local
      // layers always rotate with base 10000, unscaled.
      rope_ = read_rope_scaling(w, hp, "none,linear");
      window_ = static_cast<int32_t>(w.arch_int_or(a, "attention.sliding_window", 0));
      attn_softcap_ = w.arch_float_or(a, "attn_logit_softcapping", 0.0f);
      final_softcap_ = w.arch_float_or(a, "final_logit_softcapping", 0.0f);
      if (attn_softcap_ < 0 || final_softcap_ < 0)
        throw Error("model: " + a + ": soft-capping values must not be negative");
    }
    if (window_ < 0) throw Error("model: " + a + ".attention.sliding_window is negative");
    // Queries are scaled by query_pre_attn_scalar^-1/2: head_dim, except n_embd / n_head for
    // the 27B models (46 layers in Gemma 2, 62 in Gemma 3), which is how readers of files
    // without the key tell them apart.
    const bool big = hp.n_layer == (version_ == 2 ? 46 : 62);
    const float fallback = static_cast<float>(big ? hp.n_embd / hp.n_head : hp.head_dim);
    const float pre_attn = w.arch_float_or(a, "attention.query_pre_attn_scalar", fallback);
    if (!(pre_attn > 0)) throw Error("model: " + a + ".attention.query_pre_attn_scalar must be positive");
    kq_scale_ = 1.0f / std::sqrt(pre_attn);

    // Gemma 2: even layers local. Gemma 3: layer i is local unless i % 6 == 5.
    for (int64_t i = 0; i < hp.n_layer; ++i) {
      const bool local = version_ == 2 ? i % 2 == 0 : i % 6 < 5;
      hp.layer_window.push_back(local ? window_ : 0);
    }
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
      GemmaLayer& L = layers_[i];
      L.attn_norm = w.get(p + "attn_norm.weight", {d}, l);
      L.wq = w.get(p + "attn_q.weight", {d, q_dim}, l);
      L.wk = w.get(p + "attn_k.weight", {d, kv_dim}, l);
      L.wv = w.get(p + "attn_v.weight", {d, kv_dim}, l);
      if (version_ == 3) {
        L.q_norm = w.get(p + "attn_q_norm.weight", {hp.head_dim}, l);
        L.k_norm = w.get(p + "attn_k_norm.weight", {hp.head_dim}, l);
      }
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
    const int32_t n_rot = static_cast<int32_t>(hp_.n_rot);
    Tensor* x = g.scale(g.get_rows(tok_embd_, in.tokens), std::sqrt(static_cast<float>(hp_.n_embd)));
    for (int64_t il = 0; il < hp_.n_layer; ++il) {
      const GemmaLayer& L = layers_[il];
      g.set_current_layer(static_cast<int>(il));
      const int32_t window = hp_.layer_window[static_cast<size_t>(il)];
      Tensor* h = g.rms_norm(x, L.attn_norm, hp_.norm_eps);
      Tensor* q = g.reshape(g.mul_mat(L.wq, h), hd, hp_.n_head, n_tok);
      Tensor* k = g.reshape(g.mul_mat(L.wk, h), hd, hp_.n_head_kv, n_tok);
      Tensor* v = g.reshape(g.mul_mat(L.wv, h), hd, hp_.n_head_kv, n_tok);
      if (L.q_norm) {
        q = g.rms_norm(q, L.q_norm, hp_.norm_eps);
        k = g.rms_norm(k, L.k_norm, hp_.norm_eps);
      }
      // Gemma 3's local layers: base 10000, no scaling, whatever the global layers use.
      const bool local3 = version_ == 3 && hp_.layer_window[static_cast<size_t>(il)] > 0;
      const Graph::RopeExtra& rope = local3 ? Graph::RopeExtra{} : rope_;
      const float base = local3 ? 10000.0f : hp_.rope_freq_base, scale = local3 ? 1.0f : hp_.rope_freq_scale;
      q = g.rope(q, in.positions, n_rot, kRopeModeNeox, base, scale, rope);
      k = g.rope(k, in.positions, n_rot, kRopeModeNeox, base, scale, rope);
      Tensor* attn = g.attention(q, k, v, in.kv->k(il), in.kv->v(il), in.n_past, kq_scale_, in.mask, window,
                                 attn_softcap_);
      x = g.add(x, g.rms_norm(g.mul_mat(L.wo, attn), L.attn_post_norm, hp_.norm_eps));
      h = g.rms_norm(x, L.ffn_norm, hp_.norm_eps);
      Tensor* ff = g.mul(g.gelu(g.mul_mat(L.w_gate, h)), g.mul_mat(L.w_up, h));
      x = g.add(x, g.rms_norm(g.mul_mat(L.w_down, ff), L.ffn_post_norm, hp_.norm_eps));
    }
    g.set_current_layer(-1);
    x = output_rows(g, x, in);
    x = g.rms_norm(x, output_norm_, hp_.norm_eps);
    Tensor* logits = g.mul_mat(output_, x);
    return final_softcap_ > 0 ? g.soft_cap(logits, final_softcap_) : logits;
  }

 private:
  int version_;
  Graph::RopeExtra rope_;
  HParams hp_;
  int32_t window_ = 0;
  float attn_softcap_ = 0, final_softcap_ = 0, kq_scale_ = 1;
  Tensor* tok_embd_;
  Tensor* output_norm_;
  Tensor* output_;
  std::vector<GemmaLayer> layers_;
};

}  // namespace

std::unique_ptr<Architecture> load_gemma2(WeightLoader& w, HParams& hp) { return std::make_unique<Gemma>(w, hp, 2); }
std::unique_ptr<Architecture> load_gemma3(WeightLoader& w, HParams& hp) { return std::make_unique<Gemma>(w, hp, 3); }

}  // namespace xent
