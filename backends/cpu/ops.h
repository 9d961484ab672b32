// CPU op kernels. Each kernel is called by every thread of the pool with its index
// (ith of nth) and does its share; kernels that need two phases call ctx.barrier().
#pragma once
#include <cstddef>
#include <cstdint>

#include "backends/cpu/quant-kernels.h"
#include "backends/cpu/vec-kernels.h"
#include "core/tensor.h"

namespace xent::cpu {

struct PackedWeights;

struct OpContext {
  int ith = 0;
  int nth = 1;
  uint8_t* work = nullptr;  // shared scratch of work_bytes(node, nth) bytes
  void (*barrier)() = nullptr;
  // kernels_ref or kernels_best: the reference path is kept selectable so tests can
  // compare the two on whole graphs.
  const QuantKernels* (*kernels)(DType weight_type) = nullptr;
  const VecKernels* vec = nullptr;  // vec_kernels_ref() or vec_kernels_best(), likewise
  const PackedWeights* packed = nullptr;  // repacked weights (null with the reference kernels)
};

bool cpu_supports(const Tensor& node);
size_t work_bytes(const Tensor& node, int n_threads);
void compute_node(const Tensor& node, OpContext& ctx);

}  // namespace xent::cpu
