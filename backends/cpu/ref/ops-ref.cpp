// Reference CPU kernels: plain loops with f32 accumulation (f64 for norms), written to
// be obviously right. They are the oracle that the Vulkan and CUDA kernels are tested
// against; speed comes from the quantized dot products they call.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cpu/mul-mat.h"
#include "backends/cpu/ops.h"
#include "formats/error.h"
#include "formats/quants.h"

namespace xent::cpu {
namespace {

// Rows [first, last) of `n` given to thread ith of nth.
struct Range {
  int64_t first, last;
};
Range split(int64_t n, int ith, int nth) {
  const int64_t per = (n + nth - 1) / nth;
  const int64_t first = std::min<int64_t>(n, per * ith);
  return {first, std::min<int64_t>(n, first + per)};
}

inline float* row_f32(const Tensor& t, int64_t i1, int64_t i2 = 0, int64_t i3 = 0) {
  return reinterpret_cast<float*>(static_cast<uint8_t*>(t.data) + i1 * t.nb[1] + i2 * t.nb[2] +
                                  i3 * t.nb[3]);
}
inline const uint8_t* row_bytes(const Tensor& t, int64_t i1, int64_t i2 = 0, int64_t i3 = 0) {
  return static_cast<const uint8_t*>(t.data) + i1 * t.nb[1] + i2 * t.nb[2] + i3 * t.nb[3];
}

// Calls fn(i1, i2, i3) for this thread's share of the rows of t.
template <typename Fn>
void for_rows(const Tensor& t, const OpContext& ctx, Fn fn) {
  const int64_t n = t.n_rows();
  const Range r = split(n, ctx.ith, ctx.nth);
  for (int64_t ir = r.first; ir < r.last; ++ir) {
    const int64_t i3 = ir / (t.ne[1] * t.ne[2]);
    const int64_t i2 = (ir / t.ne[1]) % t.ne[2];
    const int64_t i1 = ir % t.ne[1];
    fn(i1, i2, i3);
  }
}

void get_rows(const Tensor& dst, const OpContext& ctx) {
  const Tensor& table = *dst.src[0];
  const Tensor& ids = *dst.src[1];
  const int32_t* id = static_cast<const int32_t*>(ids.data);
  for_rows(dst, ctx, [&](int64_t i1, int64_t, int64_t) {
    const int32_t r = id[i1];
    if (r < 0 || r >= table.ne[1]) {
      // Out-of-range ids are rejected before evaluation; this keeps a bug from reading wild memory.
      std::memset(row_f32(dst, i1), 0, dst.ne[0] * sizeof(float));
      return;
    }
    dequantize_row(table.type, row_bytes(table, r), row_f32(dst, i1), table.ne[0]);
  });
}

void mul_mat(const Tensor& dst, OpContext& ctx) {
  const Tensor& w = *dst.src[0];
  const Tensor& x = *dst.src[1];
  const QuantKernels* k = ctx.kernels(w.type);
  const int64_t n_in = w.ne[0], n_out = w.ne[1], n_tok = x.ne[1];

  // Phase 1: activations into the weight type's activation format, once per matmul.
  const size_t act_row = k->act_row_bytes(n_in);
  const bool direct = k->act_type == DType::F32;
  if (!direct) {
    const Range r = split(n_tok, ctx.ith, ctx.nth);
    for (int64_t j = r.first; j < r.last; ++j)
      k->quantize_act(row_f32(x, j), ctx.work + j * act_row, n_in);
    ctx.barrier();
  }
  auto act = [&](int64_t j) -> const void* {
    return direct ? static_cast<const void*>(row_f32(x, j)) : ctx.work + j * act_row;
  };

  // Phase 2: each thread owns a slice of weight rows; a block of rows is reused
  // across all tokens while it is in cache.
  constexpr int64_t kRowBlock = 16;
  const Range r = split(n_out, ctx.ith, ctx.nth);
  for (int64_t i0 = r.first; i0 < r.last; i0 += kRowBlock) {
    const int64_t i1 = std::min(r.last, i0 + kRowBlock);
    for (int64_t j = 0; j < n_tok; ++j) {
      float* out = row_f32(dst, j);
      const void* a = act(j);
      for (int64_t i = i0; i < i1; ++i) k->vec_dot(n_in, &out[i], row_bytes(w, i), a);
    }
  }
}

template <typename Fn>
void binary(const Tensor& dst, const OpContext& ctx, Fn fn) {
  const Tensor& a = *dst.src[0];
  const Tensor& b = *dst.src[1];
  for_rows(dst, ctx, [&](int64_t i1, int64_t i2, int64_t i3) {
    const float* pa = row_f32(a, i1, i2, i3);
    const float* pb = row_f32(b, i1 % b.ne[1], i2 % b.ne[2], i3 % b.ne[3]);
    float* pd = row_f32(dst, i1, i2, i3);
    for (int64_t i = 0; i < dst.ne[0]; ++i) pd[i] = fn(pa[i], pb[i]);
  });
}

template <typename Fn>
void unary(const Tensor& dst, const OpContext& ctx, Fn fn) {
  const Tensor& a = *dst.src[0];
  for_rows(dst, ctx, [&](int64_t i1, int64_t i2, int64_t i3) {
    const float* pa = row_f32(a, i1, i2, i3);
    float* pd = row_f32(dst, i1, i2, i3);
    for (int64_t i = 0; i < dst.ne[0]; ++i) pd[i] = fn(pa[i]);
  });
}

void rms_norm(const Tensor& dst, const OpContext& ctx) {
  const Tensor& x = *dst.src[0];
  const Tensor* w = dst.src[1];
  const float eps = dst.f_params[0];
  const int64_t n = dst.ne[0];
  for_rows(dst, ctx, [&](int64_t i1, int64_t i2, int64_t i3) {
    const float* px = row_f32(x, i1, i2, i3);
    float* pd = row_f32(dst, i1, i2, i3);
    const double sum_sq = ctx.vec->sum_sq(px, n);
    const float scale = 1.0f / std::sqrt(static_cast<float>(sum_sq / n) + eps);
    if (w) {
      const float* pw = static_cast<const float*>(w->data);
      for (int64_t i = 0; i < n; ++i) pd[i] = px[i] * scale * pw[i];
    } else {
      for (int64_t i = 0; i < n; ++i) pd[i] = px[i] * scale;
    }
  });
}

void layer_norm(const Tensor& dst, const OpContext& ctx) {
  const Tensor& x = *dst.src[0];
  const float* pw = dst.src[1] ? static_cast<const float*>(dst.src[1]->data) : nullptr;
  const float* pb = dst.src[2] ? static_cast<const float*>(dst.src[2]->data) : nullptr;
  const float eps = dst.f_params[0];
  const int64_t n = dst.ne[0];
  for_rows(dst, ctx, [&](int64_t i1, int64_t i2, int64_t i3) {
    const float* px = row_f32(x, i1, i2, i3);
    float* pd = row_f32(dst, i1, i2, i3);
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += px[i];
    const float mean = static_cast<float>(sum / n);
    double sum_sq = 0;
    for (int64_t i = 0; i < n; ++i) sum_sq += static_cast<double>(px[i] - mean) * (px[i] - mean);
    const float scale = 1.0f / std::sqrt(static_cast<float>(sum_sq / n) + eps);
    for (int64_t i = 0; i < n; ++i)
      pd[i] = (px[i] - mean) * scale * (pw ? pw[i] : 1.0f) + (pb ? pb[i] : 0.0f);
  });
}

// YaRN's correction dimension: the pair index whose wavelength fits n_rot turns into
// n_ctx_orig positions (the YaRN paper's r(d) solved for d).
float yarn_corr_dim(int32_t n_dims, int32_t n_ctx_orig, float n_rot, float base) {
  return static_cast<float>(n_dims) * std::log(static_cast<float>(n_ctx_orig) / (n_rot * 2.0f * 3.14159265358979f)) /
         (2.0f * std::log(base));
}

void rope(const Tensor& dst, const OpContext& ctx) {
  const Tensor& x = *dst.src[0];
  const int32_t* pos = static_cast<const int32_t*>(dst.src[1]->data);
  const float* factors = dst.src[2] ? static_cast<const float*>(dst.src[2]->data) : nullptr;
  const int32_t n_dims = dst.i_params[kRopeNDims];
  const bool neox = dst.i_params[kRopeMode] == kRopeModeNeox;
  const float base = dst.f_params[kRopeBase], freq_scale = dst.f_params[kRopeScale];
  const float ext_factor = dst.f_params[kRopeExtFactor];
  float mscale = dst.f_params[kRopeAttnFactor];
  const int64_t hd = dst.ne[0];
  const int32_t half = n_dims / 2;
  // YaRN: pairs below corr_lo keep their original frequency (extrapolate), pairs above
  // corr_hi are interpolated by freq_scale, a linear ramp between.
  float corr_lo = 0, corr_hi = 0;
  if (ext_factor != 0.0f) {
    const int32_t n_ctx_orig = dst.i_params[kRopeNCtxOrig];
    corr_lo = std::max(0.0f, std::floor(yarn_corr_dim(n_dims, n_ctx_orig, dst.f_params[kRopeBetaFast], base)));
    corr_hi = std::min(static_cast<float>(n_dims - 1),
                       std::ceil(yarn_corr_dim(n_dims, n_ctx_orig, dst.f_params[kRopeBetaSlow], base)));
    mscale *= 1.0f + 0.1f * std::log(1.0f / freq_scale);
  }
  // This thread's scratch: the frequencies, then cos and sin of the position whose rows it
  // is on (rows of one token's heads are consecutive, so they share them).
  float* freq = reinterpret_cast<float*>(ctx.work) + static_cast<int64_t>(ctx.ith) * 3 * half;
  float* cos_t = freq + half;
  float* sin_t = cos_t + half;
  for (int32_t i = 0; i < half; ++i) {
    freq[i] = std::pow(base, -2.0f * static_cast<float>(i) / n_dims);
    if (factors) freq[i] /= factors[i];
  }
  int64_t cached_token = -1;
  for_rows(dst, ctx, [&](int64_t i1, int64_t i2, int64_t i3) {
    if (i2 != cached_token) {
      const float p = static_cast<float>(pos[i2]);
      for (int32_t i = 0; i < half; ++i) {
        const float theta_extrap = p * freq[i];
        float theta = theta_extrap * freq_scale;
        if (ext_factor != 0.0f) {
          const float y = (static_cast<float>(i) - corr_lo) / std::max(0.001f, corr_hi - corr_lo);
          const float r = (1.0f - std::min(1.0f, std::max(0.0f, y))) * ext_factor;
          theta = theta * (1.0f - r) + theta_extrap * r;
        }
        cos_t[i] = std::cos(theta) * mscale;
        sin_t[i] = std::sin(theta) * mscale;
      }
      cached_token = i2;
    }
    const float* px = row_f32(x, i1, i2, i3);
    float* pd = row_f32(dst, i1, i2, i3);
    for (int32_t i = 0; i < half; ++i) {
      const int64_t a = neox ? i : 2 * i;
      const int64_t b = neox ? i + half : 2 * i + 1;
      const float x0 = px[a], x1 = px[b];
      pd[a] = x0 * cos_t[i] - x1 * sin_t[i];
      pd[b] = x0 * sin_t[i] + x1 * cos_t[i];
    }
    for (int64_t i = n_dims; i < hd; ++i) pd[i] = px[i];
  });
}

void attention(const Tensor& dst, OpContext& ctx) {
  const Tensor& q = *dst.src[0];
  const Tensor& k = *dst.src[1];
  const Tensor& v = *dst.src[2];
  const Tensor& kc = *dst.src[3];
  const Tensor& vc = *dst.src[4];
  const Tensor* mask = dst.src[5];
  const int64_t hd = q.ne[0], n_head = q.ne[1], n_tok = q.ne[2], n_kv_head = k.ne[1];
  const int32_t window = dst.i_params[kAttnWindow];
  const float scale = dst.f_params[0], softcap = dst.f_params[1];
  // Where batch token t's sequence keeps its rows: cache base, the sequence's n_past and
  // t's index within the sequence's tokens. One sequence (no table): base 0, all tokens.
  const Tensor* seqs = dst.src[6];
  struct Place {
    int64_t base, n_past, index;
  };
  auto place_of = [&](int64_t t) -> Place {
    if (!seqs) return {0, dst.i_params[kAttnNPast], t};
    const int32_t* s = static_cast<const int32_t*>(seqs->data);
    for (int64_t i = 0; i < seqs->ne[1]; ++i, s += 4)
      if (t >= s[0] && t < s[0] + s[1]) return {s[2], s[3], t - s[0]};
    return {-1, 0, 0};  // Graph::attention's caller gave every token a sequence
  };

  // The row kernels of each cache's type (F16 or Q8_0): the weight type's table, SIMD unless
  // the reference kernels were asked for; a table without them falls back to the reference.
  auto row_kernels = [&](DType t) {
    const QuantKernels* k = ctx.kernels(t);
    if (!k || !k->dot_rows || !k->weighted_sum) k = kernels_ref(t);
    if (!k || !k->dot_rows || !k->weighted_sum)
      throw Error(std::string("cpu attention: no row kernels for a ") + dtype_name(t) + " cache");
    return k;
  };
  const QuantKernels* kk = row_kernels(kc.type);
  const QuantKernels* kv = row_kernels(vc.type);

  // Phase 1: store the new keys and values at their positions, rounded to f16 or quantized
  // to q8_0 (the matmul activation quantizer: its blocks are GGUF's Q8_0).
  auto store = [&](const Tensor& cache, const QuantKernels* kt, const float* src, int64_t h, int64_t row) {
    uint8_t* dst = static_cast<uint8_t*>(cache.data) + h * cache.nb[1] + row * cache.nb[2];
    if (cache.type == DType::F16) return ctx.vec->to_f16(hd, reinterpret_cast<uint16_t*>(dst), src);
    kt->quantize_act(src, dst, hd);
  };
  {
    const Range r = split(n_tok * n_kv_head, ctx.ith, ctx.nth);
    for (int64_t ir = r.first; ir < r.last; ++ir) {
      const int64_t t = ir / n_kv_head, h = ir % n_kv_head;
      const Place pl = place_of(t);
      if (pl.base < 0) continue;
      const int64_t row = pl.base + pl.n_past + pl.index;
      store(kc, kk, row_f32(k, h, t), h, row);
      store(vc, kv, row_f32(v, h, t), h, row);
    }
  }
  ctx.barrier();

  // Phase 2: a block of up to kAttnRows consecutive tokens of one sequence and one head at
  // a time, so that a tree step or a prompt reads each head's cached rows once per block
  // rather than once per token (where the row kernels have multi-row forms; else row by row).
  // Blocks are dealt round-robin: with a causal mask a token's work grows with its
  // position, so contiguous ranges would leave the first thread idle half the time.
  const int64_t n_ctx = kc.ne[2];
  const int64_t rows_per_block = std::min<int64_t>(kAttnRows, n_tok);
  float* scores = reinterpret_cast<float*>(ctx.work) + ctx.ith * rows_per_block * (n_ctx + hd);
  const int64_t ld = n_ctx + hd;  // scores of row m of a block start at scores + m * ld
  const int64_t group = n_head / n_kv_head;
  struct Block {
    int64_t first, count;
  };
  // One work item: a block of query rows of one sequence, one head.
  auto work = [&](const Block& blk, int64_t h) {
    const int64_t kvh = h / group;
    const Place pl = place_of(blk.first);
    const int m_rows = static_cast<int>(blk.count);
    const float* pq[kAttnRows];
    float* out[kAttnRows];
    int64_t n_keys[kAttnRows];
    int64_t n_max = 0;
    for (int m = 0; m < m_rows; ++m) {
      pq[m] = row_f32(q, h, blk.first + m);
      out[m] = row_f32(dst, blk.first + m) + h * hd;
    }
    if (pl.base < 0) {
      for (int m = 0; m < m_rows; ++m) std::fill(out[m], out[m] + hd, 0.0f);
      return;
    }
    // From here on positions are the sequence's own: t is the query's index among its
    // sequence's batch tokens, the keys are its rows from `base`.
    const int64_t n_past = pl.n_past;
    for (int m = 0; m < m_rows; ++m) {
      n_keys[m] = mask ? n_past + n_tok : n_past + pl.index + m + 1;
      n_max = std::max(n_max, n_keys[m]);
    }
    const uint8_t* krows = static_cast<const uint8_t*>(kc.data) + static_cast<size_t>(pl.base) * kc.nb[2] + kvh * kc.nb[1];
    const uint8_t* vrows = static_cast<const uint8_t*>(vc.data) + static_cast<size_t>(pl.base) * vc.nb[2] + kvh * vc.nb[1];
    if (m_rows > 1 && kk->dot_rows_multi) {
      kk->dot_rows_multi(hd, scores, static_cast<size_t>(ld), pq, m_rows, krows, kc.nb[2], n_max);
    } else {
      for (int m = 0; m < m_rows; ++m) kk->dot_rows(hd, scores + m * ld, pq[m], krows, kc.nb[2], n_keys[m]);
    }
    for (int m = 0; m < m_rows; ++m) {
      float* sc = scores + m * ld;
      const int64_t t = pl.index + m;
      float softmax_scale = scale;
      if (softcap > 0.0f) {  // c * tanh(scale * s / c), then the softmax unscaled
        for (int64_t j = 0; j < n_keys[m]; ++j) sc[j] = softcap * std::tanh(sc[j] * scale / softcap);
        softmax_scale = 1.0f;
      }
      if (mask) {
        const float* mrow = row_f32(*mask, blk.first + m);
        for (int64_t u = 0; u < n_tok; ++u)
          if (mrow[u] != 0.0f) sc[n_past + u] = -INFINITY;
      }
      if (window > 0)  // keys further back than the window (the query itself is at n_past + t)
        for (int64_t j = 0; j <= n_past + t - window; ++j) sc[j] = -INFINITY;
      ctx.vec->softmax(sc, n_keys[m], softmax_scale);
      // A causal row of a block has fewer keys than the block's last: the rest weigh nothing.
      std::fill(sc + n_keys[m], sc + n_max, 0.0f);
    }
    if (m_rows > 1 && kv->weighted_sum_multi) {
      kv->weighted_sum_multi(hd, out, scores, static_cast<size_t>(ld), m_rows, vrows, vc.nb[2], n_max);
    } else {
      for (int m = 0; m < m_rows; ++m) kv->weighted_sum(hd, out[m], scores + m * ld, vrows, vc.nb[2], n_keys[m]);
    }
  };
  // The work items are (block, head) pairs numbered block-major; thread ith takes items
  // ith, ith + nth, ... Blocks are each sequence's tokens (all of them when there is no
  // table) in runs of kAttnRows, every run inside one sequence. They are walked in order
  // rather than listed, so that a decode step allocates nothing.
  int64_t item = 0;
  auto block = [&](int64_t first, int64_t count) {
    for (int64_t h = 0; h < n_head; ++h, ++item)
      if (item % ctx.nth == ctx.ith) work({first, count}, h);
  };
  auto runs = [&](int64_t first, int64_t count) {
    for (int64_t i = 0; i < count; i += kAttnRows) block(first + i, std::min<int64_t>(kAttnRows, count - i));
  };
  if (!seqs) return runs(0, n_tok);
  const int32_t* s = static_cast<const int32_t*>(seqs->data);
  int64_t covered = 0;
  for (int64_t i = 0; i < seqs->ne[1]; ++i, s += 4) runs(s[0], s[1]), covered += s[1];
  // Tokens of no sequence (Graph::attention's caller gives every token one) come out zero.
  if (covered != n_tok)
    for (int64_t t = 0; t < n_tok; ++t)
      if (place_of(t).base < 0) block(t, 1);
}

// Silu, Gelu (one source) and SwiGlu (gate, up) over this thread's rows.
void activation(const Tensor& dst, const OpContext& ctx) {
  const Tensor& a = *dst.src[0];
  const Tensor* b = dst.op == Op::SwiGlu ? dst.src[1] : nullptr;
  for_rows(dst, ctx, [&](int64_t i1, int64_t i2, int64_t i3) {
    const float* pa = row_f32(a, i1, i2, i3);
    float* pd = row_f32(dst, i1, i2, i3);
    if (dst.op == Op::Gelu) return ctx.vec->gelu(dst.ne[0], pd, pa);
    const float* pb = b ? row_f32(*b, i1 % b->ne[1], i2 % b->ne[2], i3 % b->ne[3]) : nullptr;
    ctx.vec->swiglu(dst.ne[0], pd, pa, pb);
  });
}

bool is_f32(const Tensor* t) { return t == nullptr || t->type == DType::F32; }
// A cache the attention kernel reads: f16, or q8_0 with whole blocks per head.
bool kv_cache_type_ok(DType t, int64_t head_dim) {
  return t == DType::F16 || (t == DType::Q8_0 && head_dim % 32 == 0);
}
bool rows_contiguous(const Tensor* t) {
  return t == nullptr || t->nb[0] == dtype_block_bytes(t->type);
}

}  // namespace

bool cpu_supports(const Tensor& node) {
  for (const Tensor* s : node.src)
    if (!rows_contiguous(s)) return false;
  switch (node.op) {
    case Op::View:
      return true;
    case Op::GetRows:
      return dtype_can_dequantize(node.src[0]->type) && node.src[1]->type == DType::I32;
    case Op::MulMat:
      return kernels_ref(node.src[0]->type) != nullptr && is_f32(node.src[1]) &&
             node.src[1]->ne[2] == 1 && node.src[1]->ne[3] == 1 &&
             node.src[0]->nb[1] == node.src[0]->row_bytes();
    case Op::Add:
    case Op::Mul:
      return is_f32(node.src[0]) && is_f32(node.src[1]);
    case Op::Scale:
    case Op::Silu:
    case Op::Gelu:
    case Op::SoftCap:
    case Op::SwiGlu:
    case Op::Rope:
      return is_f32(node.src[0]) && (!node.src[2] || is_f32(node.src[2]));
    case Op::RmsNorm:
    case Op::LayerNorm:
      return is_f32(node.src[0]) && is_f32(node.src[1]) && is_f32(node.src[2]);
    case Op::Attention:
      return kv_cache_type_ok(node.src[3]->type, node.src[0]->ne[0]) &&
             kv_cache_type_ok(node.src[4]->type, node.src[0]->ne[0]) && is_f32(node.src[5]) &&
             (!node.src[6] || node.src[6]->type == DType::I32);
    case Op::None:
      return true;
  }
  return false;
}

size_t work_bytes(const Tensor& node, int n_threads) {
  switch (node.op) {
    case Op::MulMat: {
      // The tiled driver keeps a chunk counter in front of its activations.
      const QuantKernels* k = kernels_ref(node.src[0]->type);
      if (!k) return 0;
      if (k->act_type == DType::F32) return kMulMatCounterBytes;
      // Q8_0 rows may be in the packed kernels' wider layout (weights repacked).
      const int64_t n_in = node.src[1]->ne[0];
      const size_t row = k->act_type == DType::Q8_0 ? packed_act_row_bytes(n_in) : k->act_row_bytes(n_in);
      return kMulMatCounterBytes + row * static_cast<size_t>(node.src[1]->ne[1]);
    }
    case Op::Attention:  // per thread: the scores of a block of up to kAttnRows query rows
      return sizeof(float) * static_cast<size_t>(n_threads) *
             static_cast<size_t>(std::min<int64_t>(kAttnRows, node.src[0]->ne[2])) *
             static_cast<size_t>(node.src[3]->ne[2] + node.src[0]->ne[0]);
    case Op::Rope:  // per thread: frequencies, cos and sin of n_dims / 2 each
      return sizeof(float) * static_cast<size_t>(n_threads) * 3 *
             static_cast<size_t>(node.i_params[kRopeNDims] / 2);
    default:
      return 0;
  }
}

void compute_node(const Tensor& node, OpContext& ctx) {
  switch (node.op) {
    case Op::None:
    case Op::View:
      return;
    case Op::GetRows: return get_rows(node, ctx);
    case Op::MulMat:
      // The reference loop stays the oracle; every other kernel table gets the tiled driver.
      if (ctx.kernels == kernels_ref) return mul_mat(node, ctx);
      return mul_mat_tiled(node, ctx);
    case Op::Add: return binary(node, ctx, [](float a, float b) { return a + b; });
    case Op::Mul: return binary(node, ctx, [](float a, float b) { return a * b; });
    case Op::Scale: {
      const float s = node.f_params[0];
      return unary(node, ctx, [s](float a) { return a * s; });
    }
    case Op::RmsNorm: return rms_norm(node, ctx);
    case Op::LayerNorm: return layer_norm(node, ctx);
    case Op::Rope: return rope(node, ctx);
    case Op::Attention: return attention(node, ctx);
    case Op::Silu:
    case Op::Gelu:
    case Op::SwiGlu: return activation(node, ctx);
    case Op::SoftCap: {
      const float c = node.f_params[0];
      return unary(node, ctx, [c](float a) { return c * std::tanh(a / c); });
    }
  }
  throw Error(std::string("cpu: op ") + op_name(node.op) + " has no kernel");
}

}  // namespace xent::cpu
