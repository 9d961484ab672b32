// A LoRA adapter read from a GGUF file in the layout llama.cpp reads (general.type = adapter,
// adapter.type = lora, adapter.lora.alpha, tensors "<base weight>.lora_a" / ".lora_b"), bound
// to the base Model it was loaded for. A Context applies it at run time (Context::set_adapters).
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "formats/gguf.h"
#include "runtime/inference/model.h"

namespace xent {

// One adapted weight. For W [n_in, n_out] used as W·x: a [n_in, rank], b [rank, n_out], and
// the layer computes W·x + s·b·(a·x). For the token embedding (used through get_rows):
// a [rank, n_vocab], b [rank, n_embd], the rows become W[id] + s·b·a[id] (as the peer).
struct LoraTarget {
  const Tensor* weight = nullptr;  // the base model's tensor
  Tensor a;                        // points into the adapter's mapping
  Tensor b;
  int64_t rank = 0;
  bool embedding = false;
};

class LoraAdapter {
 public:
  // Maps the file and checks it against `base`: general.type, adapter.type, the architecture,
  // every tensor a named lora_a/lora_b pair whose target exists in the base with consistent
  // shapes and a rank in [1, min(n_in, n_out)], types a matmul can read. Anything else in the
  // file that would change the arithmetic (norm tensors, unknown adapter.* keys) is an error
  // naming it. Throws xent::Error.
  static std::shared_ptr<const LoraAdapter> load(const Model& base, const std::string& path);

  const Model& base() const { return *base_; }
  const std::string& path() const { return path_; }
  float alpha() const { return alpha_; }  // 0: absent, the scale is used as is
  const std::deque<LoraTarget>& targets() const { return targets_; }
  // The factor of b·(a·x): user_scale · alpha / rank, or user_scale without an alpha (the peer's rule).
  float scale_for(const LoraTarget& t, float user_scale) const {
    return alpha_ != 0.0f ? user_scale * alpha_ / static_cast<float>(t.rank) : user_scale;
  }
  uint64_t tensor_bytes() const;  // of every a and b

 private:
  LoraAdapter() = default;
  const Model* base_ = nullptr;
  std::string path_;
  std::unique_ptr<gguf::Reader> file_;
  float alpha_ = 0.0f;
  std::deque<LoraTarget> targets_;  // stable addresses: graphs point at a and b
};

// Loads each (path, scale) for `base`, in order: what Context::set_adapters takes.
std::vector<std::pair<std::shared_ptr<const LoraAdapter>, float>> load_adapters(
    const Model& base, const std::vector<std::pair<std::string, float>>& files);

}  // namespace xent
