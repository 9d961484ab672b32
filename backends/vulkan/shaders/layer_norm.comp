#version 450
// LayerNorm: d = (a - mean) / sqrt(var + eps) * w + bias (w: i0 = 1 when bound, bias:
// i1 = 1). One workgroup per row; mean first, then the variance around it, like the CPU.
#include "common.glsl"

layout(local_size_x = 64) in;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer W { float w[]; };
layout(binding = 2) readonly buffer Bias { float bias[]; };
layout(binding = 3) writeonly buffer D { float d[]; };
ROW_PARAMS

void main() {
  const uint r = GROUP_INDEX();
  if (r >= p.ne1 * p.ne2 * p.ne3) return;
  ROW_COORDS(r, i1, i2, i3)
  const uint ab = p.a_off + i1 * p.a_nb1 + i2 * p.a_nb2 + i3 * p.a_nb3;
  const uint db = p.d_off + i1 * p.d_nb1 + i2 * p.d_nb2 + i3 * p.d_nb3;
  float s = 0.0;
  for (uint i = gl_LocalInvocationID.x; i < p.ne0; i += gl_WorkGroupSize.x) s += a[ab + i];
  const float mean = wg_sum(s) / float(p.ne0);
  float s2 = 0.0;
  for (uint i = gl_LocalInvocationID.x; i < p.ne0; i += gl_WorkGroupSize.x) {
    const float c = a[ab + i] - mean;
    s2 += c * c;
  }
  const float scale = 1.0 / sqrt(wg_sum(s2) / float(p.ne0) + p.f0);
  for (uint i = gl_LocalInvocationID.x; i < p.ne0; i += gl_WorkGroupSize.x) {
    const float wi = p.i0 != 0u ? w[p.b_off + i] : 1.0;
    const float bi = p.i1 != 0u ? bias[p.c_off + i] : 0.0;
    d[db + i] = (a[ab + i] - mean) * scale * wi + bi;
  }
}
