// Writing a file so that an interruption never leaves a half-written one: write a
// temporary file beside it, fsync, rename over the target, fsync the directory.
#pragma once
#include <cstddef>
#include <functional>
#include <string>

namespace xent {

// `fill` receives a write function (data, size) and produces the content. Throws
// xent::Error on any I/O failure; the temp file is removed and the old file kept.
void write_file_atomic(const std::string& path,
                       const std::function<void(const std::function<void(const void*, size_t)>&)>& fill);

}  // namespace xent
