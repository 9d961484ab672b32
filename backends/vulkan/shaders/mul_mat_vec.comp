#version 450
// MulMat for a few activation columns (decode): each workgroup of 64 invocations computes
// 8 weight rows for up to NCOLS columns, 8 invocations per row, so each weight row is read
// once for up to 8 tokens, and one barrier per workgroup serves every row and column
// (barriers are what cost most on CPU implementations such as lavapipe).
#include "common.glsl"
#define WEIGHT_BINDING 0
#include "dequant.glsl"

#define NCOLS 8
#define ROWS 8
#define LANES 8
layout(local_size_x = 64) in;
layout(binding = 1) readonly buffer X { float x[]; };
layout(binding = 2) writeonly buffer Dst { float d[]; };

layout(push_constant) uniform Params {
  uint K, M, N;         // inner size, weight rows in this dispatch, activation columns
  uint w_off, w_nb1;    // buffer elements
  uint x_off, x_nb1;    // floats
  uint d_off, d_nb1;    // floats; weight row r goes to element d_off + col * d_nb1 + r
  uint n_groups_x;
} p;

shared float partial[NCOLS][64];

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint lane = tid % LANES;
  const uint row = (gl_WorkGroupID.y * p.n_groups_x + gl_WorkGroupID.x) * ROWS + tid / LANES;
  const uint col0 = gl_WorkGroupID.z * NCOLS;
  const uint ncols = min(NCOLS, p.N - col0);
  float acc[NCOLS];
  for (uint c = 0; c < NCOLS; ++c) acc[c] = 0.0;
  if (row < p.M) {
    const uint rb = p.w_off + row * p.w_nb1;
    const uint k4 = p.K & ~3u;
    for (uint k = lane * 4u; k < k4; k += 4u * LANES) {
      const vec4 wv = load4(rb, k);
      // Constant bounds keep acc[] in registers; the guard skips absent columns.
      for (uint c = 0; c < NCOLS; ++c) {
        if (c < ncols) {
          const uint xb = p.x_off + (col0 + c) * p.x_nb1 + k;
          acc[c] += dot(wv, vec4(x[xb], x[xb + 1u], x[xb + 2u], x[xb + 3u]));
        }
      }
    }
    for (uint k = k4 + lane; k < p.K; k += LANES) {
      const float wk = load1(rb, k);
      for (uint c = 0; c < NCOLS; ++c)
        if (c < ncols) acc[c] += wk * x[p.x_off + (col0 + c) * p.x_nb1 + k];
    }
  }
  for (uint c = 0; c < NCOLS; ++c) partial[c][tid] = acc[c];
  barrier();
  if (lane == 0u && row < p.M) {
    for (uint c = 0; c < NCOLS; ++c) {
      if (c < ncols) {
        float s = 0.0;
        for (uint i = 0; i < LANES; ++i) s += partial[c][tid + i];
        d[p.d_off + (col0 + c) * p.d_nb1 + row] = s;
      }
    }
  }
}
