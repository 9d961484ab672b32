#version 450
// First half of Attention: writes the batch's keys and values (f32) into the f16 caches at
// rows n_past + t, rounding to nearest even like the CPU. One workgroup per (token, kv head).
#include "common.glsl"

layout(local_size_x = 64) in;
layout(binding = 0) readonly buffer K { float k[]; };
layout(binding = 1) readonly buffer V { float v[]; };
layout(binding = 2) writeonly buffer KC { uint16_t kc[]; };
layout(binding = 3) writeonly buffer VC { uint16_t vc[]; };

layout(push_constant) uniform Params {
  uint hd, n_kv_head, n_tok, n_past;
  uint k_off, k_nb1, k_nb2;     // floats
  uint v_off, v_nb1, v_nb2;
  uint kc_off, kc_nb1, kc_nb2;  // f16 elements
  uint vc_off, vc_nb1, vc_nb2;
  uint n_groups_x;
} p;

void main() {
  const uint g = gl_WorkGroupID.y * p.n_groups_x + gl_WorkGroupID.x;
  if (g >= p.n_tok * p.n_kv_head) return;
  const uint t = g / p.n_kv_head, h = g % p.n_kv_head;
  const uint kb = p.k_off + h * p.k_nb1 + t * p.k_nb2;
  const uint vb = p.v_off + h * p.v_nb1 + t * p.v_nb2;
  const uint kcb = p.kc_off + h * p.kc_nb1 + (p.n_past + t) * p.kc_nb2;
  const uint vcb = p.vc_off + h * p.vc_nb1 + (p.n_past + t) * p.vc_nb2;
  for (uint i = gl_LocalInvocationID.x; i < p.hd; i += gl_WorkGroupSize.x) {
    kc[kcb + i] = uint16_t(float_to_half(k[kb + i]));
    vc[vcb + i] = uint16_t(float_to_half(v[vb + i]));
  }
}
