// MulMat on Vulkan: weights [k, m] of any supported type times f32 activations [k, n].
// Up to 8 columns use the mat-vec shader (each weight row read once per 8 tokens); more use
// the tiled mat-mat shader. Weights larger than one binding are bound in row pieces.
#include <algorithm>
#include <string>

#include "backends/vulkan/vk-backend.h"
#include "formats/error.h"

namespace xent::vk {
namespace {

// Mirrors the push constants of mul_mat_vec.comp and mul_mat.comp.
struct MulMatParams {
  uint32_t K, M, N;
  uint32_t w_off, w_nb1;
  uint32_t x_off, x_nb1;
  uint32_t d_off, d_nb1;
  uint32_t n_groups_x;
};

constexpr int64_t kMatVecMaxCols = 8;
constexpr uint64_t kMatVecRows = 8;  // weight rows per mat-vec workgroup
constexpr uint32_t kTileM = 64, kTileN = 32;

}  // namespace

void record_mul_mat(Recorder& r, const Tensor& node) {
  const Tensor& w = *node.src[0];
  const Tensor& x = *node.src[1];
  const int64_t K = w.ne[0], M = w.ne[1], N = x.ne[1];
  const uint32_t we = weight_elem_bytes(w.type);
  const size_t row_bytes = w.row_bytes();
  const bool mat_vec = N <= kMatVecMaxCols;
  const std::string shader = weight_shader_name(mat_vec ? "mul_mat_vec" : "mul_mat", w.type);

  const Binding bx = r.bind(x, 4);
  const Binding bd = r.bind(node, 4);
  MulMatParams p{};
  p.K = static_cast<uint32_t>(K);
  p.N = static_cast<uint32_t>(N);
  p.w_nb1 = static_cast<uint32_t>(row_bytes / we);
  p.x_off = bx.first;
  p.x_nb1 = static_cast<uint32_t>(x.nb[1] / sizeof(float));
  p.d_nb1 = static_cast<uint32_t>(node.nb[1] / sizeof(float));

  // Rows per piece: as many as one binding holds (after the alignment slack).
  const VkDeviceSize max_bind = r.device().max_binding_bytes() - r.device().binding_alignment();
  const int64_t rows_per_piece = std::max<int64_t>(1, static_cast<int64_t>(max_bind / row_bytes));
  for (int64_t m0 = 0; m0 < M; m0 += rows_per_piece) {
    const int64_t m = std::min(rows_per_piece, M - m0);
    const Binding bw = r.bind_range(w, static_cast<size_t>(m0) * row_bytes, static_cast<size_t>(m) * row_bytes, we);
    p.M = static_cast<uint32_t>(m);
    p.w_off = bw.first;
    p.d_off = bd.first + static_cast<uint32_t>(m0);
    if (mat_vec) {
      uint32_t gx, gy;
      grid_2d((static_cast<uint64_t>(m) + kMatVecRows - 1) / kMatVecRows, &gx, &gy);
      p.n_groups_x = gx;
      r.dispatch(shader, {bw, bx, bd}, &p, sizeof p, gx, gy,
                 static_cast<uint32_t>((N + kMatVecMaxCols - 1) / kMatVecMaxCols));
    } else {
      const uint64_t tiles_m = (static_cast<uint64_t>(m) + kTileM - 1) / kTileM;
      const uint64_t tiles_n = (static_cast<uint64_t>(N) + kTileN - 1) / kTileN;
      if (tiles_m > 65535 || tiles_n > 65535) throw Error("vulkan: mul_mat " + describe(node) + " is too large");
      p.n_groups_x = static_cast<uint32_t>(tiles_m);
      r.dispatch(shader, {bw, bx, bd}, &p, sizeof p, static_cast<uint32_t>(tiles_m), static_cast<uint32_t>(tiles_n));
    }
  }
}

}  // namespace xent::vk
