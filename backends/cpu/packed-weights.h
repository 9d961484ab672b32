// Weights re-laid out once at load for kernels that read four rows at a time
// (QuantKernels::pack4 / vec_dot_packed4). A model's contexts share one set.
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <unordered_map>

#include "core/tensor.h"

namespace xent::cpu {

struct PackedWeights {
  struct Free {
    void operator()(uint8_t* p) const;
  };
  std::unordered_map<const void*, const uint8_t*> by_data;  // original data -> packed copy
  std::unique_ptr<uint8_t, Free> storage;                   // all the packed copies
  size_t bytes = 0;
  // The packed copy of the weight whose rows start at data, or null.
  const uint8_t* find(const void* data) const {
    auto it = by_data.find(data);
    return it == by_data.end() ? nullptr : it->second;
  }
};

// Packs every weight that gains from it on this CPU: a 2-D matmul weight (named blk.* or
// output.weight; the token embedding is also read row by row, so it stays) of a type whose
// best kernels have pack4, with a multiple of 4 rows. The weights must lie in a read-only
// file mapping: the original pages are dropped from memory after copying, so the weights
// are not held twice, and anything that reads them again faults them back in from the file.
// Empty where nothing qualifies, or when XENT_NO_REPACK is set.
std::shared_ptr<const PackedWeights> pack_weights(const std::deque<Tensor>& weights);

}  // namespace xent::cpu
