#version 450
// Add: d = a + b, b broadcast over rows.
#include "common.glsl"
#define OP(x, y) ((x) + (y))
#include "binary.glsl"
