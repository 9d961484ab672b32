// GPT-2: learned position embeddings, LayerNorm with biases, fused QKV projection,
// GELU MLP, output tied to (or copied from) the token embedding.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "models/decoder.h"
#include "models/registry.h"
#include "runtime/inference/kv-cache.h"

namespace xent {
namespace {

struct Gpt2Layer {
  Tensor* ln1_w;  // [n_embd]
  Tensor* ln1_b;
  Tensor* w_qkv;  // [n_embd, 3 * n_embd]
  Tensor* b_qkv;  // [3 * n_embd]
  Tensor* w_o;    // [n_embd, n_embd]
  Tensor* b_o;
  Tensor* ln2_w;
  Tensor* ln2_b;
  Tensor* w_up;   // [n_embd, n_ff]
  Tensor* b_up;   // [n_ff]
  Tensor* w_down; // [n_ff, n_embd]
  Tensor* b_down;
};

class Gpt2 final : public Architecture {
 public:
  Gpt2(WeightLoader& w, HParams& hp) {
    const std::string& a = hp.arch;
    hp.n_ctx_train = w.arch_int(a, "context_length");
    hp.n_embd = w.arch_int(a, "embedding_length");
    hp.n_layer = w.arch_int(a, "block_count");
    hp.n_ff = w.arch_int(a, "feed_forward_length");
    hp.n_head = w.arch_int(a, "attention.head_count");
    hp.n_head_kv = hp.n_head;
    if (hp.n_embd <= 0 || hp.n_layer <= 0 || hp.n_ff <= 0 || hp.n_head <= 0 || hp.n_embd % hp.n_head != 0)
      throw Error("model: gpt2: embedding_length " + std::to_string(hp.n_embd) + ", block_count " +
                  std::to_string(hp.n_layer) + ", feed_forward_length " + std::to_string(hp.n_ff) +
                  " and head_count " + std::to_string(hp.n_head) + " are inconsistent");
    check_layer_count(w, hp);
    hp.head_dim = hp.n_embd / hp.n_head;
    hp.n_rot = 0;
    hp.norm_eps = w.arch_float_or(a, "attention.layer_norm_epsilon", 1e-5f);
    hp.learned_positions = true;

    const int64_t d = hp.n_embd;
    tok_embd_ = w.get("token_embd.weight", {d, hp.n_vocab});
    pos_embd_ = w.get("position_embd.weight", {d, hp.n_ctx_train});
    out_norm_w_ = w.get("output_norm.weight", {d});
    out_norm_b_ = w.get("output_norm.bias", {d});
    output_ = w.get("output.weight", {d, hp.n_vocab}, -1, false);
    if (!output_) output_ = tok_embd_;
    layers_.resize(hp.n_layer);
    for (int64_t i = 0; i < hp.n_layer; ++i) {
      const std::string p = "blk." + std::to_string(i) + ".";
      const int l = static_cast<int>(i);
      Gpt2Layer& L = layers_[i];
      L.ln1_w = w.get(p + "attn_norm.weight", {d}, l);
      L.ln1_b = w.get(p + "attn_norm.bias", {d}, l);
      L.w_qkv = w.get(p + "attn_qkv.weight", {d, 3 * d}, l);
      L.b_qkv = w.get(p + "attn_qkv.bias", {3 * d}, l);
      L.w_o = w.get(p + "attn_output.weight", {d, d}, l);
      L.b_o = w.get(p + "attn_output.bias", {d}, l);
      L.ln2_w = w.get(p + "ffn_norm.weight", {d}, l);
      L.ln2_b = w.get(p + "ffn_norm.bias", {d}, l);
      L.w_up = w.get(p + "ffn_up.weight", {d, hp.n_ff}, l);
      L.b_up = w.get(p + "ffn_up.bias", {hp.n_ff}, l);
      L.w_down = w.get(p + "ffn_down.weight", {hp.n_ff, d}, l);
      L.b_down = w.get(p + "ffn_down.bias", {d}, l);
    }
    hp_ = hp;
  }

  Tensor* build(Graph& g, const StepInputs& in) const override {
    const int64_t n_tok = in.n_tok, d = hp_.n_embd, hd = hp_.head_dim, nh = hp_.n_head;
    const float kq_scale = 1.0f / std::sqrt(static_cast<float>(hd));
    Tensor* x = g.add(g.get_rows(tok_embd_, in.tokens), g.get_rows(pos_embd_, in.positions));
    for (int64_t il = 0; il < hp_.n_layer; ++il) {
      const Gpt2Layer& L = layers_[il];
      g.set_current_layer(static_cast<int>(il));
      Tensor* h = g.layer_norm(x, L.ln1_w, L.ln1_b, hp_.norm_eps);
      Tensor* qkv = g.add(g.mul_mat(L.w_qkv, h), L.b_qkv);  // [3d, n_tok]
      const size_t f = sizeof(float);
      Tensor* q = g.view(qkv, hd, nh, n_tok, hd * f, qkv->nb[1], 0);
      Tensor* k = g.view(qkv, hd, nh, n_tok, hd * f, qkv->nb[1], d * f);
      Tensor* v = g.view(qkv, hd, nh, n_tok, hd * f, qkv->nb[1], 2 * d * f);
      Tensor* attn = g.attention(q, k, v, in.kv->k(il), in.kv->v(il), in.n_past, kq_scale, in.mask);
      x = g.add(x, g.add(g.mul_mat(L.w_o, attn), L.b_o));
      h = g.layer_norm(x, L.ln2_w, L.ln2_b, hp_.norm_eps);
      Tensor* up = g.gelu(g.add(g.mul_mat(L.w_up, h), L.b_up));
      x = g.add(x, g.add(g.mul_mat(L.w_down, up), L.b_down));
    }
    g.set_current_layer(-1);
    x = output_rows(g, x, in);
    x = g.layer_norm(x, out_norm_w_, out_norm_b_, hp_.norm_eps);
    return g.mul_mat(output_, x);
  }

 private:
  HParams hp_;
  Tensor* tok_embd_;    // [n_embd, n_vocab]
  Tensor* pos_embd_;    // [n_embd, n_ctx_train] f32
  Tensor* out_norm_w_;  // [n_embd]
  Tensor* out_norm_b_;
  Tensor* output_;      // [n_embd, n_vocab]
  std::vector<Gpt2Layer> layers_;
};

}  // namespace

std::unique_ptr<Architecture> load_gpt2(WeightLoader& w, HParams& hp) {
  return std::make_unique<Gpt2>(w, hp);
}

}  // namespace xent
