// The fast CPU matmul driver (mul-mat.cpp): tiles of weight rows x tokens handed out to
// threads in chunks, using QuantKernels::vec_dot_tile. ops-ref.cpp's loop stays the oracle.
#pragma once
#include <cstddef>

#include "backends/cpu/ops.h"

namespace xent::cpu {

// Scratch bytes in front of the activations that the tiled driver keeps for its counter.
constexpr size_t kMulMatCounterBytes = 64;

// dst = src[0] (weights, one row per output) x src[1] (f32 activations, one row per token).
// ctx.work must hold kMulMatCounterBytes plus the quantized activations (work_bytes).
void mul_mat_tiled(const Tensor& dst, OpContext& ctx);

// Up to kMaxMulMatGroup matmuls of the same activations (Q, K and V of one norm output; gate
// and up): the activations are quantized once and the threads claim chunks of all their
// weight rows from one counter, so the group costs one barrier instead of one per matmul.
// mul_mat_groupable(a, b): b may join a group that a is in (the same activations, the same
// activation format, both repacked or neither).
constexpr int kMaxMulMatGroup = 4;
bool mul_mat_groupable(const Tensor& a, const Tensor& b, const OpContext& ctx);
void mul_mat_tiled_group(const Tensor* const* dsts, int n, OpContext& ctx);

}  // namespace xent::cpu
