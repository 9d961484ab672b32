// Llama-family decoder (Llama 2/3, TinyLlama, SmolLM, Mistral): RMSNorm, RoPE, GQA, SwiGLU.
// Qwen2 adds Q/K/V biases and NeoX-style rotary embedding; Qwen3 drops the biases and
// RMS-normalises each head's query and key before RoPE (LlamaVariant).
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "models/decoder.h"
#include "models/registry.h"
#include "runtime/inference/kv-cache.h"

namespace xent {
namespace {

struct LlamaLayer {
  Tensor* attn_norm;  // [n_embd] f32
  Tensor* wq;         // [n_embd, n_head * head_dim]
  Tensor* wk;         // [n_embd, n_head_kv * head_dim]
  Tensor* wv;         // [n_embd, n_head_kv * head_dim]
  Tensor* bq = nullptr;  // qwen2 biases, [n_head * head_dim] / [n_head_kv * head_dim]
  Tensor* bk = nullptr;
  Tensor* bv = nullptr;
  Tensor* q_norm = nullptr;  // qwen3 per-head RMSNorm weights, [head_dim]
  Tensor* k_norm = nullptr;
  Tensor* wo;         // [n_head * head_dim, n_embd]
  Tensor* ffn_norm;   // [n_embd]
  Tensor* w_gate;     // [n_embd, n_ff]
  Tensor* w_up;       // [n_embd, n_ff]
  Tensor* w_down;     // [n_ff, n_embd]
};

class Llama final : public Architecture {
 public:
  Llama(WeightLoader& w, HParams& hp, LlamaVariant v) : v_(v) {
    const std::string& a = hp.arch;
    read_decoder_hparams(w, hp, 1e-5f);
    refuse_experts(w, a);
    rope_ = read_rope_scaling(w, hp);
    const int64_t d = hp.n_embd, q_dim = hp.n_head * hp.head_dim, kv_dim = hp.n_head_kv * hp.head_dim;
    tok_embd_ = w.get("token_embd.weight", {d, hp.n_vocab});
    output_norm_ = w.get("output_norm.weight", {d});
    // Tied embeddings: models without output.weight reuse the token embedding.
    output_ = w.get("output.weight", {d, hp.n_vocab}, -1, false);
    if (!output_) output_ = tok_embd_;
    // Llama 3.1+ rope scaling: a divisor per frequency pair, shared by every layer.
    rope_.freq_factors = w.get("rope_freqs.weight", {hp.n_rot / 2}, -1, false);
    if (rope_.freq_factors && rope_.freq_factors->type != DType::F32)
      throw Error("model: tensor 'rope_freqs.weight' is " + std::string(dtype_name(rope_.freq_factors->type)) +
                  ", expected F32");
    layers_.resize(hp.n_layer);
    for (int64_t i = 0; i < hp.n_layer; ++i) {
      const std::string p = "blk." + std::to_string(i) + ".";
      const int l = static_cast<int>(i);
      LlamaLayer& L = layers_[i];
      L.attn_norm = w.get(p + "attn_norm.weight", {d}, l);
      L.wq = w.get(p + "attn_q.weight", {d, q_dim}, l);
      L.wk = w.get(p + "attn_k.weight", {d, kv_dim}, l);
      L.wv = w.get(p + "attn_v.weight", {d, kv_dim}, l);
      L.bq = w.get(p + "attn_q.bias", {q_dim}, l, v.qkv_bias);
      L.bk = w.get(p + "attn_k.bias", {kv_dim}, l, v.qkv_bias);
      L.bv = w.get(p + "attn_v.bias", {kv_dim}, l, v.qkv_bias);
      if (v.qk_norm) {
        L.q_norm = w.get(p + "attn_q_norm.weight", {hp.head_dim}, l);
        L.k_norm = w.get(p + "attn_k_norm.weight", {hp.head_dim}, l);
      }
      L.wo = w.get(p + "attn_output.weight", {q_dim, d}, l);
      L.ffn_norm = w.get(p + "ffn_norm.weight", {d}, l);
      L.w_gate = w.get(p + "ffn_gate.weight", {d, hp.n_ff}, l);
      L.w_up = w.get(p + "ffn_up.weight", {d, hp.n_ff}, l);
      L.w_down = w.get(p + "ffn_down.weight", {hp.n_ff, d}, l);
    }
    hp_ = hp;
  }

  Tensor* build(Graph& g, const StepInputs& in) const override {
    const int64_t n_tok = in.n_tok, hd = hp_.head_dim;
    const float kq_scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const int32_t rope_mode = v_.neox_rope ? kRopeModeNeox : kRopeModeNormal;
    Tensor* x = g.get_rows(tok_embd_, in.tokens);  // [n_embd, n_tok]
    for (int64_t il = 0; il < hp_.n_layer; ++il) {
      const LlamaLayer& L = layers_[il];
      g.set_current_layer(static_cast<int>(il));
      Tensor* h = g.rms_norm(x, L.attn_norm, hp_.norm_eps);
      Tensor* q = g.mul_mat(L.wq, h);
      Tensor* k = g.mul_mat(L.wk, h);
      Tensor* v = g.mul_mat(L.wv, h);
      if (L.bq) q = g.add(q, L.bq);
      if (L.bk) k = g.add(k, L.bk);
      if (L.bv) v = g.add(v, L.bv);
      q = g.reshape(q, hd, hp_.n_head, n_tok);
      k = g.reshape(k, hd, hp_.n_head_kv, n_tok);
      v = g.reshape(v, hd, hp_.n_head_kv, n_tok);
      if (L.q_norm) {  // Qwen3: every head's query and key RMS-normalised before RoPE
        q = g.rms_norm(q, L.q_norm, hp_.norm_eps);
        k = g.rms_norm(k, L.k_norm, hp_.norm_eps);
      }
      q = g.rope(q, in.positions, static_cast<int32_t>(hp_.n_rot), rope_mode, hp_.rope_freq_base,
                 hp_.rope_freq_scale, rope_);
      k = g.rope(k, in.positions, static_cast<int32_t>(hp_.n_rot), rope_mode, hp_.rope_freq_base,
                 hp_.rope_freq_scale, rope_);
      Tensor* attn = g.attention(q, k, v, in.kv->k(il), in.kv->v(il), in.n_past, kq_scale, in.mask);
      x = g.add(x, g.mul_mat(L.wo, attn));
      h = g.rms_norm(x, L.ffn_norm, hp_.norm_eps);
      Tensor* ff = g.swiglu(g.mul_mat(L.w_gate, h), g.mul_mat(L.w_up, h));
      x = g.add(x, g.mul_mat(L.w_down, ff));
    }
    g.set_current_layer(-1);
    x = output_rows(g, x, in);
    x = g.rms_norm(x, output_norm_, hp_.norm_eps);
    return g.mul_mat(output_, x);
  }

 private:
  HParams hp_;
  Graph::RopeExtra rope_;
  LlamaVariant v_;
  Tensor* tok_embd_;     // [n_embd, n_vocab]
  Tensor* output_norm_;  // [n_embd]
  Tensor* output_;       // [n_embd, n_vocab]
  std::vector<LlamaLayer> layers_;
};

}  // namespace

std::unique_ptr<Architecture> load_llama(WeightLoader& w, HParams& hp) {
  return load_llama_family(w, hp, LlamaVariant{});
}

std::unique_ptr<Architecture> load_llama_family(WeightLoader& w, HParams& hp, LlamaVariant v) {
  return std::make_unique<Llama>(w, hp, v);
}

}  // namespace xent
