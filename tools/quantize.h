// The per-tensor type rules of `xent quantize` (file types, K-quant mixes), shared with
// `xent bench --synthetic`, which must choose the same types for the files it writes.
#pragma once
#include <cstdint>
#include <string>

#include "formats/dtype.h"
#include "formats/gguf.h"

namespace xent::app {

// A target as users name it: a file type (general.file_type id) and its base tensor type.
struct FileType {
  const char* name;
  uint32_t id;
  DType base;
};
// By name ("q4_k_m", "Q8_0"; Q3_K/Q4_K/Q5_K mean their _M mix); null when unknown.
const FileType* find_file_type(std::string name);
// By general.file_type id; null when unknown.
const FileType* find_file_type(uint32_t id);
std::string file_type_names();  // "F32, F16, ..." for error messages

// What the rules need to know about the whole model.
struct MixState {
  int64_t n_layer = 0;
  int64_t n_gqa = 1;           // head_count / head_count_kv
  bool has_output = false;     // false: the token embedding doubles as the output matrix
  int n_attention_wv = 0;      // attn_v (or fused attn_qkv) tensors
  int i_attention_wv = 0;      // attn_v tensors seen so far
};

// The type `xent quantize` gives tensor `t` for file type `ft` (its own type when it is
// not a weight matrix). Tensors must be visited in hf::tensor_name_order, as the mix
// rules count attn_v tensors in that order.
DType planned_tensor_type(const FileType& ft, const gguf::TensorInfo& t, MixState& s, bool pure);

}  // namespace xent::app
