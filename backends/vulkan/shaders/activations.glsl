// Activation functions exactly as the CPU reference writes them.
float silu_f(float x) { return x / (1.0 + exp(-x)); }

// GELU, tanh approximation (GPT-2). The tanh argument is clamped: tanh(+-15) is +-1 in
// f32, and some drivers compute tanh through exp, which overflows to NaN far beyond that.
float gelu_tanh(float x) {
  const float k_sqrt_2_over_pi = 0.79788456080286535588;
  const float u = k_sqrt_2_over_pi * x * (1.0 + 0.044715 * x * x);
  return 0.5 * x * (1.0 + tanh(clamp(u, -15.0, 15.0)));
}
