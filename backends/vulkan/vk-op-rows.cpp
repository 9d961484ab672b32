// The row-wise ops on Vulkan: Add, Mul, SwiGlu, Scale, Silu, Gelu, RmsNorm, LayerNorm and
// Rope. Each runs one workgroup per row of the result; they share RowParams (common.glsl).
#include <string>

#include "backends/vulkan/vk-backend.h"
#include "formats/error.h"

namespace xent::vk {
namespace {

// Mirrors ROW_PARAMS in shaders/common.glsl.
struct RowParams {
  uint32_t ne0, ne1, ne2, ne3;
  uint32_t a_off, a_nb1, a_nb2, a_nb3;
  uint32_t b_off, b_nb1, b_nb2, b_nb3;
  uint32_t b_ne1, b_ne2, b_ne3, d_off;
  uint32_t d_nb1, d_nb2, d_nb3, n_groups_x;
  float f0, f1;
  uint32_t i0, i1, c_off;
};
static_assert(sizeof(RowParams) <= kPushConstantBytes);

uint32_t u32(uint64_t v, const char* what) {
  if (v > UINT32_MAX) throw Error(std::string("vulkan: ") + what + " exceeds 32 bits");
  return static_cast<uint32_t>(v);
}
uint32_t elems(size_t bytes) { return u32(bytes / sizeof(float), "stride"); }

}  // namespace

void record_row_op(Recorder& r, const Tensor& node) {
  const Tensor& a = *node.src[0];
  RowParams p{};
  p.ne0 = u32(node.ne[0], "row length");
  p.ne1 = u32(node.ne[1], "ne1");
  p.ne2 = u32(node.ne[2], "ne2");
  p.ne3 = u32(node.ne[3], "ne3");
  const Binding ba = r.bind(a, 4);
  p.a_off = ba.first;
  p.a_nb1 = elems(a.nb[1]);
  p.a_nb2 = elems(a.nb[2]);
  p.a_nb3 = elems(a.nb[3]);
  const Binding bd = r.bind(node, 4);
  p.d_off = bd.first;
  p.d_nb1 = elems(node.nb[1]);
  p.d_nb2 = elems(node.nb[2]);
  p.d_nb3 = elems(node.nb[3]);
  p.f0 = node.f_params[0];
  p.f1 = node.f_params[1];
  uint32_t gx, gy;
  grid_2d(static_cast<uint64_t>(node.n_rows()), &gx, &gy);
  p.n_groups_x = gx;

  auto set_b = [&](const Tensor& b) -> Binding {
    const Binding bb = r.bind(b, 4);
    p.b_off = bb.first;
    p.b_nb1 = elems(b.nb[1]);
    p.b_nb2 = elems(b.nb[2]);
    p.b_nb3 = elems(b.nb[3]);
    p.b_ne1 = u32(b.ne[1], "ne1");
    p.b_ne2 = u32(b.ne[2], "ne2");
    p.b_ne3 = u32(b.ne[3], "ne3");
    return bb;
  };

  switch (node.op) {
    case Op::Add:
    case Op::Mul:
    case Op::SwiGlu: {
      const Binding bb = set_b(*node.src[1]);
      const char* shader = node.op == Op::Add ? "add" : node.op == Op::Mul ? "mul" : "swiglu";
      r.dispatch(shader, {ba, bb, bd}, &p, sizeof p, gx, gy);
      return;
    }
    case Op::Scale:
    case Op::Silu:
    case Op::Gelu: {
      const char* shader = node.op == Op::Scale ? "scale" : node.op == Op::Silu ? "silu" : "gelu";
      r.dispatch(shader, {ba, bd}, &p, sizeof p, gx, gy);
      return;
    }
    case Op::RmsNorm: {
      // Without a weight the slot is bound to the input; the shader does not read it.
      Binding bw = ba;
      if (node.src[1]) {
        bw = r.bind(*node.src[1], 4);
        p.b_off = bw.first;
        p.i0 = 1;
      }
      r.dispatch("rms_norm", {ba, bw, bd}, &p, sizeof p, gx, gy);
      return;
    }
    case Op::LayerNorm: {
      Binding bw = ba, bb = ba;
      if (node.src[1]) {
        bw = r.bind(*node.src[1], 4);
        p.b_off = bw.first;
        p.i0 = 1;
      }
      if (node.src[2]) {
        bb = r.bind(*node.src[2], 4);
        p.c_off = bb.first;
        p.i1 = 1;
      }
      r.dispatch("layer_norm", {ba, bw, bb, bd}, &p, sizeof p, gx, gy);
      return;
    }
    case Op::Rope: {
      const Binding bpos = r.bind(*node.src[1], 4);
      p.b_off = bpos.first;
      const int32_t n_dims = node.i_params[kRopeNDims];
      const Binding bf = r.rope_freqs(n_dims, node.f_params[0]);
      p.c_off = bf.first;
      p.i0 = static_cast<uint32_t>(n_dims);
      p.i1 = node.i_params[kRopeMode] == kRopeModeNeox ? 1u : 0u;
      p.f0 = node.f_params[1];  // freq_scale
      r.dispatch("rope", {ba, bpos, bf, bd}, &p, sizeof p, gx, gy);
      return;
    }
    default:
      throw Error(std::string("vulkan: no row kernel for ") + op_name(node.op));
  }
}

}  // namespace xent::vk
