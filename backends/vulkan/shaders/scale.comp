#version 450
// Scale: d = a * f0.
#include "common.glsl"
#define OP(x) ((x) * p.f0)
#include "unary.glsl"
