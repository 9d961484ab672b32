#include "runtime/api/log.h"

#include <cstdio>
#include <mutex>

namespace xent {
namespace {

std::mutex g_mutex;
xent_log_callback g_callback = nullptr;
void* g_user_data = nullptr;

}  // namespace

void set_log_callback(xent_log_callback callback, void* user_data) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_callback = callback;
  g_user_data = user_data;
}

void log_message(xent_log_level level, const std::string& message) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_callback) {
    g_callback(level, message.c_str(), g_user_data);
  } else if (level >= XENT_LOG_WARN) {
    std::fprintf(stderr, "xent: %s\n", message.c_str());
  }
}

}  // namespace xent
