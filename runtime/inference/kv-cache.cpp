#include "runtime/inference/kv-cache.h"

#include <cstring>
#include <string>
#include <utility>

#include "formats/error.h"

namespace xent {

KvCache::KvCache(int64_t n_layer, int64_t head_dim, int64_t n_head_kv, int64_t n_ctx,
                 const std::vector<Backend*>& backend_of_layer, DType type_k, DType type_v)
    : n_ctx_(n_ctx), k_(n_layer), v_(n_layer) {
  for (const auto& [what, type] : {std::pair{"K", type_k}, std::pair{"V", type_v}}) {
    if (type != DType::F16 && type != DType::Q8_0)
      throw Error(std::string("kv cache: ") + what + " cache type " + dtype_name(type) + " is not supported (f16, q8_0)");
    // A q8_0 row is whole 32-value blocks per head, so each head's keys are rows of blocks.
    if (type == DType::Q8_0 && head_dim % 32 != 0)
      throw Error(std::string("kv cache: a q8_0 ") + what + " cache needs a head_dim that is a multiple of 32; " +
                  "this model's head_dim is " + std::to_string(head_dim) + " (use f16)");
  }
  for (int64_t l = 0; l < n_layer; ++l) {
    for (Tensor* t : {&k_[l], &v_[l]}) {
      t->type = t == &k_[l] ? type_k : type_v;
      t->ne[0] = head_dim;
      t->ne[1] = n_head_kv;
      t->ne[2] = n_ctx;
      t->set_contiguous_strides();
      t->layer = static_cast<int>(l);
      t->name = t == &k_[l] ? "k_cache" : "v_cache";
      Backend* b = backend_of_layer[l];
      buffers_.push_back(b->alloc_buffer(t->n_bytes()));
      Buffer* buf = buffers_.back().get();
      t->buffer = buf;
      t->offset = 0;
      t->data = buf->host;
      if (buf->host) std::memset(buf->host, 0, t->n_bytes());
      bytes_ += t->n_bytes();
    }
  }
}

std::vector<uint8_t> KvCache::save(int64_t n_pos) const {
  std::vector<uint8_t> out;
  for (size_t l = 0; l < k_.size(); ++l) {
    for (const Tensor* t : {&k_[l], &v_[l]}) {
      const size_t n = t->nb[2] * static_cast<size_t>(n_pos);
      const size_t at = out.size();
      out.resize(at + n);
      t->buffer->backend->download(*t->buffer, t->offset, out.data() + at, n);
    }
  }
  return out;
}

void KvCache::load(const std::vector<uint8_t>& bytes, int64_t n_pos) {
  if (n_pos > n_ctx_) throw Error("kv cache: saved state has more positions than the context");
  size_t at = 0;
  for (size_t l = 0; l < k_.size(); ++l) {
    for (Tensor* t : {&k_[l], &v_[l]}) {
      const size_t n = t->nb[2] * static_cast<size_t>(n_pos);
      if (at + n > bytes.size()) throw Error("kv cache: saved state is truncated");
      t->buffer->backend->upload(*t->buffer, t->offset, bytes.data() + at, n);
      at += n;
    }
  }
  if (at != bytes.size()) throw Error("kv cache: saved state has the wrong size");
}

}  // namespace xent
