#version 450
// MulMat for prompt batches: a 64 (weight rows) x 32 (tokens) output tile per workgroup,
// K in steps of 32 through shared memory; weights are dequantized once per tile and reused
// by 32 tokens. Each of the 128 threads accumulates a 4 x 4 block in registers.
#include "common.glsl"
#define WEIGHT_BINDING 0
#include "dequant.glsl"

#define BM 64
#define BN 32
#define BK 32
layout(local_size_x = 128) in;
layout(binding = 1) readonly buffer X { float x[]; };
layout(binding = 2) writeonly buffer Dst { float d[]; };

layout(push_constant) uniform Params {
  uint K, M, N;
  uint w_off, w_nb1;
  uint x_off, x_nb1;
  uint d_off, d_nb1;
  uint n_groups_x;
} p;

shared float As[BK][BM + 1];
shared float Bs[BK][BN + 1];

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint m0 = gl_WorkGroupID.x * BM, n0 = gl_WorkGroupID.y * BN;
  const uint tm = (tid % 16u) * 4u, tn = (tid / 16u) * 4u;
  float acc[4][4];
  for (uint i = 0; i < 4u; ++i)
    for (uint j = 0; j < 4u; ++j) acc[i][j] = 0.0;

  for (uint k0 = 0; k0 < p.K; k0 += BK) {
    // Weights: 64 rows x 32 k = 512 groups of 4.
    for (uint i = 0; i < 4u; ++i) {
      const uint idx = tid + i * 128u;
      const uint r = idx / 8u, kq = (idx % 8u) * 4u;
      const uint row = m0 + r, k = k0 + kq;
      vec4 v = vec4(0.0);
      if (row < p.M) {
        const uint rb = p.w_off + row * p.w_nb1;
        if (k + 4u <= p.K) {
          v = load4(rb, k);
        } else {
          for (uint j = 0; j < 4u; ++j)
            if (k + j < p.K) v[j] = load1(rb, k + j);
        }
      }
      As[kq][r] = v.x;
      As[kq + 1u][r] = v.y;
      As[kq + 2u][r] = v.z;
      As[kq + 3u][r] = v.w;
    }
    // Activations: 32 tokens x 32 k.
    for (uint i = 0; i < 8u; ++i) {
      const uint idx = tid + i * 128u;
      const uint c = idx / 32u, kk = idx % 32u;
      const uint col = n0 + c, k = k0 + kk;
      Bs[kk][c] = col < p.N && k < p.K ? x[p.x_off + col * p.x_nb1 + k] : 0.0;
    }
    barrier();
    for (uint kk = 0; kk < BK; ++kk) {
      const vec4 a = vec4(As[kk][tm], As[kk][tm + 1u], As[kk][tm + 2u], As[kk][tm + 3u]);
      const vec4 b = vec4(Bs[kk][tn], Bs[kk][tn + 1u], Bs[kk][tn + 2u], Bs[kk][tn + 3u]);
      for (uint i = 0; i < 4u; ++i)
        for (uint j = 0; j < 4u; ++j) acc[i][j] += a[i] * b[j];
    }
    barrier();
  }
  for (uint j = 0; j < 4u; ++j) {
    const uint col = n0 + tn + j;
    if (col >= p.N) continue;
    for (uint i = 0; i < 4u; ++i) {
      const uint row = m0 + tm + i;
      if (row < p.M) d[p.d_off + col * p.d_nb1 + row] = acc[i][j];
    }
  }
}
