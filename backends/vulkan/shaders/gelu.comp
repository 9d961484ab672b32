#version 450
// Gelu: tanh approximation, as GPT-2.
#include "common.glsl"
#include "activations.glsl"
#define OP(x) gelu_tanh(x)
#include "unary.glsl"
