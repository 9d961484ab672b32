// Weight access for every GGUF type a shader is compiled for (-DWEIGHT_TYPE=<gguf id>):
// load4(row, k) returns elements k..k+3 of a row (k a multiple of 4), load1 one element.
// Quantized blocks are read as 16-bit words: every block size is even, 4-byte alignment is not given.
#define T_F32 0
#define T_F16 1
#define T_Q4_0 2
#define T_Q4_1 3
#define T_Q5_0 6
#define T_Q5_1 7
#define T_Q8_0 8
#define T_Q2_K 10
#define T_Q3_K 11
#define T_Q4_K 12
#define T_Q5_K 13
#define T_Q6_K 14
#define T_BF16 30

#ifndef WEIGHT_BINDING
#define WEIGHT_BINDING 0
#endif

// Row bases (`rb`) are in units of the buffer element: floats for F32, 16-bit words otherwise.
#if WEIGHT_TYPE == T_F32
layout(binding = WEIGHT_BINDING) readonly buffer Weights { float w[]; };
#else
layout(binding = WEIGHT_BINDING) readonly buffer Weights { uint16_t w[]; };
#endif

#if WEIGHT_TYPE == T_Q4_0
#define QK 32
#define BLOCK_BYTES 18
#elif WEIGHT_TYPE == T_Q4_1
#define QK 32
#define BLOCK_BYTES 20
#elif WEIGHT_TYPE == T_Q5_0
#define QK 32
#define BLOCK_BYTES 22
#elif WEIGHT_TYPE == T_Q5_1
#define QK 32
#define BLOCK_BYTES 24
#elif WEIGHT_TYPE == T_Q8_0
#define QK 32
#define BLOCK_BYTES 34
#elif WEIGHT_TYPE == T_Q2_K
#define QK 256
#define BLOCK_BYTES 84
#elif WEIGHT_TYPE == T_Q3_K
#define QK 256
#define BLOCK_BYTES 110
#elif WEIGHT_TYPE == T_Q4_K
#define QK 256
#define BLOCK_BYTES 144
#elif WEIGHT_TYPE == T_Q5_K
#define QK 256
#define BLOCK_BYTES 176
#elif WEIGHT_TYPE == T_Q6_K
#define QK 256
#define BLOCK_BYTES 210
#else
#define QK 1
#define PLAIN_WEIGHTS 1
#endif

#ifndef PLAIN_WEIGHTS
// Byte `b` (from the bound base) and the little-endian word at even byte `b`.
uint rd8(uint b) { return (uint(w[b >> 1]) >> ((b & 1u) << 3)) & 0xffu; }
uint rd32(uint b) { return uint(w[b >> 1]) | (uint(w[(b >> 1) + 1u]) << 16); }
float rdf16(uint b) { return unpackHalf2x16(uint(w[b >> 1])).x; }
vec4 lo_nibbles(uint q) { return vec4(q & 15u, (q >> 8) & 15u, (q >> 16) & 15u, (q >> 24) & 15u); }
vec4 hi_nibbles(uint q) { return vec4((q >> 4) & 15u, (q >> 12) & 15u, (q >> 20) & 15u, q >> 28); }
// Bit `s` of each of the four bytes of q, as 0/1.
vec4 bits_at(uint q, uint s) {
  return vec4((q >> s) & 1u, (q >> (8u + s)) & 1u, (q >> (16u + s)) & 1u, (q >> (24u + s)) & 1u);
}
vec4 crumbs_at(uint q, uint s) {  // 2-bit fields
  return vec4((q >> s) & 3u, (q >> (8u + s)) & 3u, (q >> (16u + s)) & 3u, (q >> (24u + s)) & 3u);
}

// K-quant 6-bit scale and min number j of the 12 packed bytes at `sb` (Q4_K, Q5_K).
void scale_min_k4(uint sb, uint j, out float sc, out float mn) {
  if (j < 4u) {
    sc = float(rd8(sb + j) & 63u);
    mn = float(rd8(sb + j + 4u) & 63u);
  } else {
    sc = float((rd8(sb + j + 4u) & 15u) | ((rd8(sb + j - 4u) >> 6) << 4));
    mn = float((rd8(sb + j + 4u) >> 4) | ((rd8(sb + j) >> 6) << 4));
  }
}

// Elements e..e+3 of the block starting at byte `bb`.
vec4 block4(uint bb, uint e) {
#if WEIGHT_TYPE == T_Q4_0
  const float d = rdf16(bb);
  const uint q = rd32(bb + 2u + (e & 15u));
  return ((e < 16u ? lo_nibbles(q) : hi_nibbles(q)) - 8.0) * d;
#elif WEIGHT_TYPE == T_Q4_1
  const float d = rdf16(bb), m = rdf16(bb + 2u);
  const uint q = rd32(bb + 4u + (e & 15u));
  return (e < 16u ? lo_nibbles(q) : hi_nibbles(q)) * d + m;
#elif WEIGHT_TYPE == T_Q5_0
  const float d = rdf16(bb);
  const uint qh = rd32(bb + 2u) >> e;
  const uint q = rd32(bb + 6u + (e & 15u));
  const vec4 h = vec4(qh & 1u, (qh >> 1) & 1u, (qh >> 2) & 1u, (qh >> 3) & 1u) * 16.0;
  return ((e < 16u ? lo_nibbles(q) : hi_nibbles(q)) + h - 16.0) * d;
#elif WEIGHT_TYPE == T_Q5_1
  const float d = rdf16(bb), m = rdf16(bb + 2u);
  const uint qh = rd32(bb + 4u) >> e;
  const uint q = rd32(bb + 8u + (e & 15u));
  const vec4 h = vec4(qh & 1u, (qh >> 1) & 1u, (qh >> 2) & 1u, (qh >> 3) & 1u) * 16.0;
  return ((e < 16u ? lo_nibbles(q) : hi_nibbles(q)) + h) * d + m;
#elif WEIGHT_TYPE == T_Q8_0
  const float d = rdf16(bb);
  const int q = int(rd32(bb + 2u + e));
  return vec4(bitfieldExtract(q, 0, 8), bitfieldExtract(q, 8, 8), bitfieldExtract(q, 16, 8),
              bitfieldExtract(q, 24, 8)) * d;
#elif WEIGHT_TYPE == T_Q2_K
  // scales[16] @0, qs[64] @16, d @80, dmin @82
  const uint half_ = e >> 7, r = e & 127u, j = r >> 5, l = r & 31u;
  const uint sc = rd8(bb + half_ * 8u + j * 2u + (l >> 4));
  const float d = rdf16(bb + 80u), dmin = rdf16(bb + 82u);
  const vec4 q = crumbs_at(rd32(bb + 16u + 32u * half_ + l), 2u * j);
  return q * (d * float(sc & 15u)) - dmin * float(sc >> 4);
#elif WEIGHT_TYPE == T_Q3_K
  // hmask[32] @0, qs[64] @32, scales[12] @96, d @108
  const uint half_ = e >> 7, r = e & 127u, j = r >> 5, l = r & 31u;
  const uint is = half_ * 8u + j * 2u + (l >> 4);
  const uint lo = (rd8(bb + 96u + (is & 7u)) >> (4u * (is >> 3))) & 15u;
  const uint hi = (rd8(bb + 104u + (is & 3u)) >> (2u * (is >> 2))) & 3u;
  const float sc = float(int(lo | (hi << 4)) - 32);
  const vec4 q = crumbs_at(rd32(bb + 32u + 32u * half_ + l), 2u * j);
  const vec4 h = bits_at(rd32(bb + l), half_ * 4u + j);
  return (q - 4.0 + 4.0 * h) * (rdf16(bb + 108u) * sc);
#elif WEIGHT_TYPE == T_Q4_K
  // d @0, dmin @2, scales[12] @4, qs[128] @16
  const uint g = e >> 6, r = e & 63u, l = r & 31u;
  float sc, mn;
  scale_min_k4(bb + 4u, 2u * g + (r >> 5), sc, mn);
  const uint q = rd32(bb + 16u + 32u * g + l);
  return (r < 32u ? lo_nibbles(q) : hi_nibbles(q)) * (rdf16(bb) * sc) - rdf16(bb + 2u) * mn;
#elif WEIGHT_TYPE == T_Q5_K
  // d @0, dmin @2, scales[12] @4, qh[32] @16, qs[128] @48
  const uint g = e >> 6, r = e & 63u, l = r & 31u, sub = 2u * g + (r >> 5);
  float sc, mn;
  scale_min_k4(bb + 4u, sub, sc, mn);
  const uint q = rd32(bb + 48u + 32u * g + l);
  const vec4 h = bits_at(rd32(bb + 16u + l), sub) * 16.0;
  return ((r < 32u ? lo_nibbles(q) : hi_nibbles(q)) + h) * (rdf16(bb) * sc) - rdf16(bb + 2u) * mn;
#elif WEIGHT_TYPE == T_Q6_K
  // ql[128] @0, qh[64] @128, scales[16] (int8) @192, d @208
  const uint half_ = e >> 7, r = e & 127u, quarter = r >> 5, l = r & 31u;
  const uint ql = rd32(bb + 64u * half_ + l + 32u * (quarter & 1u));
  const vec4 lo = quarter < 2u ? lo_nibbles(ql) : hi_nibbles(ql);
  const vec4 hi = crumbs_at(rd32(bb + 128u + 32u * half_ + l), 2u * quarter);
  const int sc = bitfieldExtract(int(rd8(bb + 192u + 8u * half_ + (l >> 4) + 2u * quarter)), 0, 8);
  return (lo + hi * 16.0 - 32.0) * (rdf16(bb + 208u) * float(sc));
#endif
}
#endif  // !PLAIN_WEIGHTS

#ifdef PLAIN_WEIGHTS
float load1(uint rb, uint k) {
#if WEIGHT_TYPE == T_F32
  return w[rb + k];
#elif WEIGHT_TYPE == T_F16
  return unpackHalf2x16(uint(w[rb + k])).x;
#elif WEIGHT_TYPE == T_BF16
  return uintBitsToFloat(uint(w[rb + k]) << 16);
#endif
}
vec4 load4(uint rb, uint k) {
  return vec4(load1(rb, k), load1(rb, k + 1u), load1(rb, k + 2u), load1(rb, k + 3u));
}
#else
vec4 load4(uint rb, uint k) {
  return block4(rb * 2u + (k / QK) * BLOCK_BYTES, k % QK);
}
float load1(uint rb, uint k) { return load4(rb, k & ~3u)[k & 3u]; }
#endif
