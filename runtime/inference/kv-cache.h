// The key/value cache: per layer, f16 keys and values of every evaluated position,
// [head_dim, n_head_kv, n_ctx]. Layers can live on different backends (-ngl).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "backends/backend.h"
#include "core/tensor.h"

namespace xent {

class KvCache {
 public:
  // backend_of_layer[l]: the backend that holds layer l's cache.
  KvCache(int64_t n_layer, int64_t head_dim, int64_t n_head_kv, int64_t n_ctx,
          const std::vector<Backend*>& backend_of_layer);
  Tensor* k(int64_t layer) { return &k_[layer]; }
  Tensor* v(int64_t layer) { return &v_[layer]; }
  int64_t n_ctx() const { return n_ctx_; }
  size_t bytes() const { return bytes_; }

  // Raw bytes of rows [0, n_pos) of every layer, for session save/load.
  std::vector<uint8_t> save(int64_t n_pos) const;
  void load(const std::vector<uint8_t>& bytes, int64_t n_pos);

 private:
  int64_t n_ctx_;
  std::vector<Tensor> k_, v_;
  std::vector<std::unique_ptr<Buffer>> buffers_;
  size_t bytes_ = 0;
};

}  // namespace xent
