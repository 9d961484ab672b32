#version 450
// GetRows: dst row i = dequantized table row ids[i]. One workgroup per output row. The
// table may be bound in row chunks (large embeddings), so a dispatch writes only the rows
// whose id falls in its chunk [row0, row0 + n_table_rows); ids outside the whole table
// (rejected before evaluation) give zeros, written by the first chunk.
#include "common.glsl"
#define WEIGHT_BINDING 0
#include "dequant.glsl"

layout(local_size_x = 64) in;
layout(binding = 1) readonly buffer Ids { int ids[]; };
layout(binding = 2) writeonly buffer Dst { float d[]; };

layout(push_constant) uniform Params {
  uint ne0;                 // elements per row
  uint n_ids;
  uint t_off, t_nb1;        // table: first element of the chunk, row stride (buffer elements)
  uint row0, n_table_rows;  // the table rows this dispatch has bound
  uint n_rows_total;
  uint ids_off, d_off, d_nb1;
  uint n_groups_x;
} p;

void main() {
  const uint i = gl_WorkGroupID.y * p.n_groups_x + gl_WorkGroupID.x;
  if (i >= p.n_ids) return;
  const int r = ids[p.ids_off + i];
  const uint dr = p.d_off + i * p.d_nb1;
  if (r < 0 || r >= int(p.n_rows_total)) {
    if (p.row0 == 0u)
      for (uint k = gl_LocalInvocationID.x; k < p.ne0; k += gl_WorkGroupSize.x) d[dr + k] = 0.0;
    return;
  }
  if (uint(r) < p.row0 || uint(r) >= p.row0 + p.n_table_rows) return;
  const uint rb = p.t_off + (uint(r) - p.row0) * p.t_nb1;
  for (uint k = gl_LocalInvocationID.x * 4u; k < p.ne0; k += 4u * gl_WorkGroupSize.x) {
    if (k + 4u <= p.ne0) {
      const vec4 v = load4(rb, k);
      d[dr + k] = v.x;
      d[dr + k + 1u] = v.y;
      d[dr + k + 2u] = v.z;
      d[dr + k + 3u] = v.w;
    } else {
      for (uint j = k; j < p.ne0; ++j) d[dr + j] = load1(rb, j);
    }
  }
}
