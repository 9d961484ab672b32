#include "core/tensor.h"

#include <string>

namespace xent {

const char* op_name(Op op) {
  switch (op) {
    case Op::None: return "none";
    case Op::View: return "view";
    case Op::GetRows: return "get_rows";
    case Op::MulMat: return "mul_mat";
    case Op::Add: return "add";
    case Op::Mul: return "mul";
    case Op::Scale: return "scale";
    case Op::RmsNorm: return "rms_norm";
    case Op::LayerNorm: return "layer_norm";
    case Op::Rope: return "rope";
    case Op::Attention: return "attention";
    case Op::Silu: return "silu";
    case Op::Gelu: return "gelu";
    case Op::SwiGlu: return "swiglu";
    case Op::SoftCap: return "soft_cap";
  }
  return "?";
}

size_t Tensor::n_bytes() const {
  size_t last = row_bytes();
  for (int d = 1; d < 4; ++d) last += static_cast<size_t>(ne[d] - 1) * nb[d];
  return last;
}

bool Tensor::is_contiguous() const {
  size_t expect = row_bytes();
  if (nb[0] != dtype_block_bytes(type)) return false;
  for (int d = 1; d < 4; ++d) {
    if (ne[d] > 1 && nb[d] != expect) return false;
    expect *= static_cast<size_t>(ne[d]);
  }
  return true;
}

const Tensor* Tensor::storage_root() const {
  const Tensor* t = this;
  while (t->op == Op::View) t = t->src[0];
  return t;
}

Tensor* Tensor::storage_root() {
  Tensor* t = this;
  while (t->op == Op::View) t = t->src[0];
  return t;
}

void Tensor::set_contiguous_strides() {
  nb[0] = dtype_block_bytes(type);
  nb[1] = dtype_row_bytes(type, ne[0]);
  nb[2] = nb[1] * static_cast<size_t>(ne[1]);
  nb[3] = nb[2] * static_cast<size_t>(ne[2]);
}

std::string describe(const Tensor& t) {
  std::string s = "[";
  int n = 4;
  while (n > 1 && t.ne[n - 1] == 1) --n;
  for (int d = 0; d < n; ++d) {
    if (d) s += ", ";
    s += std::to_string(t.ne[d]);
  }
  s += "] ";
  s += dtype_name(t.type);
  return s;
}

bool attention_is_plain(const Tensor& node) {
  return node.op == Op::Attention && node.i_params[kAttnWindow] == 0 && node.f_params[1] == 0.0f &&
         node.src[6] == nullptr;
}

bool rope_is_plain(const Tensor& node) {
  return node.op == Op::Rope && !node.src[2] && node.f_params[kRopeExtFactor] == 0.0f &&
         node.f_params[kRopeAttnFactor] == 1.0f;
}

}  // namespace xent
