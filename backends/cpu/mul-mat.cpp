// The fast CPU matmul driver: activations are quantized once, then threads claim chunks of
// weight rows from a shared counter and compute each chunk in tiles of kTileRows weight
// rows x kTileCols tokens, so a decoded weight block serves several tokens.
#include "backends/cpu/mul-mat.h"

#include "backends/cpu/packed-weights.h"

#include <algorithm>
#include <atomic>

namespace xent::cpu {
namespace {

// Rows [first, last) of `n` given to thread ith of nth.
void split(int64_t n, int ith, int nth, int64_t* first, int64_t* last) {
  const int64_t per = (n + nth - 1) / nth;
  *first = std::min<int64_t>(n, per * ith);
  *last = std::min<int64_t>(n, *first + per);
}

// Rows of a chunk: small enough that every thread gets several (a busy core must not hold
// back the others), large enough that claiming one is cheap next to computing it.
int64_t chunk_rows(int64_t n_out, int64_t n_tok, int nth) {
  if (n_tok > 1) return 16;  // 16 weight rows stay in L1/L2 while all tokens pass by
  const int64_t want = n_out / (static_cast<int64_t>(nth) * 8);
  return std::clamp<int64_t>(want / kTileRows * kTileRows, 16, 256);
}

}  // namespace

void mul_mat_tiled(const Tensor& dst, OpContext& ctx) {
  const Tensor& w = *dst.src[0];
  const Tensor& x = *dst.src[1];
  const QuantKernels* k = ctx.kernels(w.type);
  const int64_t n_in = w.ne[0], n_out = w.ne[1], n_tok = x.ne[1];

  // The counter of the next free chunk; thread i starts on chunk i without claiming it.
  std::atomic_ref<int64_t> next(*reinterpret_cast<int64_t*>(ctx.work));
  uint8_t* act_base = ctx.work + kMulMatCounterBytes;

  // Repacked weights: groups of four rows (chunks are multiples of four rows, and only
  // weights with a multiple of four rows are packed).
  const uint8_t* packed = ctx.packed && k->vec_dot_packed4 ? ctx.packed->find(w.data) : nullptr;

  // Phase 1: activations into the weight type's activation format, once per matmul (with
  // their block sums for the packed kernels).
  const bool direct = k->act_type == DType::F32;
  const size_t act_stride = direct ? x.nb[1] : packed ? packed_act_row_bytes(n_in) : k->act_row_bytes(n_in);
  if (!direct) {
    int64_t first, last;
    split(n_tok, ctx.ith, ctx.nth, &first, &last);
    for (int64_t j = first; j < last; ++j) {
      k->quantize_act(reinterpret_cast<const float*>(static_cast<const uint8_t*>(x.data) + j * x.nb[1]),
                      act_base + j * act_stride, n_in);
      if (packed) add_block_sums(act_base + j * act_stride, n_in);
    }
  }
  if (ctx.nth > 1) {
    if (ctx.ith == 0) next.store(ctx.nth, std::memory_order_relaxed);
    ctx.barrier();  // activations written and the counter set before anyone reads them
  }
  const uint8_t* act = direct ? static_cast<const uint8_t*>(x.data) : act_base;

  // Phase 2: chunks of weight rows, each over all tokens.
  const auto* wdata = static_cast<const uint8_t*>(w.data);
  auto* out = static_cast<float*>(dst.data);
  const size_t w_stride = w.nb[1];
  const size_t s_stride = dst.nb[1] / sizeof(float);
  const int64_t rows = chunk_rows(n_out, n_tok, ctx.nth);
  const int64_t n_chunks = (n_out + rows - 1) / rows;
  for (int64_t c = ctx.ith; c < n_chunks;) {
    const int64_t i0 = c * rows, i1 = std::min(n_out, i0 + rows);
    if (packed) {
      for (int64_t j = 0; j < n_tok; j += kTileCols) {
        const int nc = static_cast<int>(std::min<int64_t>(kTileCols, n_tok - j));
        for (int64_t i = i0; i < i1; i += 4)
          k->vec_dot_packed4(n_in, out + j * s_stride + i, s_stride, packed + i * w_stride, act + j * act_stride,
                             act_stride, nc);
      }
      c = ctx.nth > 1 ? next.fetch_add(1, std::memory_order_relaxed) : c + 1;
      continue;
    }
    for (int64_t j = 0; j < n_tok; j += kTileCols) {
      const int nc = static_cast<int>(std::min<int64_t>(kTileCols, n_tok - j));
      const uint8_t* a = act + j * act_stride;
      for (int64_t i = i0; i < i1; i += kTileRows) {
        const int nr = static_cast<int>(std::min<int64_t>(kTileRows, i1 - i));
        float* s = out + j * s_stride + i;
        const uint8_t* wr = wdata + i * w_stride;
        // One token: a plain row-after-row walk. Measured on a streaming 49152 x 576 matrix,
        // interleaving 4 rows cut the bandwidth the prefetchers reach by 1.5-3x.
        if (k->vec_dot_tile && n_tok > 1) {
          k->vec_dot_tile(n_in, s, s_stride, wr, w_stride, a, act_stride, nr, nc);
        } else {
          for (int cc = 0; cc < nc; ++cc)
            for (int r = 0; r < nr; ++r)
              k->vec_dot(n_in, s + cc * s_stride + r, wr + r * w_stride, a + cc * act_stride);
        }
      }
    }
    c = ctx.nth > 1 ? next.fetch_add(1, std::memory_order_relaxed) : c + 1;
  }
}

}  // namespace xent::cpu
