// Shared by every xent compute shader: the push-constant block of the row-wise ops,
// workgroup reductions and the f16 conversion that must round exactly like the CPU.
// USE_SUBGROUPS is defined for the variant used on devices with subgroup arithmetic.
#extension GL_EXT_shader_16bit_storage : require
#ifdef USE_SUBGROUPS
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

// Row-wise ops (add, mul, scale, norms, rope, activations) share one push-constant layout;
// vk-op-rows.cpp fills it (RowParams). Offsets and strides are in elements of the bound
// range. a: first operand, b: second (broadcast over rows by modulo), c: third, d: result.
#define ROW_PARAMS                                                      \
  layout(push_constant) uniform RowParams {                             \
    uint ne0, ne1, ne2, ne3;                                            \
    uint a_off, a_nb1, a_nb2, a_nb3;                                    \
    uint b_off, b_nb1, b_nb2, b_nb3;                                    \
    uint b_ne1, b_ne2, b_ne3, d_off;                                    \
    uint d_nb1, d_nb2, d_nb3, n_groups_x;                               \
    float f0, f1;                                                       \
    uint i0, i1, c_off;                                                 \
  } p;

// A workgroup index from a 2-D dispatch (x is capped at 65535 groups per dimension).
#define GROUP_INDEX() (gl_WorkGroupID.y * p.n_groups_x + gl_WorkGroupID.x)

// Row r of a [ne0, ne1, ne2, ne3] tensor as (i1, i2, i3).
#define ROW_COORDS(r, i1, i2, i3)              \
  const uint i1 = (r) % p.ne1;                 \
  const uint i2 = ((r) / p.ne1) % p.ne2;       \
  const uint i3 = (r) / (p.ne1 * p.ne2);

// Scratch for reductions: one slot per subgroup, or per invocation without subgroups.
// Shaders that reduce have 64 invocations (REDUCE_SIZE below).
shared float wg_red[128];

#ifdef USE_SUBGROUPS
// Sum over the workgroup: subgroup sums first, then the subgroups' partial sums in order
// (deterministic, so every invocation gets the same value).
float wg_sum(float v) {
  v = subgroupAdd(v);
  if (subgroupElect()) wg_red[gl_SubgroupID] = v;
  barrier();
  float t = 0.0;
  for (uint i = 0; i < gl_NumSubgroups; ++i) t += wg_red[i];
  barrier();
  return t;
}

float wg_max(float v) {
  v = subgroupMax(v);
  if (subgroupElect()) wg_red[gl_SubgroupID] = v;
  barrier();
  float t = wg_red[0];
  for (uint i = 1; i < gl_NumSubgroups; ++i) t = max(t, wg_red[i]);
  barrier();
  return t;
}
#else
// Tree reductions through shared memory for devices without subgroup arithmetic. They
// assume REDUCE_SIZE invocations: gl_WorkGroupSize is not known yet where this file is
// included (before the shader's local_size layout), so it cannot be used here.
#ifndef REDUCE_SIZE
#define REDUCE_SIZE 64u
#endif
float wg_sum(float v) {
  const uint i = gl_LocalInvocationIndex;
  wg_red[i] = v;
  barrier();
  for (uint s = REDUCE_SIZE / 2u; s > 0u; s >>= 1) {
    if (i < s) wg_red[i] += wg_red[i + s];
    barrier();
  }
  const float t = wg_red[0];
  barrier();
  return t;
}

float wg_max(float v) {
  const uint i = gl_LocalInvocationIndex;
  wg_red[i] = v;
  barrier();
  for (uint s = REDUCE_SIZE / 2u; s > 0u; s >>= 1) {
    if (i < s) wg_red[i] = max(wg_red[i], wg_red[i + s]);
    barrier();
  }
  const float t = wg_red[0];
  barrier();
  return t;
}
#endif

// -infinity (1.0 / 0.0 is left to constant folding, which compilers need not agree on).
#define NEG_INF uintBitsToFloat(0xff800000u)

float half_to_float(uint h) { return unpackHalf2x16(h).x; }

// f32 -> f16 bits with round-to-nearest-even, like the CPU's f32_to_fp16 (packHalf2x16
// leaves the rounding mode to the driver, and the KV cache must match bit for bit).
uint float_to_half(float f) {
  const uint x = floatBitsToUint(f);
  const uint sign = (x >> 16) & 0x8000u;
  const uint ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return sign | (ax > 0x7f800000u ? 0x7e00u : 0x7c00u);
  if (ax >= 0x477ff000u) return sign | 0x7c00u;  // rounds to 65520 or more: infinity
  if (ax < 0x38800000u) {                        // below 2^-14: f16 subnormal or zero
    const float v = uintBitsToFloat(ax) * 16777216.0;  // in units of 2^-24, exact
    return sign | uint(roundEven(v));
  }
  return sign | ((ax + 0xfffu + ((ax >> 13) & 1u) - 0x38000000u) >> 13);
}
