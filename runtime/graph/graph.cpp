#include "runtime/graph/graph.h"

#include <atomic>
#include <string>

#include "formats/error.h"

namespace xent {
namespace {

[[noreturn]] void shape_error(const char* op, const Tensor& a, const Tensor& b) {
  throw Error(std::string("graph: ") + op + ": incompatible shapes " + describe(a) + " and " +
              describe(b));
}

uint64_t next_version() {
  static std::atomic<uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

bool is_row_broadcast(const Tensor& a, const Tensor& b) {
  if (b.ne[0] != a.ne[0]) return false;
  for (int d = 1; d < 4; ++d)
    if (b.ne[d] != 1 && b.ne[d] != a.ne[d]) return false;
  return true;
}

}  // namespace

void Graph::clear() {
  pending_ax_.clear();
  pending_rest_.clear();
  pool_.clear();
  nodes_.clear();
  inputs_.clear();
  output_ = nullptr;
  layer_ = -1;
  seqs_ = nullptr;
  version_ = next_version();
}

void Graph::set_output(Tensor* t) {
  flush_pending();
  if (t != output_) version_ = next_version();
  output_ = t;
}

void Graph::flush_pending() {
  if (pending_ax_.empty()) return;
  nodes_.insert(nodes_.end(), pending_ax_.begin(), pending_ax_.end());
  nodes_.insert(nodes_.end(), pending_rest_.begin(), pending_rest_.end());
  pending_ax_.clear();
  pending_rest_.clear();
}

Tensor* Graph::new_node(Op op, DType type, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3, bool listed) {
  // A node other than another mul_mat of the pending deltas' x may read them: list them first.
  if (listed && op != Op::MulMat) flush_pending();
  Tensor& t = pool_.emplace_back();
  t.op = op;
  t.type = type;
  t.ne[0] = ne0;
  t.ne[1] = ne1;
  t.ne[2] = ne2;
  t.ne[3] = ne3;
  t.set_contiguous_strides();
  t.layer = layer_;
  t.name = op_name(op);
  if (op != Op::None && listed) nodes_.push_back(&t);
  version_ = next_version();
  return &t;
}

Tensor* Graph::input(DType type, int64_t ne0, int64_t ne1, const char* name) {
  Tensor* t = new_node(Op::None, type, ne0, ne1, 1, 1);
  t->name = name;
  inputs_.push_back(t);
  return t;
}

const std::vector<Graph::WeightDelta>* Graph::deltas_of(const Tensor* w) const {
  if (!deltas_ || deltas_->empty()) return nullptr;
  auto it = deltas_->find(w);
  return it == deltas_->end() ? nullptr : &it->second;
}

Tensor* Graph::get_rows(Tensor* table, Tensor* ids) {
  Tensor* t = plain_get_rows(table, ids);
  if (const std::vector<WeightDelta>* ds = deltas_of(table))
    for (const WeightDelta& d : *ds)
      if (d.embedding) t = add(t, scale(plain_mul_mat(d.b, plain_get_rows(d.a, ids)), d.scale));
  return t;
}

Tensor* Graph::mul_mat(Tensor* w, Tensor* x) {
  Tensor* t = plain_mul_mat(w, x);
  const std::vector<WeightDelta>* ds = deltas_of(w);
  if (!ds) return t;
  // t + s·b·(a·x), built unlisted (see flush_pending); scaling the [r, n] product is cheaper
  // than scaling the [n_out, n] one and the same sum.
  for (const WeightDelta& d : *ds) {
    if (d.embedding) continue;
    if (d.a->ne[0] != x->ne[0] || d.b->ne[0] != d.a->ne[1] || d.b->ne[1] != w->ne[1]) shape_error("lora", *w, *d.a);
    Tensor* ax = new_node(Op::MulMat, DType::F32, d.a->ne[1], x->ne[1], x->ne[2], x->ne[3], false);
    ax->src[0] = d.a;
    ax->src[1] = x;
    Tensor* sx = new_node(Op::Scale, DType::F32, ax->ne[0], ax->ne[1], ax->ne[2], ax->ne[3], false);
    sx->src[0] = ax;
    sx->f_params[0] = d.scale;
    Tensor* bx = new_node(Op::MulMat, DType::F32, d.b->ne[1], x->ne[1], x->ne[2], x->ne[3], false);
    bx->src[0] = d.b;
    bx->src[1] = sx;
    Tensor* sum = new_node(Op::Add, DType::F32, t->ne[0], t->ne[1], t->ne[2], t->ne[3], false);
    sum->src[0] = t;
    sum->src[1] = bx;
    pending_ax_.push_back(ax);
    pending_rest_.insert(pending_rest_.end(), {sx, bx, sum});
    t = sum;
  }
  return t;
}

Tensor* Graph::plain_get_rows(Tensor* table, Tensor* ids) {
  if (ids->type != DType::I32 || ids->ne[1] != 1) shape_error("get_rows", *table, *ids);
  Tensor* t = new_node(Op::GetRows, DType::F32, table->ne[0], ids->ne[0], 1, 1);
  t->src[0] = table;
  t->src[1] = ids;
  return t;
}

Tensor* Graph::plain_mul_mat(Tensor* w, Tensor* x) {
  if (w->ne[0] != x->ne[0] || x->type != DType::F32 || w->ne[2] != 1 || w->ne[3] != 1)
    shape_error("mul_mat", *w, *x);
  if (!pending_ax_.empty() && pending_ax_.front()->src[1] != x) flush_pending();
  Tensor* t = new_node(Op::MulMat, DType::F32, w->ne[1], x->ne[1], x->ne[2], x->ne[3]);
  t->src[0] = w;
  t->src[1] = x;
  return t;
}

Tensor* Graph::add(Tensor* a, Tensor* b) {
  if (!is_row_broadcast(*a, *b)) shape_error("add", *a, *b);
  Tensor* t = new_node(Op::Add, DType::F32, a->ne[0], a->ne[1], a->ne[2], a->ne[3]);
  t->src[0] = a;
  t->src[1] = b;
  return t;
}

Tensor* Graph::mul(Tensor* a, Tensor* b) {
  if (!is_row_broadcast(*a, *b)) shape_error("mul", *a, *b);
  Tensor* t = new_node(Op::Mul, DType::F32, a->ne[0], a->ne[1], a->ne[2], a->ne[3]);
  t->src[0] = a;
  t->src[1] = b;
  return t;
}

Tensor* Graph::scale(Tensor* a, float s) {
  Tensor* t = new_node(Op::Scale, DType::F32, a->ne[0], a->ne[1], a->ne[2], a->ne[3]);
  t->src[0] = a;
  t->f_params[0] = s;
  return t;
}

Tensor* Graph::rms_norm(Tensor* x, Tensor* weight, float eps) {
  if (weight && weight->ne[0] != x->ne[0]) shape_error("rms_norm", *x, *weight);
  Tensor* t = new_node(Op::RmsNorm, DType::F32, x->ne[0], x->ne[1], x->ne[2], x->ne[3]);
  t->src[0] = x;
  t->src[1] = weight;
  t->f_params[0] = eps;
  return t;
}

Tensor* Graph::layer_norm(Tensor* x, Tensor* weight, Tensor* bias, float eps) {
  if (weight && weight->ne[0] != x->ne[0]) shape_error("layer_norm", *x, *weight);
  if (bias && bias->ne[0] != x->ne[0]) shape_error("layer_norm", *x, *bias);
  Tensor* t = new_node(Op::LayerNorm, DType::F32, x->ne[0], x->ne[1], x->ne[2], x->ne[3]);
  t->src[0] = x;
  t->src[1] = weight;
  t->src[2] = bias;
  t->f_params[0] = eps;
  return t;
}

Tensor* Graph::rope(Tensor* x, Tensor* positions, int32_t n_dims, int32_t mode, float freq_base,
                    float freq_scale, const RopeExtra& extra) {
  if (positions->type != DType::I32 || positions->ne[0] != x->ne[2] || n_dims > x->ne[0] ||
      n_dims % 2 != 0)
    shape_error("rope", *x, *positions);
  if (extra.freq_factors && (extra.freq_factors->type != DType::F32 || extra.freq_factors->ne[0] != n_dims / 2 ||
                             extra.freq_factors->n_rows() != 1))
    shape_error("rope frequency factors", *x, *extra.freq_factors);
  Tensor* t = new_node(Op::Rope, DType::F32, x->ne[0], x->ne[1], x->ne[2], x->ne[3]);
  t->src[0] = x;
  t->src[1] = positions;
  t->i_params[kRopeNDims] = n_dims;
  t->i_params[kRopeMode] = mode;
  t->i_params[kRopeNCtxOrig] = extra.n_ctx_orig;
  t->src[2] = extra.freq_factors;
  t->f_params[kRopeBase] = freq_base;
  t->f_params[kRopeScale] = freq_scale;
  t->f_params[kRopeExtFactor] = extra.ext_factor;
  t->f_params[kRopeAttnFactor] = extra.attn_factor;
  t->f_params[kRopeBetaFast] = extra.beta_fast;
  t->f_params[kRopeBetaSlow] = extra.beta_slow;
  return t;
}

Tensor* Graph::attention(Tensor* q, Tensor* k, Tensor* v, Tensor* k_cache, Tensor* v_cache,
                         int32_t n_past, float scale, Tensor* mask, int32_t window, float softcap) {
  const int64_t hd = q->ne[0], n_head = q->ne[1], n_tok = q->ne[2];
  const int64_t n_kv_head = k->ne[1];
  if (k->ne[0] != hd || v->ne[0] != hd || v->ne[1] != n_kv_head || k->ne[2] != n_tok ||
      v->ne[2] != n_tok || n_kv_head == 0 || n_head % n_kv_head != 0)
    shape_error("attention", *q, *k);
  if (k_cache->ne[0] != hd || k_cache->ne[1] != n_kv_head || v_cache->ne[0] != hd ||
      v_cache->ne[1] != n_kv_head)
    shape_error("attention (cache)", *k, *k_cache);
  if (n_past < 0 || n_past + n_tok > k_cache->ne[2])
    throw Error("graph: attention: positions [" + std::to_string(n_past) + ", " +
                std::to_string(n_past + n_tok) + ") exceed the KV cache of " +
                std::to_string(k_cache->ne[2]) + " tokens");
  if (mask && (mask->type != DType::F32 || mask->ne[0] != n_tok || mask->ne[1] != n_tok))
    shape_error("attention (mask)", *q, *mask);
  // A token-tree mask's rows are not at consecutive positions, which the window assumes.
  if (mask && window > 0) throw Error("graph: sliding-window attention with a token-tree mask is not supported");
  if (seqs_ && (mask || seqs_->type != DType::I32 || seqs_->ne[0] != 4))
    throw Error("graph: attention: a sequence table is [4, n_seq] i32 and excludes a token-tree mask");
  if (window < 0 || softcap < 0) throw Error("graph: attention: negative window or soft-cap");
  Tensor* t = new_node(Op::Attention, DType::F32, hd * n_head, n_tok, 1, 1);
  t->src[0] = q;
  t->src[1] = k;
  t->src[2] = v;
  t->src[3] = k_cache;
  t->src[4] = v_cache;
  t->src[5] = mask;
  t->src[6] = seqs_;
  t->i_params[kAttnNPast] = seqs_ ? 0 : n_past;
  t->i_params[kAttnWindow] = window;
  t->f_params[0] = scale;
  t->f_params[1] = softcap;
  return t;
}

Tensor* Graph::soft_cap(Tensor* x, float cap) {
  if (!(cap > 0)) throw Error("graph: soft_cap needs a positive cap");
  Tensor* t = new_node(Op::SoftCap, DType::F32, x->ne[0], x->ne[1], x->ne[2], x->ne[3]);
  t->src[0] = x;
  t->f_params[0] = cap;
  return t;
}

Tensor* Graph::silu(Tensor* x) {
  Tensor* t = new_node(Op::Silu, DType::F32, x->ne[0], x->ne[1], x->ne[2], x->ne[3]);
  t->src[0] = x;
  return t;
}

Tensor* Graph::gelu(Tensor* x) {
  Tensor* t = new_node(Op::Gelu, DType::F32, x->ne[0], x->ne[1], x->ne[2], x->ne[3]);
  t->src[0] = x;
  return t;
}

Tensor* Graph::swiglu(Tensor* gate, Tensor* up) {
  for (int d = 0; d < 4; ++d)
    if (gate->ne[d] != up->ne[d]) shape_error("swiglu", *gate, *up);
  Tensor* t = new_node(Op::SwiGlu, DType::F32, gate->ne[0], gate->ne[1], gate->ne[2], gate->ne[3]);
  t->src[0] = gate;
  t->src[1] = up;
  return t;
}

Tensor* Graph::reshape(Tensor* x, int64_t ne0, int64_t ne1, int64_t ne2) {
  if (!x->is_contiguous() || ne0 * ne1 * ne2 != x->n_elements())
    throw Error("graph: reshape of " + describe(*x) + " to " + std::to_string(ne0) + "x" +
                std::to_string(ne1) + "x" + std::to_string(ne2) + " is not possible");
  Tensor* t = new_node(Op::View, x->type, ne0, ne1, ne2, 1);
  t->src[0] = x;
  return t;
}

Tensor* Graph::view(Tensor* x, int64_t ne0, int64_t ne1, int64_t ne2, size_t nb1, size_t nb2,
                    size_t offset_bytes) {
  Tensor* t = new_node(Op::View, x->type, ne0, ne1, ne2, 1);
  t->nb[1] = nb1;
  t->nb[2] = nb2;
  t->nb[3] = nb2 * static_cast<size_t>(ne2);
  t->src[0] = x;
  t->view_offset = offset_bytes;
  if (offset_bytes + t->n_bytes() > x->n_bytes())
    throw Error("graph: view of " + describe(*t) + " at byte " + std::to_string(offset_bytes) +
                " runs past its source " + describe(*x));
  return t;
}

Tensor* Graph::rows(Tensor* x, int64_t first, int64_t n) {
  return view(x, x->ne[0], n, 1, x->nb[1], x->nb[1] * static_cast<size_t>(n),
              x->nb[1] * static_cast<size_t>(first));
}

}  // namespace xent
