// Dequantization of eight consecutive elements of a weight row, for every GGUF type the
// CUDA kernels read (ggml block layouts). Compiled for host and device so a CPU-only test
// can check the block arithmetic against formats/quants.cpp.
#pragma once
#include <cstdint>
#include <cstring>

#ifdef __CUDACC__
#include <cuda_fp16.h>
#define XENT_HD __host__ __device__ __forceinline__
#else
#define XENT_HD inline
#endif

namespace xent::cuda {

// GGUF type ids (formats/dtype.h) that the kernels understand.
enum TypeId : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8,
  kQ2_K = 10, kQ3_K = 11, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kI32 = 26, kBF16 = 30,
};

// Bytes per block and elements per block of each weight type (must equal formats/dtype.cpp).
template <uint32_t T> struct BlockInfo;
template <> struct BlockInfo<kF32>  { static constexpr int elems = 1,   bytes = 4; };
template <> struct BlockInfo<kF16>  { static constexpr int elems = 1,   bytes = 2; };
template <> struct BlockInfo<kBF16> { static constexpr int elems = 1,   bytes = 2; };
template <> struct BlockInfo<kQ4_0> { static constexpr int elems = 32,  bytes = 18; };
template <> struct BlockInfo<kQ4_1> { static constexpr int elems = 32,  bytes = 20; };
template <> struct BlockInfo<kQ5_0> { static constexpr int elems = 32,  bytes = 22; };
template <> struct BlockInfo<kQ5_1> { static constexpr int elems = 32,  bytes = 24; };
template <> struct BlockInfo<kQ8_0> { static constexpr int elems = 32,  bytes = 34; };
template <> struct BlockInfo<kQ2_K> { static constexpr int elems = 256, bytes = 84; };
template <> struct BlockInfo<kQ3_K> { static constexpr int elems = 256, bytes = 110; };
template <> struct BlockInfo<kQ4_K> { static constexpr int elems = 256, bytes = 144; };
template <> struct BlockInfo<kQ5_K> { static constexpr int elems = 256, bytes = 176; };
template <> struct BlockInfo<kQ6_K> { static constexpr int elems = 256, bytes = 210; };

// IEEE half -> float. The device has an instruction; the host path is exact bit work.
XENT_HD float half_bits_to_float(uint16_t h) {
#ifdef __CUDA_ARCH__
  return __half2float(__ushort_as_half(h));
#else
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3FFu) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
#endif
}

XENT_HD float bf16_bits_to_float(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
#ifdef __CUDA_ARCH__
  return __uint_as_float(bits);
#else
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
#endif
}

// Blocks are packed at odd byte offsets (18, 22, 110 ... bytes), so multi-byte fields are
// assembled from single bytes instead of being loaded as wider words.
XENT_HD uint16_t load_u16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
XENT_HD uint32_t load_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
XENT_HD float load_half(const uint8_t* p) { return half_bits_to_float(load_u16(p)); }

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block's 12 scale bytes.
XENT_HD void k4_scale_min(int j, const uint8_t* s, int& sc, int& m) {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// The signed 6-bit scale of sub-block is (0..15) of a Q3_K block's 12 scale bytes.
XENT_HD int q3k_scale(int is, const uint8_t* s) {
  int v;
  if (is < 4)
    v = (s[is] & 0xF) | (((s[is + 8] >> 0) & 3) << 4);
  else if (is < 8)
    v = (s[is] & 0xF) | (((s[is + 4] >> 2) & 3) << 4);
  else if (is < 12)
    v = (s[is - 8] >> 4) | (((s[is] >> 4) & 3) << 4);
  else
    v = (s[is - 8] >> 4) | (((s[is - 4] >> 6) & 3) << 4);
  return v - 32;
}

// out[0..8) = elements [8g, 8g + 8) of a row of type T that starts at `row`.
template <uint32_t T>
XENT_HD void dequant8(const uint8_t* row, int64_t g, float* out) {
  constexpr int QK = BlockInfo<T>::elems;
  const int64_t first = g * 8;
  if constexpr (T == kF32) {
    const float* p = reinterpret_cast<const float*>(row) + first;
    for (int i = 0; i < 8; ++i) out[i] = p[i];
  } else if constexpr (T == kF16) {
    const uint16_t* p = reinterpret_cast<const uint16_t*>(row) + first;
    for (int i = 0; i < 8; ++i) out[i] = half_bits_to_float(p[i]);
  } else if constexpr (T == kBF16) {
    const uint16_t* p = reinterpret_cast<const uint16_t*>(row) + first;
    for (int i = 0; i < 8; ++i) out[i] = bf16_bits_to_float(p[i]);
  } else {
    const uint8_t* b = row + (first / QK) * BlockInfo<T>::bytes;
    const int p = static_cast<int>(first % QK);  // position in the block, a multiple of 8
    if constexpr (T == kQ4_0 || T == kQ4_1) {
      // 16 bytes of nibbles: element e < 16 is the low nibble of byte e, e >= 16 the high one of e-16.
      const float d = load_half(b);
      const float m = T == kQ4_1 ? load_half(b + 2) : 0.0f;
      const uint8_t* qs = b + (T == kQ4_1 ? 4 : 2);
      const int shift = p < 16 ? 0 : 4;
      const int at = p & 15;
      for (int i = 0; i < 8; ++i) {
        const int q = (qs[at + i] >> shift) & 0xF;
        out[i] = T == kQ4_1 ? q * d + m : (q - 8) * d;
      }
    } else if constexpr (T == kQ5_0 || T == kQ5_1) {
      // As Q4, plus a 32-bit word whose bit e is element e's fifth bit.
      const float d = load_half(b);
      const float m = T == kQ5_1 ? load_half(b + 2) : 0.0f;
      const uint32_t qh = load_u32(b + (T == kQ5_1 ? 4 : 2));
      const uint8_t* qs = b + (T == kQ5_1 ? 8 : 6);
      const int shift = p < 16 ? 0 : 4;
      const int at = p & 15;
      for (int i = 0; i < 8; ++i) {
        const int q = ((qs[at + i] >> shift) & 0xF) | (((qh >> (p + i)) & 1) << 4);
        out[i] = T == kQ5_1 ? q * d + m : (q - 16) * d;
      }
    } else if constexpr (T == kQ8_0) {
      const float d = load_half(b);
      const int8_t* qs = reinterpret_cast<const int8_t*>(b + 2);
      for (int i = 0; i < 8; ++i) out[i] = qs[p + i] * d;
    } else if constexpr (T == kQ2_K || T == kQ3_K) {
      // Two halves of 128; in each, 4 bit-planes (shift 2j) of 32 bytes, each covering 32
      // elements as two sub-blocks of 16 with their own scale.
      const int n = p / 128, r = p % 128, j = r / 32, s = (r % 32) / 16, l = r % 16;
      const int is = 8 * n + 2 * j + s;
      if constexpr (T == kQ2_K) {
        const uint8_t* qs = b + 16 + 32 * n + 16 * s + l;
        const float d = load_half(b + 80), dmin = load_half(b + 82);
        const uint8_t sc = b[is];
        const float dl = d * (sc & 0xF), ml = dmin * (sc >> 4);
        for (int i = 0; i < 8; ++i) out[i] = dl * ((qs[i] >> (2 * j)) & 3) - ml;
      } else {
        const uint8_t* hm = b + 16 * s + l;
        const uint8_t* qs = b + 32 + 32 * n + 16 * s + l;
        const float dl = load_half(b + 108) * q3k_scale(is, b + 96);
        const int bit = 4 * n + j;
        for (int i = 0; i < 8; ++i) {
          const int q = ((qs[i] >> (2 * j)) & 3) - (((hm[i] >> bit) & 1) ? 0 : 4);
          out[i] = dl * q;
        }
      }
    } else if constexpr (T == kQ4_K || T == kQ5_K) {
      // Four chunks of 64: 32 bytes whose low nibbles are sub-block 2c, high nibbles 2c+1.
      const int c = p / 64, hi = (p % 64) / 32, l = p % 32;
      int sc, mn;
      k4_scale_min(2 * c + hi, b + 4, sc, mn);
      const float d = load_half(b) * sc, m = load_half(b + 2) * mn;
      const uint8_t* qs = b + (T == kQ5_K ? 48 : 16) + 32 * c + l;
      for (int i = 0; i < 8; ++i) {
        int q = (qs[i] >> (4 * hi)) & 0xF;
        if constexpr (T == kQ5_K) q |= ((b[16 + l + i] >> (2 * c + hi)) & 1) << 4;
        out[i] = d * q - m;
      }
    } else if constexpr (T == kQ6_K) {
      // Two halves of 128; each has 64 low-nibble bytes, 32 bytes of 2-bit highs and 8 scales;
      // quarter k of the half takes nibble (k / 2) of ql[l + 32 (k % 2)] and bits 2k of qh[l].
      const int n = p / 128, r = p % 128, k = r / 32, l = r % 32;
      const uint8_t* ql = b + 64 * n + l + 32 * (k % 2);
      const uint8_t* qh = b + 128 + 32 * n + l;
      const int8_t sc = static_cast<int8_t>(b[192 + 8 * n + l / 16 + 2 * k]);
      const float d = load_half(b + 208) * sc;
      for (int i = 0; i < 8; ++i) {
        const int q = (((ql[i] >> (4 * (k / 2))) & 0xF) | (((qh[i] >> (2 * k)) & 3) << 4)) - 32;
        out[i] = d * q;
      }
    } else {
      static_assert(T == kF32, "dequant8: type without a kernel");
    }
  }
}

// The compile-time type that dispatch_type hands to its callback.
template <uint32_t T>
struct TypeTag {
  static constexpr uint32_t value = T;
};

// Calls fn(TypeTag<T>{}) for the runtime type id (a generic lambda reads the type back
// with decltype(tag)::value); returns false for a type without kernels. This is the one
// list of supported types.
template <typename Fn>
bool dispatch_type(uint32_t type, Fn&& fn) {
  switch (type) {
    case kF32: fn(TypeTag<kF32>{}); return true;
    case kF16: fn(TypeTag<kF16>{}); return true;
    case kBF16: fn(TypeTag<kBF16>{}); return true;
    case kQ4_0: fn(TypeTag<kQ4_0>{}); return true;
    case kQ4_1: fn(TypeTag<kQ4_1>{}); return true;
    case kQ5_0: fn(TypeTag<kQ5_0>{}); return true;
    case kQ5_1: fn(TypeTag<kQ5_1>{}); return true;
    case kQ8_0: fn(TypeTag<kQ8_0>{}); return true;
    case kQ2_K: fn(TypeTag<kQ2_K>{}); return true;
    case kQ3_K: fn(TypeTag<kQ3_K>{}); return true;
    case kQ4_K: fn(TypeTag<kQ4_K>{}); return true;
    case kQ5_K: fn(TypeTag<kQ5_K>{}); return true;
    case kQ6_K: fn(TypeTag<kQ6_K>{}); return true;
    default: return false;
  }
}

// Types with a dequant8 routine: what GetRows tables and MulMat weights may be.
inline bool type_has_kernels(uint32_t type) {
  return dispatch_type(type, [](auto) {});
}

// Host check of the block arithmetic: dequantizes a row of n elements (n a multiple of the
// type's block size and of 8). False for a type without kernels.
inline bool dequantize_row_host(uint32_t type, const void* row, float* out, int64_t n) {
  return dispatch_type(type, [&](auto tag) {
    constexpr uint32_t T = decltype(tag)::value;
    for (int64_t g = 0; g < n / 8; ++g) dequant8<T>(static_cast<const uint8_t*>(row), g, out + 8 * g);
  });
}

}  // namespace xent::cuda
