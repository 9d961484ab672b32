// Shared by the libFuzzer harnesses: where the shipped models are, and the rule every
// harness enforces: a parser may reject input only with xent::Error (or the error type its
// caller turns into a message); anything else escaping is a finding, reported by abort().
#pragma once
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#ifndef XENT_SHARED_DIR
#define XENT_SHARED_DIR "../shared"
#endif

namespace xent::fuzz {

// XENT_SHARED_DIR from the environment wins, so the binaries run from any checkout.
inline std::string shared_path(const std::string& rel) {
  const char* env = std::getenv("XENT_SHARED_DIR");
  return std::string(env != nullptr && *env ? env : XENT_SHARED_DIR) + "/" + rel;
}

[[noreturn]] inline void finding(const char* what, const std::string& detail) {
  std::fprintf(stderr, "FUZZ FINDING: %s: %s\n", what, detail.c_str());
  std::fflush(stderr);
  std::abort();
}

// An exception that is not the parser's documented error type.
[[noreturn]] inline void unexpected_exception(const std::exception& e) {
  finding("unexpected exception type", e.what());
}

}  // namespace xent::fuzz
