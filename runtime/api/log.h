// The library's log sink: messages go to the callback set through the C API, or to
// stderr (warnings and errors) by default. The one piece of global state besides the
// backend registry.
#pragma once
#include <string>

#include "xent.h"

namespace xent {

void set_log_callback(xent_log_callback callback, void* user_data);
void log_message(xent_log_level level, const std::string& message);

}  // namespace xent
