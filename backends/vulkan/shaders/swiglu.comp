#version 450
// SwiGlu: d = silu(gate) * up (same shapes).
#include "common.glsl"
#include "activations.glsl"
#define OP(x, y) (silu_f(x) * (y))
#include "binary.glsl"
