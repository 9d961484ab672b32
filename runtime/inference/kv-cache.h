// The key/value cache: per layer, keys and values of every evaluated position,
// [head_dim, n_head_kv, n_ctx], f16 or q8_0 (keys and values chosen apart, as llama.cpp's
// --cache-type-k/-v). Layers can live on different backends (-ngl).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "backends/backend.h"
#include "core/tensor.h"

namespace xent {

class KvCache {
 public:
  // backend_of_layer[l]: the backend that holds layer l's cache. type_k / type_v: F16 or
  // Q8_0. Throws xent::Error for another type, or Q8_0 with head_dim not a multiple of 32.
  KvCache(int64_t n_layer, int64_t head_dim, int64_t n_head_kv, int64_t n_ctx,
          const std::vector<Backend*>& backend_of_layer, DType type_k = DType::F16, DType type_v = DType::F16);
  Tensor* k(int64_t layer) { return &k_[layer]; }
  Tensor* v(int64_t layer) { return &v_[layer]; }
  int64_t n_ctx() const { return n_ctx_; }
  size_t bytes() const { return bytes_; }
  DType type_k() const { return k_.empty() ? DType::F16 : k_[0].type; }
  DType type_v() const { return v_.empty() ? DType::F16 : v_[0].type; }

  // Raw bytes of rows [0, n_pos) of every layer, for session save/load (in the cache's own
  // types: a caller records them, since the bytes of another type would load as garbage).
  std::vector<uint8_t> save(int64_t n_pos) const;
  void load(const std::vector<uint8_t>& bytes, int64_t n_pos);

 private:
  int64_t n_ctx_;
  std::vector<Tensor> k_, v_;
  std::vector<std::unique_ptr<Buffer>> buffers_;
  size_t bytes_ = 0;
};

}  // namespace xent
