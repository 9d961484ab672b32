// Llama-family decoder (Llama 2/3, TinyLlama, SmolLM, Mistral) and Qwen2, which differs
// only by Q/K/V biases and NeoX-style rotary embedding: RMSNorm, RoPE, GQA, SwiGLU.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

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
  Tensor* wo;         // [n_head * head_dim, n_embd]
  Tensor* ffn_norm;   // [n_embd]
  Tensor* w_gate;     // [n_embd, n_ff]
  Tensor* w_up;       // [n_embd, n_ff]
  Tensor* w_down;     // [n_ff, n_embd]
};

class Llama final : public Architecture {
 public:
  Llama(WeightLoader& w, HParams& hp, bool qwen2) : neox_rope_(qwen2) {
    const std::string& a = hp.arch;
    hp.n_ctx_train = w.arch_int(a, "context_length");
    hp.n_embd = w.arch_int(a, "embedding_length");
    hp.n_layer = w.arch_int(a, "block_count");
    hp.n_ff = w.arch_int(a, "feed_forward_length");
    hp.n_head = w.arch_int(a, "attention.head_count");
    hp.n_head_kv = w.arch_int_or(a, "attention.head_count_kv", hp.n_head);
    if (hp.n_embd % hp.n_head != 0 || hp.n_head % hp.n_head_kv != 0)
      throw Error("model: " + a + ": embedding_length " + std::to_string(hp.n_embd) +
                  " and head counts " + std::to_string(hp.n_head) + "/" +
                  std::to_string(hp.n_head_kv) + " are inconsistent");
    hp.head_dim = w.arch_int_or(a, "attention.key_length", hp.n_embd / hp.n_head);
    hp.n_rot = w.arch_int_or(a, "rope.dimension_count", hp.head_dim);
    if (hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0)
      throw Error("model: " + a + ".rope.dimension_count " + std::to_string(hp.n_rot) +
                  " does not fit head size " + std::to_string(hp.head_dim));
    hp.norm_eps = w.arch_float_or(a, "attention.layer_norm_rms_epsilon", 1e-5f);
    if (const int64_t v = w.arch_int_or(a, "attention.value_length", hp.head_dim); v != hp.head_dim)
      throw Error("model: " + a + ".attention.value_length " + std::to_string(v) + " differs from key_length " +
                  std::to_string(hp.head_dim) + ", which xent does not support");
    for (const char* key : {"expert_count", "expert_used_count"})
      if (w.file().find(a + "." + key) && w.file().get_int(a + "." + key).value_or(1) != 0)
        throw Error("model: " + a + "." + key + " says this is a mixture-of-experts model, which xent does not support");
      else
        w.mark_key(a + "." + key);
    w.mark_key(a + ".vocab_size");             // the tokenizer and token_embd give it
    w.mark_key(a + ".rope.scaling.finetuned");  // informational
    read_rope_scaling(w, hp);
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
      L.bq = w.get(p + "attn_q.bias", {q_dim}, l, qwen2);
      L.bk = w.get(p + "attn_k.bias", {kv_dim}, l, qwen2);
      L.bv = w.get(p + "attn_v.bias", {kv_dim}, l, qwen2);
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
    const int32_t rope_mode = neox_rope_ ? kRopeModeNeox : kRopeModeNormal;
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
    if (!in.all_logits) x = g.rows(x, n_tok - 1, 1);
    x = g.rms_norm(x, output_norm_, hp_.norm_eps);
    return g.mul_mat(output_, x);
  }

 private:
  // rope.scaling.*, as the peer reads them: the factor (or the older rope.scale_linear)
  // divides positions unless the type is none; yarn blends that with the unscaled
  // frequencies; attn_factor scales cos and sin.
  void read_rope_scaling(WeightLoader& w, HParams& hp) {
    const std::string& a = hp.arch;
    hp.rope_freq_base = w.arch_float_or(a, "rope.freq_base", 10000.0f);
    if (!(hp.rope_freq_base > 1.0f)) throw Error("model: " + a + ".rope.freq_base must be greater than 1");
    float factor = w.arch_float_or(a, "rope.scaling.factor", 0.0f);
    const float linear = w.arch_float_or(a, "rope.scale_linear", 0.0f);
    if (factor == 0.0f) factor = linear;
    if (factor < 0.0f) throw Error("model: " + a + ".rope.scaling.factor is negative");
    hp.rope_freq_scale = factor > 0.0f ? 1.0f / factor : 1.0f;
    const std::string type = w.arch_string_or(a, "rope.scaling.type", "linear");
    rope_.attn_factor = w.arch_float_or(a, "rope.scaling.attn_factor", 1.0f);
    const int64_t n_ctx_orig = w.arch_int_or(a, "rope.scaling.original_context_length", hp.n_ctx_train);
    if (type == "none") {
      hp.rope_freq_scale = 1.0f;
    } else if (type == "yarn") {
      rope_.ext_factor = 1.0f;
      rope_.n_ctx_orig = static_cast<int32_t>(n_ctx_orig);
    } else if (type != "linear") {
      throw Error("model: " + a + ".rope.scaling.type '" + type + "' is not supported for " + a +
                  " (supported: none, linear, yarn)");
    }
    hp.rope_scaling = type == "linear" && factor == 0.0f ? "none" : type;
  }

  HParams hp_;
  Graph::RopeExtra rope_;
  bool neox_rope_;
  Tensor* tok_embd_;     // [n_embd, n_vocab]
  Tensor* output_norm_;  // [n_embd]
  Tensor* output_;       // [n_embd, n_vocab]
  std::vector<LlamaLayer> layers_;
};

}  // namespace

std::unique_ptr<Architecture> load_llama(WeightLoader& w, HParams& hp) {
  return load_llama_family(w, hp, false);
}

std::unique_ptr<Architecture> load_llama_family(WeightLoader& w, HParams& hp, bool qwen2) {
  return std::make_unique<Llama>(w, hp, qwen2);
}

}  // namespace xent
