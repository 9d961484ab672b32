// Element types of GGUF tensors: ids, block sizes and bytes per block, identical to ggml's
// so that files move freely between xent and other GGUF readers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace xent {

// Values are the on-disk GGUF type ids; never renumber.
enum class DType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3,
  Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28,
  BF16 = 30,
};

struct DTypeInfo {
  DType type;
  const char* name;      // "q4_k", as users see it
  int64_t block_elems;   // elements per block (1 for plain types)
  size_t block_bytes;    // bytes per block
  bool quantized;
};

// Null for an id this build does not know (files may carry newer types).
const DTypeInfo* dtype_info(uint32_t raw_type_id);
const DTypeInfo& dtype_info(DType t);
const char* dtype_name(DType t);
// Parses "q4_k", "Q8_0", "f16" ...; returns false if unknown.
bool dtype_from_name(std::string_view name, DType* out);

inline int64_t dtype_block_elems(DType t) { return dtype_info(t).block_elems; }
inline size_t dtype_block_bytes(DType t) { return dtype_info(t).block_bytes; }
// Bytes of a row of n elements; n must be a multiple of the block size.
inline size_t dtype_row_bytes(DType t, int64_t n) {
  const DTypeInfo& i = dtype_info(t);
  return static_cast<size_t>(n / i.block_elems) * i.block_bytes;
}

}  // namespace xent
