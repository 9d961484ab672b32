// GetRows on Vulkan: rows of a table of any supported type, dequantized to f32. Tables
// larger than one binding (big vocabularies) are bound and dispatched in row pieces.
#include <algorithm>
#include <string>

#include "backends/vulkan/vk-backend.h"
#include "formats/error.h"

namespace xent::vk {
namespace {

// Mirrors the push constants of get_rows.comp.
struct GetRowsParams {
  uint32_t ne0, n_ids;
  uint32_t t_off, t_nb1;
  uint32_t row0, n_table_rows;
  uint32_t n_rows_total;
  uint32_t ids_off, d_off, d_nb1;
  uint32_t n_groups_x;
};

}  // namespace

void record_get_rows(Recorder& r, const Tensor& node) {
  const Tensor& table = *node.src[0];
  const Tensor& ids = *node.src[1];
  const uint32_t te = weight_elem_bytes(table.type);
  const size_t row_stride = table.nb[1];
  const int64_t n_rows = table.ne[1];
  const std::string shader = weight_shader_name("get_rows", table.type);

  const Binding bi = r.bind(ids, 4);
  const Binding bd = r.bind(node, 4);
  GetRowsParams p{};
  p.ne0 = static_cast<uint32_t>(node.ne[0]);
  p.n_ids = static_cast<uint32_t>(ids.ne[0]);
  p.t_nb1 = static_cast<uint32_t>(row_stride / te);
  p.n_rows_total = static_cast<uint32_t>(n_rows);
  p.ids_off = bi.first;
  p.d_off = bd.first;
  p.d_nb1 = static_cast<uint32_t>(node.nb[1] / sizeof(float));
  uint32_t gx, gy;
  grid_2d(static_cast<uint64_t>(ids.ne[0]), &gx, &gy);
  p.n_groups_x = gx;

  const VkDeviceSize max_bind = r.device().max_binding_bytes() - r.device().binding_alignment();
  const int64_t rows_per_piece = std::max<int64_t>(1, static_cast<int64_t>(max_bind / row_stride));
  for (int64_t r0 = 0; r0 < n_rows; r0 += rows_per_piece) {
    const int64_t n = std::min(rows_per_piece, n_rows - r0);
    const size_t bytes = static_cast<size_t>(n - 1) * row_stride + table.row_bytes();
    const Binding bt = r.bind_range(table, static_cast<size_t>(r0) * row_stride, bytes, te);
    p.t_off = bt.first;
    p.row0 = static_cast<uint32_t>(r0);
    p.n_table_rows = static_cast<uint32_t>(n);
    r.dispatch(shader, {bt, bi, bd}, &p, sizeof p, gx, gy);
  }
}

}  // namespace xent::vk
