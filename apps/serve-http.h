// `xent serve`'s HTTP connections: httplib's server with its per-connection loop replaced,
// so that a request's headers have a size cap and a deadline (httplib alone bounds each
// header line, not their number, and restarts its read timeout at every byte).
#pragma once
#include <httplib.h>

#include <cstddef>

namespace xent::app::serve {

class HttpServer : public httplib::Server {
 public:
  // Headers (request line included) larger than this are refused with a 400.
  static constexpr size_t kMaxHeaderBytes = 64 * 1024;
  // A request's headers must all arrive within header_timeout_s of its first byte; a
  // client trickling them one byte at a time is cut off there (slowloris).
  void set_header_timeout(int seconds) { header_timeout_s_ = seconds; }

 private:
  bool process_and_close_socket(socket_t sock) override;
  int header_timeout_s_ = 30;
};

}  // namespace xent::app::serve
