#version 450
// Rope over a [head_dim, n_heads, n_tok] tensor: pairs (2i, 2i+1) (mode 0) or (i, i+half)
// (NeoX, i1 = 1) of the first n_dims (i0) elements rotate by pos * freq_scale (f0) *
// freq[i]. freq[] is computed on the host with the CPU's expression, and the angle is
// reduced to [-pi, pi] here, because GPU sin/cos are only accurate in that range.
#include "common.glsl"

layout(local_size_x = 64) in;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer Pos { int pos[]; };
layout(binding = 2) readonly buffer Freq { float freq[]; };
layout(binding = 3) writeonly buffer D { float d[]; };
ROW_PARAMS

// theta - k * 2pi with 2pi split in two (Cody-Waite): the first part has 8 significant
// bits, so k * C1 is exact for k < 2^16 (angles up to ~400,000 radians).
float reduce_angle(float theta) {
  const float C1 = 6.28125;
  const float C2 = 0.0019353071795864769;
  const float k = roundEven(theta * 0.15915494309189535);
  return (theta - k * C1) - k * C2;
}

void main() {
  const uint r = GROUP_INDEX();
  if (r >= p.ne1 * p.ne2 * p.ne3) return;
  ROW_COORDS(r, i1, i2, i3)
  const uint ab = p.a_off + i1 * p.a_nb1 + i2 * p.a_nb2 + i3 * p.a_nb3;
  const uint db = p.d_off + i1 * p.d_nb1 + i2 * p.d_nb2 + i3 * p.d_nb3;
  const uint n_dims = p.i0, half_ = n_dims / 2u;
  const float pf = float(pos[p.b_off + i2]) * p.f0;
  for (uint i = gl_LocalInvocationID.x; i < half_; i += gl_WorkGroupSize.x) {
    const float theta = reduce_angle(pf * freq[p.c_off + i]);
    const float c = cos(theta), s = sin(theta);
    const uint ia = p.i1 != 0u ? i : 2u * i;
    const uint ib = p.i1 != 0u ? i + half_ : 2u * i + 1u;
    const float x0 = a[ab + ia], x1 = a[ab + ib];
    d[db + ia] = x0 * c - x1 * s;
    d[db + ib] = x0 * s + x1 * c;
  }
  for (uint i = n_dims + gl_LocalInvocationID.x; i < p.ne0; i += gl_WorkGroupSize.x) d[db + i] = a[ab + i];
}
