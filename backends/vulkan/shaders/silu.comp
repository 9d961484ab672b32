#version 450
// Silu: d = a / (1 + exp(-a)).
#include "common.glsl"
#include "activations.glsl"
#define OP(x) silu_f(x)
#include "unary.glsl"
