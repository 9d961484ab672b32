// The one exception type used inside the library. It never crosses the C API: every
// xent_* entry point catches it and turns it into an xent_status plus a message.
#pragma once
#include <stdexcept>
#include <string>

namespace xent {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace xent
