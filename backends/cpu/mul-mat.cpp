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
  // Many tokens: the columns pass over a chunk in several sweeps, so 16 weight rows stay in
  // L1/L2 between them. Up to one sweep's worth (decode steps of a few sequences) each row is
  // read once, and long chunks keep each thread's walk through memory sequential.
  if (n_tok > kPackedCols) return 16;
  const int64_t want = n_out / (static_cast<int64_t>(nth) * 8);
  return std::clamp<int64_t>(want / kTileRows * kTileRows, 16, 256);
}

// The repacked copy of w when its kernels read one, else null.
const uint8_t* packed_rows(const Tensor& w, const QuantKernels* k, const OpContext& ctx) {
  return ctx.packed && k->vec_dot_packed4 ? ctx.packed->find(w.data) : nullptr;
}

}  // namespace

bool mul_mat_groupable(const Tensor& a, const Tensor& b, const OpContext& ctx) {
  if (a.op != Op::MulMat || b.op != Op::MulMat) return false;
  const Tensor& xa = *a.src[1];
  const Tensor& xb = *b.src[1];
  if (xa.data != xb.data || xa.ne[0] != xb.ne[0] || xa.ne[1] != xb.ne[1] || xa.nb[1] != xb.nb[1]) return false;
  // The same activation format, made by the same function.
  const QuantKernels* ka = ctx.kernels(a.src[0]->type);
  const QuantKernels* kb = ctx.kernels(b.src[0]->type);
  if (ka->act_type != kb->act_type || ka->quantize_act != kb->quantize_act) return false;
  // Packed kernels read their own activation layout: members are all packed or none.
  if ((packed_rows(*a.src[0], ka, ctx) != nullptr) != (packed_rows(*b.src[0], kb, ctx) != nullptr)) return false;
  // b must not read what a writes (it cannot: both read only weights and x, but a view of
  // a's output as x would) nor write over x.
  const auto* x0 = static_cast<const uint8_t*>(xa.data);
  const auto* x1 = x0 + xa.n_bytes();
  for (const Tensor* d : {&a, &b}) {
    const auto* d0 = static_cast<const uint8_t*>(d->data);
    if (d0 < x1 && x0 < d0 + d->n_bytes()) return false;
  }
  return true;
}

void mul_mat_tiled(const Tensor& dst, OpContext& ctx) {
  const Tensor* one = &dst;
  mul_mat_tiled_group(&one, 1, ctx);
}

void mul_mat_tiled_group(const Tensor* const* dsts, int n_dst, OpContext& ctx) {
  const Tensor& x = *dsts[0]->src[1];
  const QuantKernels* k0 = ctx.kernels(dsts[0]->src[0]->type);
  const int64_t n_in = x.ne[0], n_tok = x.ne[1];

  // Per matmul: its kernels, its repacked weights (groups of four rows; chunks are multiples
  // of four rows, and only weights with a multiple of four rows are packed) and its chunks.
  struct Member {
    const QuantKernels* k;
    const uint8_t* packed;
    int64_t rows, n_chunks;
  };
  Member m[kMaxMulMatGroup];
  bool any_packed = false;
  int64_t n_chunks = 0;
  for (int i = 0; i < n_dst; ++i) {
    const Tensor& w = *dsts[i]->src[0];
    m[i].k = ctx.kernels(w.type);
    m[i].packed = packed_rows(w, m[i].k, ctx);
    any_packed = any_packed || m[i].packed;
    m[i].rows = chunk_rows(w.ne[1], n_tok, ctx.nth);
    m[i].n_chunks = (w.ne[1] + m[i].rows - 1) / m[i].rows;
    n_chunks += m[i].n_chunks;
  }

  // The counter of the next free chunk; thread i starts on chunk i without claiming it.
  std::atomic_ref<int64_t> next(*reinterpret_cast<int64_t*>(ctx.work));
  uint8_t* act_base = ctx.work + kMulMatCounterBytes;

  // Phase 1: activations into the weights' activation format, once for the group (the
  // packed kernels' layout when they are packed: mul_mat_groupable keeps groups uniform).
  const bool direct = k0->act_type == DType::F32;
  const size_t act_stride = direct ? x.nb[1] : any_packed ? packed_act_row_bytes(n_in) : k0->act_row_bytes(n_in);
  if (!direct) {
    int64_t first, last;
    split(n_tok, ctx.ith, ctx.nth, &first, &last);
    for (int64_t j = first; j < last; ++j) {
      k0->quantize_act(reinterpret_cast<const float*>(static_cast<const uint8_t*>(x.data) + j * x.nb[1]),
                       act_base + j * act_stride, n_in);
      if (any_packed) pack_act_row(act_base + j * act_stride, n_in);
    }
  }
  if (ctx.nth > 1) {
    if (ctx.ith == 0) next.store(ctx.nth, std::memory_order_relaxed);
    ctx.barrier();  // activations written and the counter set before anyone reads them
  }
  const uint8_t* act = direct ? static_cast<const uint8_t*>(x.data) : act_base;

  // Phase 2: chunks of weight rows, each over all tokens; chunk numbers run through the
  // members in order.
  for (int64_t c = ctx.ith; c < n_chunks;) {
    int i = 0;
    int64_t local = c;
    while (local >= m[i].n_chunks) local -= m[i++].n_chunks;
    const Tensor& dst = *dsts[i];
    const Tensor& w = *dst.src[0];
    const QuantKernels* k = m[i].k;
    const int64_t n_out = w.ne[1];
    const auto* wdata = static_cast<const uint8_t*>(w.data);
    auto* out = static_cast<float*>(dst.data);
    const size_t w_stride = w.nb[1];
    const size_t s_stride = dst.nb[1] / sizeof(float);
    const int64_t i0 = local * m[i].rows, i1 = std::min(n_out, i0 + m[i].rows);
    if (const uint8_t* packed = m[i].packed) {
      for (int64_t j = 0; j < n_tok; j += kPackedCols) {
        const int nc = static_cast<int>(std::min<int64_t>(kPackedCols, n_tok - j));
        for (int64_t r = i0; r < i1; r += 4)
          k->vec_dot_packed4(n_in, out + j * s_stride + r, s_stride, packed + r * w_stride, act + j * act_stride,
                             act_stride, nc);
      }
    } else {
      for (int64_t j = 0; j < n_tok; j += kTileCols) {
        const int nc = static_cast<int>(std::min<int64_t>(kTileCols, n_tok - j));
        const uint8_t* a = act + j * act_stride;
        for (int64_t r = i0; r < i1; r += kTileRows) {
          const int nr = static_cast<int>(std::min<int64_t>(kTileRows, i1 - r));
          float* s = out + j * s_stride + r;
          const uint8_t* wr = wdata + r * w_stride;
          // One token: a plain row-after-row walk. Measured on a streaming 49152 x 576 matrix,
          // interleaving 4 rows cut the bandwidth the prefetchers reach by 1.5-3x.
          if (k->vec_dot_tile && n_tok > 1) {
            k->vec_dot_tile(n_in, s, s_stride, wr, w_stride, a, act_stride, nr, nc);
          } else {
            for (int cc = 0; cc < nc; ++cc)
              for (int rr = 0; rr < nr; ++rr)
                k->vec_dot(n_in, s + cc * s_stride + rr, wr + rr * w_stride, a + cc * act_stride);
          }
        }
      }
    }
    c = ctx.nth > 1 ? next.fetch_add(1, std::memory_order_relaxed) : c + 1;
  }
}

}  // namespace xent::cpu
