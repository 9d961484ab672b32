#version 450
// RmsNorm: d = a / sqrt(mean(a^2) + eps) * w (w optional: i0 = 1 when bound). One
// workgroup per row; eps = f0.
#include "common.glsl"

layout(local_size_x = 64) in;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer W { float w[]; };
layout(binding = 2) writeonly buffer D { float d[]; };
ROW_PARAMS

void main() {
  const uint r = GROUP_INDEX();
  if (r >= p.ne1 * p.ne2 * p.ne3) return;
  ROW_COORDS(r, i1, i2, i3)
  const uint ab = p.a_off + i1 * p.a_nb1 + i2 * p.a_nb2 + i3 * p.a_nb3;
  const uint db = p.d_off + i1 * p.d_nb1 + i2 * p.d_nb2 + i3 * p.d_nb3;
  float s = 0.0;
  for (uint i = gl_LocalInvocationID.x; i < p.ne0; i += gl_WorkGroupSize.x) s += a[ab + i] * a[ab + i];
  s = wg_sum(s);
  const float scale = 1.0 / sqrt(s / float(p.ne0) + p.f0);
  for (uint i = gl_LocalInvocationID.x; i < p.ne0; i += gl_WorkGroupSize.x)
    d[db + i] = a[ab + i] * scale * (p.i0 != 0u ? w[p.b_off + i] : 1.0);
}
