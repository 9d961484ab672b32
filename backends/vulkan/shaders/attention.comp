#version 450
// Second half of Attention (after kv_store): for batch token t and head h, softmax(q k^T *
// scale) v over cache rows [0, n_past) and the batch rows n_past + u that t may see (u <= t,
// or mask[t][u] == 0 with a token-tree mask). One workgroup per (t, h); keys go in chunks of
// 64, one per invocation, with a running max and sum (online softmax) so any context length
// fits; each invocation accumulates the output dimensions i = lane, lane + 64, ...
#include "common.glsl"

#define WG 64
#define MAX_HD 256
layout(local_size_x = WG) in;
layout(binding = 0) readonly buffer Q { float q[]; };
layout(binding = 1) readonly buffer KC { uint16_t kc[]; };
layout(binding = 2) readonly buffer VC { uint16_t vc[]; };
layout(binding = 3) readonly buffer Mask { float mask[]; };
layout(binding = 4) writeonly buffer D { float d[]; };

layout(push_constant) uniform Params {
  uint hd, n_head, n_kv_head, n_tok;
  uint n_past, has_mask;
  uint q_off, q_nb1, q_nb2;     // floats
  uint kc_off, kc_nb1, kc_nb2;  // f16 elements
  uint vc_off, vc_nb1, vc_nb2;
  uint m_off, m_nb1;            // floats
  uint d_off, d_nb1;            // floats
  float scale;
  uint n_groups_x;
} p;

shared float q_s[MAX_HD];
shared float p_s[WG];

void main() {
  const uint g = gl_WorkGroupID.y * p.n_groups_x + gl_WorkGroupID.x;
  if (g >= p.n_tok * p.n_head) return;
  const uint lane = gl_LocalInvocationID.x;
  const uint t = g / p.n_head, h = g % p.n_head;
  const uint kvh = h / (p.n_head / p.n_kv_head);
  const uint qb = p.q_off + h * p.q_nb1 + t * p.q_nb2;
  for (uint i = lane; i < p.hd; i += WG) q_s[i] = q[qb + i];
  barrier();

  const uint n_keys = p.has_mask != 0u ? p.n_past + p.n_tok : p.n_past + t + 1u;
  const uint kcb = p.kc_off + kvh * p.kc_nb1;
  const uint vcb = p.vc_off + kvh * p.vc_nb1;
  float run_max = NEG_INF, run_sum = 0.0;
  float acc[MAX_HD / WG];
  for (uint c = 0; c < MAX_HD / WG; ++c) acc[c] = 0.0;

  for (uint j0 = 0; j0 < n_keys; j0 += WG) {
    const uint j = j0 + lane;
    float s = NEG_INF;
    if (j < n_keys) {
      const bool hidden = p.has_mask != 0u && j >= p.n_past &&
                          mask[p.m_off + t * p.m_nb1 + (j - p.n_past)] != 0.0;
      if (!hidden) {
        const uint kb = kcb + j * p.kc_nb2;
        float dot_qk = 0.0;
        for (uint i = 0; i < p.hd; ++i) dot_qk += q_s[i] * half_to_float(uint(kc[kb + i]));
        s = dot_qk * p.scale;
      }
    }
    const float new_max = max(run_max, wg_max(s));
    if (new_max == NEG_INF) continue;  // every key so far hidden (uniform)
    const float e = s == NEG_INF ? 0.0 : exp(s - new_max);
    p_s[lane] = e;
    const float corr = exp(run_max - new_max);  // 0 on the first visible chunk
    run_sum = run_sum * corr + wg_sum(e);       // wg_sum's barrier also publishes p_s
    const uint n_here = min(uint(WG), n_keys - j0);
    for (uint c = 0; c < MAX_HD / WG; ++c) {
      const uint i = lane + c * WG;
      if (i >= p.hd) break;
      float a = acc[c] * corr;
      for (uint jj = 0; jj < n_here; ++jj) {
        const float pj = p_s[jj];
        if (pj != 0.0) a += pj * half_to_float(uint(vc[vcb + (j0 + jj) * p.vc_nb2 + i]));
      }
      acc[c] = a;
    }
    barrier();  // p_s is rewritten by the next chunk
    run_max = new_max;
  }
  const float inv = 1.0 / run_sum;
  const uint db = p.d_off + t * p.d_nb1 + h * p.hd;
  for (uint c = 0; c < MAX_HD / WG; ++c) {
    const uint i = lane + c * WG;
    if (i < p.hd) d[db + i] = acc[c] * inv;
  }
}
