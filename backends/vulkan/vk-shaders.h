// The SPIR-V of every compute shader, embedded at build time (embed-shaders.cmake writes
// the table): "<op>" or "<op>_<dtype name>", plus "_sg" for the subgroup variant.
#pragma once
#include <cstddef>
#include <string_view>

namespace xent::vk {

struct ShaderBlob {
  const char* name;
  const unsigned char* code;  // 4-byte aligned SPIR-V words
  size_t n_bytes;
};

// Null when no shader of that name was built.
const ShaderBlob* find_shader(std::string_view name);

}  // namespace xent::vk
