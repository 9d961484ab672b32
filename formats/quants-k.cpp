// The reference (de)quantizers of the K-quant types (Q2_K..Q6_K, Q8_K: 256-element
// super-blocks), bit for bit like ggml's: keep the float expressions' operation order.
#include "formats/quants-k.h"

#include <cmath>
#include <cstring>

#include "formats/quants.h"

// Fusing a*b+c into one FMA changes the rounding and with it the chosen scales and bytes
// (measured: 70% identical Q5_K blocks with -march=native). Compilers fuse by default
// wherever FMA is baseline (aarch64) or enabled, even in ISO C++ mode, so forbid it here.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace xent {

// ---------------------------------------------------------------------------------------
// Group searches and packing shared by the K-quant types
// ---------------------------------------------------------------------------------------

namespace {

// Round to nearest, ties to even, for |v| < 2^22. Adding 1.5 * 2^23 puts the integer part
// of v in the low mantissa bits with the FPU's default rounding; ggml's quantizers round
// exactly this way (not like std::round, which sends ties away from zero).
int round_even(float v) {
  const float shifted = v + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  return (bits & 0x007fffff) - 0x00400000;
}

int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Groups whose largest magnitude is below this are treated as all zero.
constexpr float kGroupMaxEps = 1e-15f;

// Symmetric search over a group with weights x^2 (ggml's make_qx_quants, rmse_type 1, no
// importance weights). Levels q = l + nmax, l in [-nmax, nmax-1]; returns the scale of
// x ~ scale * l. Tries 18 scales around -nmax/max and keeps the best least-squares fit.
float search_symmetric(int n, int nmax, const float* x, int8_t* levels) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) levels[i] = 0;
    return 0.f;
  }
  // Accumulates the weighted sums of the fit for one inverse scale.
  auto fit = [&](float iscale, float* sumlx, float* suml2) {
    *sumlx = 0;
    *suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_int(round_even(iscale * x[i]), -nmax, nmax - 1);
      const float w = x[i] * x[i];
      *sumlx += w * x[i] * static_cast<float>(l);
      *suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
  };
  auto assign = [&](float iscale) {
    for (int i = 0; i < n; ++i)
      levels[i] = static_cast<int8_t>(nmax + clamp_int(round_even(iscale * x[i]), -nmax, nmax - 1));
  };
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx, suml2;
  fit(iscale, &sumlx, &suml2);
  assign(iscale);
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int step = -9; step <= 9; ++step) {
    if (step == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(step)) / max;
    fit(iscale, &sumlx, &suml2);
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      assign(iscale);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Q3_K's group search (ggml's make_q3_quants with rmse): start from -nmax/max, then move
// single levels while that improves the x^2-weighted fit, up to 5 sweeps. Levels come
// back offset by nmax (0..2*nmax-1); an all-zero group gets levels 0 and scale 0.
float search_q3(int n, int nmax, const float* x, int8_t* levels) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) levels[i] = 0;
    return 0.f;
  }
  const float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_int(round_even(iscale * x[i]), -nmax, nmax - 1);
    levels[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  for (int sweep = 0; sweep < 5; ++sweep) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      const float li = static_cast<float>(levels[i]);
      float slx = sumlx - w * x[i] * li;
      if (!(slx > 0)) continue;
      float sl2 = suml2 - w * li * li;
      const int nl = clamp_int(round_even(x[i] * sl2 / slx), -nmax, nmax - 1);
      if (nl == levels[i]) continue;
      const float fl = static_cast<float>(nl);
      slx += w * x[i] * fl;
      sl2 += w * fl * fl;
      // Compare sumlx^2/suml2 (the fit's explained energy) without dividing.
      if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
        levels[i] = static_cast<int8_t>(nl);
        sumlx = slx;
        suml2 = sl2;
        ++changed;
      }
    }
    if (!changed) break;
  }
  for (int i = 0; i < n; ++i) levels[i] = static_cast<int8_t>(levels[i] + nmax);
  return sumlx / suml2;
}

// Asymmetric search x ~ scale * q - min_out with q in 0..nmax and min_out >= 0 (ggml's
// make_qkx2_quants): start from the min/max fit, then for nstep+1 inverse scales
// (nmax + rmin + rdelta*k) / range solve the weighted least-squares scale and offset and keep
// the one with the smallest weighted error (|e| if use_abs, else e^2).
float search_scale_min(int n, int nmax, const float* x, const float* weights, uint8_t* levels,
                       float* min_out, float rmin, float rdelta, int nstep, bool use_abs) {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;  // the offset only ever lowers the grid
  if (max == min) {
    for (int i = 0; i < n; ++i) levels[i] = 0;
    *min_out = -min;
    return 0.f;
  }
  auto error_of = [&](float e) { return use_abs ? std::fabs(e) : e * e; };
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_err = 0;
  for (int i = 0; i < n; ++i) {
    const int l = round_even(iscale * (x[i] - min));
    levels[i] = static_cast<uint8_t>(clamp_int(l, 0, nmax));
    const float e = scale * static_cast<float>(levels[i]) + min - x[i];
    best_err += weights[i] * error_of(e);
  }
  if (nstep < 1) {
    *min_out = -min;
    return scale;
  }
  uint8_t trial[32];  // n <= 32 for every caller
  for (int step = 0; step <= nstep; ++step) {
    iscale = (rmin + rdelta * static_cast<float>(step) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_int(round_even(iscale * (x[i] - min)), 0, nmax);
      trial[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      const float fl = static_cast<float>(l);
      sum_l += w * fl;
      sum_l2 += w * fl * fl;
      sum_xl += w * fl * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (!(det > 0)) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
    if (this_min > 0) {
      this_min = 0;
      this_scale = sum_xl / sum_l2;
    }
    float err = 0;
    for (int i = 0; i < n; ++i) {
      const float e = this_scale * static_cast<float>(trial[i]) + this_min - x[i];
      err += weights[i] * error_of(e);
    }
    if (err < best_err) {
      std::memcpy(levels, trial, static_cast<size_t>(n));
      best_err = err;
      scale = this_scale;
      min = this_min;
    }
  }
  *min_out = -min;
  return scale;
}

// The 6-bit scale/min pair k (0..7) of Q4_K/Q5_K; see BlockQ4_K for the packing.
void unpack_scale_min(const uint8_t* packed, int k, uint8_t* sc, uint8_t* m) {
  if (k < 4) {
    *sc = packed[k] & 63;
    *m = packed[k + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((packed[k + 4] & 0xF) | ((packed[k - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((packed[k + 4] >> 4) | ((packed[k] >> 6) << 4));
  }
}

void pack_scale_min(uint8_t* packed, int k, uint8_t sc, uint8_t m) {
  if (k < 4) {
    packed[k] = sc;
    packed[k + 4] = m;
  } else {
    packed[k + 4] = static_cast<uint8_t>((sc & 0xF) | ((m & 0xF) << 4));
    packed[k - 4] = static_cast<uint8_t>(packed[k - 4] | ((sc >> 4) << 6));
    packed[k] = static_cast<uint8_t>(packed[k] | ((m >> 4) << 6));
  }
}

// The signed 6-bit scale k (0..15) of Q3_K, still offset by 32; see BlockQ3_K.
int unpack_q3_scale(const uint8_t* packed, int k) {
  const int low = k < 8 ? (packed[k] & 0xF) : (packed[k - 8] >> 4);
  const int high = (packed[8 + k % 4] >> (2 * (k / 4))) & 3;
  return low | (high << 4);
}

// 2-bit packing shared by Q2_K and Q3_K: per 128 elements, byte l gets l, l+32, l+64, l+96.
void pack_2bit(const uint8_t* levels, uint8_t* qs) {
  for (int half = 0; half < kQkK; half += 128) {
    for (int l = 0; l < 32; ++l) {
      const uint8_t* q = levels + half + l;
      qs[half / 4 + l] = static_cast<uint8_t>(q[0] | (q[32] << 2) | (q[64] << 4) | (q[96] << 6));
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Quantizers and dequantizers
// ---------------------------------------------------------------------------------------

void quantize_q2_k(const float* x, BlockQ2_K* y) {
  uint8_t levels[kQkK];
  float scales[16], mins[16], weights[16];
  float max_scale = 0, max_min = 0;
  for (int k = 0; k < 16; ++k) {
    const float* g = x + 16 * k;
    for (int l = 0; l < 16; ++l) weights[l] = std::fabs(g[l]);
    scales[k] = search_scale_min(16, 3, g, weights, levels + 16 * k, &mins[k], -0.5f, 0.1f, 15, true);
    if (scales[k] > max_scale) max_scale = scales[k];
    if (mins[k] > max_min) max_min = mins[k];
  }
  // Sub-block scales and mins are 4-bit multiples of d and dmin.
  constexpr float kTop = 15.f;
  for (int k = 0; k < 16; ++k) y->scales[k] = 0;
  if (max_scale > 0) {
    const float iscale = kTop / max_scale;
    for (int k = 0; k < 16; ++k) y->scales[k] = static_cast<uint8_t>(round_even(iscale * scales[k]));
    y->d = f32_to_fp16(max_scale / kTop);
  } else {
    y->d = f32_to_fp16(0.f);
  }
  if (max_min > 0) {
    const float iscale = kTop / max_min;
    for (int k = 0; k < 16; ++k)
      y->scales[k] = static_cast<uint8_t>(y->scales[k] | (round_even(iscale * mins[k]) << 4));
    y->dmin = f32_to_fp16(max_min / kTop);
  } else {
    y->dmin = f32_to_fp16(0.f);
  }
  // Re-pick the levels against the scales as stored (rounded), not the searched ones.
  const float d_all = fp16_to_f32(y->d), dmin_all = fp16_to_f32(y->dmin);
  for (int k = 0; k < 16; ++k) {
    const float d = d_all * static_cast<float>(y->scales[k] & 0xF);
    if (d == 0) continue;
    const float dm = dmin_all * static_cast<float>(y->scales[k] >> 4);
    for (int l = 0; l < 16; ++l)
      levels[16 * k + l] = static_cast<uint8_t>(clamp_int(round_even((x[16 * k + l] + dm) / d), 0, 3));
  }
  pack_2bit(levels, y->qs);
}

void dequantize_q2_k(const BlockQ2_K* b, float* y) {
  const float d = fp16_to_f32(b->d), dmin = fp16_to_f32(b->dmin);
  for (int i = 0; i < kQkK; ++i) {
    const int k = i / 16;  // sub-block
    const int half = i / 128, lane = i % 32, shift = 2 * ((i % 128) / 32);
    const int q = (b->qs[half * 32 + lane] >> shift) & 3;
    const float dl = d * static_cast<float>(b->scales[k] & 0xF);
    const float ml = dmin * static_cast<float>(b->scales[k] >> 4);
    y[i] = dl * static_cast<float>(q) - ml;
  }
}

void quantize_q3_k(const float* x, BlockQ3_K* y) {
  int8_t levels[kQkK];
  float scales[16];
  float max_scale = 0, amax = 0;
  for (int k = 0; k < 16; ++k) {
    scales[k] = search_q3(16, 4, x + 16 * k, levels + 16 * k);
    if (std::fabs(scales[k]) > amax) {
      amax = std::fabs(scales[k]);
      max_scale = scales[k];
    }
  }
  std::memset(y->scales, 0, sizeof y->scales);
  if (max_scale != 0) {
    const float iscale = -32.f / max_scale;
    for (int k = 0; k < 16; ++k) {
      // The reference narrows to int8 before clamping; |iscale*scale| <= 32 keeps it exact.
      const int l = clamp_int(static_cast<int8_t>(round_even(iscale * scales[k])), -32, 31) + 32;
      if (k < 8)
        y->scales[k] = static_cast<uint8_t>(l & 0xF);
      else
        y->scales[k - 8] = static_cast<uint8_t>(y->scales[k - 8] | ((l & 0xF) << 4));
      y->scales[8 + k % 4] = static_cast<uint8_t>(y->scales[8 + k % 4] | ((l >> 4) << (2 * (k / 4))));
    }
    y->d = f32_to_fp16(1 / iscale);
  } else {
    y->d = f32_to_fp16(0.f);
  }
  const float d_all = fp16_to_f32(y->d);
  for (int k = 0; k < 16; ++k) {
    const float d = d_all * static_cast<float>(unpack_q3_scale(y->scales, k) - 32);
    if (d == 0) continue;
    for (int l = 0; l < 16; ++l)
      levels[16 * k + l] = static_cast<int8_t>(clamp_int(round_even(x[16 * k + l] / d), -4, 3) + 4);
  }
  // Bit 2 of each level goes to hmask; the low 2 bits are packed like Q2_K.
  std::memset(y->hmask, 0, sizeof y->hmask);
  uint8_t low[kQkK];
  for (int i = 0; i < kQkK; ++i) {
    int q = levels[i];
    if (q > 3) {
      y->hmask[i % 32] = static_cast<uint8_t>(y->hmask[i % 32] | (1 << (i / 32)));
      q -= 4;
    }
    low[i] = static_cast<uint8_t>(q);
  }
  pack_2bit(low, y->qs);
}

void dequantize_q3_k(const BlockQ3_K* b, float* y) {
  const float d_all = fp16_to_f32(b->d);
  for (int i = 0; i < kQkK; ++i) {
    const int k = i / 16;
    const int half = i / 128, lane = i % 32, shift = 2 * ((i % 128) / 32);
    const int low = (b->qs[half * 32 + lane] >> shift) & 3;
    const int high = (b->hmask[lane] >> (i / 32)) & 1;
    const float dl = d_all * static_cast<float>(unpack_q3_scale(b->scales, k) - 32);
    y[i] = dl * static_cast<float>(low - (high ? 0 : 4));
  }
}

namespace {

// Q4_K and Q5_K share everything but the level count and the search constants.
template <int kNmax>
void quantize_q45_k_scales(const float* x, uint16_t* d_out, uint16_t* dmin_out, uint8_t* packed,
                           uint8_t* levels, float rmin, float rdelta, int nstep) {
  float scales[8], mins[8], weights[32];
  float max_scale = 0, max_min = 0;
  for (int k = 0; k < 8; ++k) {
    const float* g = x + 32 * k;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += g[l] * g[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(g[l]);
    scales[k] = search_scale_min(32, kNmax, g, weights, levels + 32 * k, &mins[k], rmin, rdelta, nstep, false);
    if (scales[k] > max_scale) max_scale = scales[k];
    if (mins[k] > max_min) max_min = mins[k];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  for (int k = 0; k < 8; ++k) {
    // Narrowed to a byte before the clamp, as in the reference.
    uint8_t ls = static_cast<uint8_t>(round_even(inv_scale * scales[k]));
    uint8_t lm = static_cast<uint8_t>(round_even(inv_min * mins[k]));
    if (ls > 63) ls = 63;
    if (lm > 63) lm = 63;
    pack_scale_min(packed, k, ls, lm);
  }
  *d_out = f32_to_fp16(max_scale / 63.f);
  *dmin_out = f32_to_fp16(max_min / 63.f);
  const float d_all = fp16_to_f32(*d_out), dmin_all = fp16_to_f32(*dmin_out);
  for (int k = 0; k < 8; ++k) {
    uint8_t sc, m;
    unpack_scale_min(packed, k, &sc, &m);
    const float d = d_all * static_cast<float>(sc);
    if (d == 0) continue;
    const float dm = dmin_all * static_cast<float>(m);
    for (int l = 0; l < 32; ++l)
      levels[32 * k + l] = static_cast<uint8_t>(clamp_int(round_even((x[32 * k + l] + dm) / d), 0, kNmax));
  }
}

}  // namespace

void quantize_q4_k(const float* x, BlockQ4_K* y) {
  uint8_t levels[kQkK];
  quantize_q45_k_scales<15>(x, &y->d, &y->dmin, y->scales, levels, -1.f, 0.1f, 20);
  for (int c = 0; c < kQkK / 64; ++c)
    for (int l = 0; l < 32; ++l)
      y->qs[32 * c + l] = static_cast<uint8_t>(levels[64 * c + l] | (levels[64 * c + 32 + l] << 4));
}

void quantize_q5_k(const float* x, BlockQ5_K* y) {
  uint8_t levels[kQkK];
  quantize_q45_k_scales<31>(x, &y->d, &y->dmin, y->scales, levels, -0.5f, 0.1f, 15);
  std::memset(y->qh, 0, sizeof y->qh);
  for (int c = 0; c < kQkK / 64; ++c) {
    for (int l = 0; l < 32; ++l) {
      const int lo = levels[64 * c + l], hi = levels[64 * c + 32 + l];
      y->qh[l] = static_cast<uint8_t>(y->qh[l] | ((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
      y->qs[32 * c + l] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
    }
  }
}

void dequantize_q4_k(const BlockQ4_K* b, float* y) {
  const float d = fp16_to_f32(b->d), dmin = fp16_to_f32(b->dmin);
  for (int k = 0; k < 8; ++k) {
    uint8_t sc, m;
    unpack_scale_min(b->scales, k, &sc, &m);
    const float dl = d * static_cast<float>(sc), ml = dmin * static_cast<float>(m);
    const uint8_t* q = b->qs + 32 * (k / 2);
    const int shift = 4 * (k % 2);
    for (int l = 0; l < 32; ++l) y[32 * k + l] = dl * static_cast<float>((q[l] >> shift) & 0xF) - ml;
  }
}

void dequantize_q5_k(const BlockQ5_K* b, float* y) {
  const float d = fp16_to_f32(b->d), dmin = fp16_to_f32(b->dmin);
  for (int k = 0; k < 8; ++k) {
    uint8_t sc, m;
    unpack_scale_min(b->scales, k, &sc, &m);
    const float dl = d * static_cast<float>(sc), ml = dmin * static_cast<float>(m);
    const uint8_t* q = b->qs + 32 * (k / 2);
    const int shift = 4 * (k % 2);
    for (int l = 0; l < 32; ++l) {
      const int v = ((q[l] >> shift) & 0xF) | (((b->qh[l] >> k) & 1) << 4);
      y[32 * k + l] = dl * static_cast<float>(v) - ml;
    }
  }
}

void quantize_q6_k(const float* x, BlockQ6_K* y) {
  int8_t levels[kQkK];
  float scales[16];
  float max_scale = 0, max_abs = 0;
  for (int k = 0; k < 16; ++k) {
    scales[k] = search_symmetric(16, 32, x + 16 * k, levels + 16 * k);
    if (std::fabs(scales[k]) > max_abs) {
      max_abs = std::fabs(scales[k]);
      max_scale = scales[k];
    }
  }
  if (max_abs < kGroupMaxEps) {
    std::memset(y, 0, sizeof *y);
    return;
  }
  const float iscale = -128.f / max_scale;
  y->d = f32_to_fp16(1 / iscale);
  for (int k = 0; k < 16; ++k) {
    const int s = round_even(iscale * scales[k]);
    y->scales[k] = static_cast<int8_t>(s < 127 ? s : 127);
  }
  const float d_all = fp16_to_f32(y->d);
  for (int k = 0; k < 16; ++k) {
    const float d = d_all * static_cast<float>(y->scales[k]);
    if (d == 0) continue;
    for (int l = 0; l < 16; ++l)
      levels[16 * k + l] = static_cast<int8_t>(clamp_int(round_even(x[16 * k + l] / d), -32, 31) + 32);
  }
  for (int half = 0; half < 2; ++half) {
    const int8_t* q = levels + 128 * half;
    uint8_t* ql = y->ql + 64 * half;
    uint8_t* qh = y->qh + 32 * half;
    for (int l = 0; l < 32; ++l) {
      ql[l] = static_cast<uint8_t>((q[l] & 0xF) | ((q[l + 64] & 0xF) << 4));
      ql[l + 32] = static_cast<uint8_t>((q[l + 32] & 0xF) | ((q[l + 96] & 0xF) << 4));
      qh[l] = static_cast<uint8_t>((q[l] >> 4) | ((q[l + 32] >> 4) << 2) | ((q[l + 64] >> 4) << 4) |
                                   ((q[l + 96] >> 4) << 6));
    }
  }
}

void dequantize_q6_k(const BlockQ6_K* b, float* y) {
  const float d = fp16_to_f32(b->d);
  for (int i = 0; i < kQkK; ++i) {
    const int half = i / 128, r = i % 128, quarter = r / 32, l = r % 32;
    const uint8_t lq = b->ql[64 * half + 32 * (quarter & 1) + l];
    const int low = (quarter < 2) ? (lq & 0xF) : (lq >> 4);
    const int high = (b->qh[32 * half + l] >> (2 * quarter)) & 3;
    const int q = (low | (high << 4)) - 32;
    y[i] = d * static_cast<float>(b->scales[i / 16]) * static_cast<float>(q);
  }
}

void quantize_q8_k(const float* x, BlockQ8_K* y) {
  float max = 0, amax = 0;
  for (int j = 0; j < kQkK; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  if (amax == 0) {
    std::memset(y, 0, sizeof *y);
    return;
  }
  // -127 (not -128): the signed extreme maps to -127 so every q fits a symmetric range.
  const float iscale = -127.f / max;
  for (int j = 0; j < kQkK; ++j) {
    const int v = round_even(iscale * x[j]);
    y->qs[j] = static_cast<int8_t>(v < 127 ? v : 127);
  }
  for (int k = 0; k < 16; ++k) {
    int sum = 0;
    for (int l = 0; l < 16; ++l) sum += y->qs[16 * k + l];
    y->bsums[k] = static_cast<int16_t>(sum);
  }
  y->d = 1 / iscale;
}

void dequantize_q8_k(const BlockQ8_K* b, float* y) {
  for (int j = 0; j < kQkK; ++j) y[j] = b->d * static_cast<float>(b->qs[j]);
}


}  // namespace xent
