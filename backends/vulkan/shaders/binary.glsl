// Body of the elementwise two-operand ops: the including shader defines OP(x, y). One
// workgroup per row of d; b's row is a's row modulo b's shape (row broadcast).
layout(local_size_x = 64) in;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 2) writeonly buffer D { float d[]; };
ROW_PARAMS

void main() {
  const uint r = GROUP_INDEX();
  if (r >= p.ne1 * p.ne2 * p.ne3) return;
  ROW_COORDS(r, i1, i2, i3)
  const uint ab = p.a_off + i1 * p.a_nb1 + i2 * p.a_nb2 + i3 * p.a_nb3;
  const uint bb = p.b_off + (i1 % p.b_ne1) * p.b_nb1 + (i2 % p.b_ne2) * p.b_nb2 + (i3 % p.b_ne3) * p.b_nb3;
  const uint db = p.d_off + i1 * p.d_nb1 + i2 * p.d_nb2 + i3 * p.d_nb3;
  for (uint i = gl_LocalInvocationID.x; i < p.ne0; i += gl_WorkGroupSize.x) d[db + i] = OP(a[ab + i], b[bb + i]);
}
