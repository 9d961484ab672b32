// Attention on Vulkan, in two dispatches: kv_store writes the batch's keys and values into
// the f16 caches at rows [n_past, n_past + n_tok), then attention reads them (the barrier
// between dispatches orders the two) with the causal rule or the token-tree mask.
#include <string>

#include "backends/vulkan/vk-backend.h"
#include "formats/error.h"

namespace xent::vk {
namespace {

// Mirror the push constants of kv_store.comp and attention.comp.
struct KvStoreParams {
  uint32_t hd, n_kv_head, n_tok, n_past;
  uint32_t k_off, k_nb1, k_nb2;
  uint32_t v_off, v_nb1, v_nb2;
  uint32_t kc_off, kc_nb1, kc_nb2;
  uint32_t vc_off, vc_nb1, vc_nb2;
  uint32_t n_groups_x;
};

struct AttentionParams {
  uint32_t hd, n_head, n_kv_head, n_tok;
  uint32_t n_past, has_mask;
  uint32_t q_off, q_nb1, q_nb2;
  uint32_t kc_off, kc_nb1, kc_nb2;
  uint32_t vc_off, vc_nb1, vc_nb2;
  uint32_t m_off, m_nb1;
  uint32_t d_off, d_nb1;
  float scale;
  uint32_t n_groups_x;
};
static_assert(sizeof(AttentionParams) <= kPushConstantBytes);

uint32_t f32_stride(size_t nb) { return static_cast<uint32_t>(nb / sizeof(float)); }
uint32_t f16_stride(size_t nb) { return static_cast<uint32_t>(nb / sizeof(uint16_t)); }

}  // namespace

void record_attention(Recorder& r, const Tensor& node) {
  const Tensor& q = *node.src[0];
  const Tensor& k = *node.src[1];
  const Tensor& v = *node.src[2];
  const Tensor& kc = *node.src[3];
  const Tensor& vc = *node.src[4];
  const Tensor* mask = node.src[5];
  const uint32_t hd = static_cast<uint32_t>(q.ne[0]);
  const uint32_t n_head = static_cast<uint32_t>(q.ne[1]);
  const uint32_t n_tok = static_cast<uint32_t>(q.ne[2]);
  const uint32_t n_kv_head = static_cast<uint32_t>(k.ne[1]);
  const uint32_t n_past = static_cast<uint32_t>(node.i_params[kAttnNPast]);

  const Binding bkc = r.bind(kc, 2);
  const Binding bvc = r.bind(vc, 2);
  {
    const Binding bk = r.bind(k, 4);
    const Binding bv = r.bind(v, 4);
    KvStoreParams p{};
    p.hd = hd;
    p.n_kv_head = n_kv_head;
    p.n_tok = n_tok;
    p.n_past = n_past;
    p.k_off = bk.first;
    p.k_nb1 = f32_stride(k.nb[1]);
    p.k_nb2 = f32_stride(k.nb[2]);
    p.v_off = bv.first;
    p.v_nb1 = f32_stride(v.nb[1]);
    p.v_nb2 = f32_stride(v.nb[2]);
    p.kc_off = bkc.first;
    p.kc_nb1 = f16_stride(kc.nb[1]);
    p.kc_nb2 = f16_stride(kc.nb[2]);
    p.vc_off = bvc.first;
    p.vc_nb1 = f16_stride(vc.nb[1]);
    p.vc_nb2 = f16_stride(vc.nb[2]);
    uint32_t gx, gy;
    grid_2d(uint64_t{n_tok} * n_kv_head, &gx, &gy);
    p.n_groups_x = gx;
    r.dispatch("kv_store", {bk, bv, bkc, bvc}, &p, sizeof p, gx, gy);
  }

  const Binding bq = r.bind(q, 4);
  const Binding bd = r.bind(node, 4);
  AttentionParams p{};
  p.hd = hd;
  p.n_head = n_head;
  p.n_kv_head = n_kv_head;
  p.n_tok = n_tok;
  p.n_past = n_past;
  p.q_off = bq.first;
  p.q_nb1 = f32_stride(q.nb[1]);
  p.q_nb2 = f32_stride(q.nb[2]);
  p.kc_off = bkc.first;
  p.kc_nb1 = f16_stride(kc.nb[1]);
  p.kc_nb2 = f16_stride(kc.nb[2]);
  p.vc_off = bvc.first;
  p.vc_nb1 = f16_stride(vc.nb[1]);
  p.vc_nb2 = f16_stride(vc.nb[2]);
  Binding bm = bq;  // bound but unread without a mask
  if (mask) {
    bm = r.bind(*mask, 4);
    p.has_mask = 1;
    p.m_off = bm.first;
    p.m_nb1 = f32_stride(mask->nb[1]);
  }
  p.d_off = bd.first;
  p.d_nb1 = f32_stride(node.nb[1]);
  p.scale = node.f_params[0];
  uint32_t gx, gy;
  grid_2d(uint64_t{n_tok} * n_head, &gx, &gy);
  p.n_groups_x = gx;
  r.dispatch("attention", {bq, bkc, bvc, bm, bd}, &p, sizeof p, gx, gy);
}

}  // namespace xent::vk
