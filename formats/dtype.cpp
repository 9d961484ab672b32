#include "formats/dtype.h"

#include <cctype>
#include <string>

namespace xent {
namespace {

// Block sizes and bytes per block follow ggml's block structs byte for byte:
// QK4_0 = 32 (f16 d + 16 nibbles), QK_K = 256 for the K-quants, and so on.
constexpr DTypeInfo kTypes[] = {
    {DType::F32, "f32", 1, 4, false},
    {DType::F16, "f16", 1, 2, false},
    {DType::Q4_0, "q4_0", 32, 18, true},
    {DType::Q4_1, "q4_1", 32, 20, true},
    {DType::Q5_0, "q5_0", 32, 22, true},
    {DType::Q5_1, "q5_1", 32, 24, true},
    {DType::Q8_0, "q8_0", 32, 34, true},
    {DType::Q8_1, "q8_1", 32, 36, true},
    {DType::Q2_K, "q2_k", 256, 84, true},
    {DType::Q3_K, "q3_k", 256, 110, true},
    {DType::Q4_K, "q4_k", 256, 144, true},
    {DType::Q5_K, "q5_k", 256, 176, true},
    {DType::Q6_K, "q6_k", 256, 210, true},
    {DType::Q8_K, "q8_k", 256, 292, true},
    {DType::I8, "i8", 1, 1, false},
    {DType::I16, "i16", 1, 2, false},
    {DType::I32, "i32", 1, 4, false},
    {DType::I64, "i64", 1, 8, false},
    {DType::F64, "f64", 1, 8, false},
    {DType::BF16, "bf16", 1, 2, false},
};

}  // namespace

const DTypeInfo* dtype_info(uint32_t raw) {
  for (const DTypeInfo& i : kTypes)
    if (static_cast<uint32_t>(i.type) == raw) return &i;
  return nullptr;
}

const DTypeInfo& dtype_info(DType t) { return *dtype_info(static_cast<uint32_t>(t)); }

const char* dtype_name(DType t) { return dtype_info(t).name; }

bool dtype_from_name(std::string_view name, DType* out) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const DTypeInfo& i : kTypes) {
    if (lower == i.name) {
      *out = i.type;
      return true;
    }
  }
  return false;
}

}  // namespace xent
