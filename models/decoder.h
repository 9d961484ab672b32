// What the decoder-only architectures (llama, qwen2/3, gemma2/3, phi3) read alike: the
// attention shape keys and rope scaling, each marked used in the WeightLoader.
#pragma once
#include <string>

#include "runtime/graph/graph.h"
#include "runtime/inference/model.h"

namespace xent {

// context_length, embedding_length, block_count, feed_forward_length, head counts,
// key/value_length (equal), rope.dimension_count, the RMSNorm epsilon; vocab_size is marked.
// Throws naming the key when a value is missing or inconsistent.
void read_decoder_hparams(WeightLoader& w, HParams& hp, float default_norm_eps);
// Every block holds tensors of its own, so a block_count beyond the file's tensor count is
// refused before a table of that many layers is made.
void check_layer_count(const WeightLoader& w, const HParams& hp);

// rope.freq_base and rope.scaling.*, as the peer reads them: the factor (or the older
// rope.scale_linear) divides positions unless the type is none; yarn blends that with the
// unscaled frequencies; attn_factor scales cos and sin. `allowed` lists the types the
// architecture applies ("none,linear,yarn"); any other is refused naming it.
Graph::RopeExtra read_rope_scaling(WeightLoader& w, HParams& hp, const std::string& allowed = "none,linear,yarn");

// Refuses mixture-of-experts files (expert_count > 0), which no dense graph computes.
void refuse_experts(WeightLoader& w, const std::string& arch);

}  // namespace xent
