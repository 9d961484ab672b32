#include "models/decoder.h"

#include <sstream>

#include "formats/error.h"

namespace xent {

void read_decoder_hparams(WeightLoader& w, HParams& hp, float default_norm_eps) {
  const std::string& a = hp.arch;
  hp.n_ctx_train = w.arch_int(a, "context_length");
  hp.n_embd = w.arch_int(a, "embedding_length");
  hp.n_layer = w.arch_int(a, "block_count");
  hp.n_ff = w.arch_int(a, "feed_forward_length");
  hp.n_head = w.arch_int(a, "attention.head_count");
  hp.n_head_kv = w.arch_int_or(a, "attention.head_count_kv", hp.n_head);
  if (hp.n_embd <= 0 || hp.n_layer <= 0 || hp.n_ff <= 0 || hp.n_head <= 0 || hp.n_head_kv <= 0 ||
      hp.n_head % hp.n_head_kv != 0)
    throw Error("model: " + a + ": embedding_length " + std::to_string(hp.n_embd) + ", block_count " +
                std::to_string(hp.n_layer) + " and head counts " + std::to_string(hp.n_head) + "/" +
                std::to_string(hp.n_head_kv) + " are inconsistent");
  check_layer_count(w, hp);
  hp.head_dim = w.arch_int_or(a, "attention.key_length", hp.n_embd / hp.n_head);
  if (hp.head_dim <= 0 || hp.head_dim > 1024)
    throw Error("model: " + a + ".attention.key_length " + std::to_string(hp.head_dim) + " is out of range");
  if (const int64_t v = w.arch_int_or(a, "attention.value_length", hp.head_dim); v != hp.head_dim)
    throw Error("model: " + a + ".attention.value_length " + std::to_string(v) + " differs from key_length " +
                std::to_string(hp.head_dim) + ", which xent does not support");
  hp.n_rot = w.arch_int_or(a, "rope.dimension_count", hp.head_dim);
  if (hp.n_rot > hp.head_dim || hp.n_rot <= 0 || hp.n_rot % 2 != 0)
    throw Error("model: " + a + ".rope.dimension_count " + std::to_string(hp.n_rot) + " does not fit head size " +
                std::to_string(hp.head_dim));
  hp.norm_eps = w.arch_float_or(a, "attention.layer_norm_rms_epsilon", default_norm_eps);
  w.mark_key(a + ".vocab_size");  // the tokenizer and token_embd give it
}

void check_layer_count(const WeightLoader& w, const HParams& hp) {
  if (hp.n_layer > static_cast<int64_t>(w.file().tensors().size()))
    throw Error("model: " + hp.arch + ".block_count " + std::to_string(hp.n_layer) + " but the file holds only " +
                std::to_string(w.file().tensors().size()) + " tensors");
}

Graph::RopeExtra read_rope_scaling(WeightLoader& w, HParams& hp, const std::string& allowed) {
  const std::string& a = hp.arch;
  Graph::RopeExtra rope;
  hp.rope_freq_base = w.arch_float_or(a, "rope.freq_base", 10000.0f);
  if (!(hp.rope_freq_base > 1.0f)) throw Error("model: " + a + ".rope.freq_base must be greater than 1");
  float factor = w.arch_float_or(a, "rope.scaling.factor", 0.0f);
  const float linear = w.arch_float_or(a, "rope.scale_linear", 0.0f);
  if (factor == 0.0f) factor = linear;
  if (factor < 0.0f) throw Error("model: " + a + ".rope.scaling.factor is negative");
  hp.rope_freq_scale = factor > 0.0f ? 1.0f / factor : 1.0f;
  const std::string type = w.arch_string_or(a, "rope.scaling.type", "linear");
  rope.attn_factor = w.arch_float_or(a, "rope.scaling.attn_factor", 1.0f);
  if (!(rope.attn_factor > 0.0f)) throw Error("model: " + a + ".rope.scaling.attn_factor must be positive");
  const int64_t n_ctx_orig = w.arch_int_or(a, "rope.scaling.original_context_length", hp.n_ctx_train);
  w.mark_key(a + ".rope.scaling.finetuned");  // informational
  bool known = false;
  std::stringstream list(allowed);
  for (std::string t; std::getline(list, t, ',');) known = known || t == type;
  if (!known)
    throw Error("model: " + a + ".rope.scaling.type '" + type + "' is not supported for " + a + " (supported: " +
                allowed + ")");
  if (type == "none") {
    hp.rope_freq_scale = 1.0f;
  } else if (type == "yarn") {
    rope.ext_factor = 1.0f;
    rope.n_ctx_orig = static_cast<int32_t>(n_ctx_orig);
  }
  hp.rope_scaling = type == "linear" && factor == 0.0f ? "none" : type;
  return rope;
}

void refuse_experts(WeightLoader& w, const std::string& a) {
  for (const char* key : {"expert_count", "expert_used_count"})
    if (w.file().find(a + "." + key) && w.file().get_int(a + "." + key).value_or(1) != 0)
      throw Error("model: " + a + "." + key + " says this is a mixture-of-experts model, which xent does not support");
    else
      w.mark_key(a + "." + key);
}

}  // namespace xent
