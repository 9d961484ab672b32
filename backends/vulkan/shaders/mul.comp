#version 450
// Mul: d = a * b elementwise, b broadcast over rows.
#include "common.glsl"
#define OP(x, y) ((x) * (y))
#include "binary.glsl"
