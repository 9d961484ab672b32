// `xent serve`'s HTTP connections: httplib's server with its per-connection loop replaced,
// so that a request's headers have a size cap and a deadline (httplib alone bounds each
// header line, not their number, and restarts its read timeout at every byte), and with a
// cap on open connections (httplib alone queues every connection it accepts, unbounded).
#pragma once
#include <httplib.h>

#include <atomic>
#include <cstddef>
#include <string>
#include <thread>

namespace xent::app::serve {

class HttpServer : public httplib::Server {
 public:
  // Headers (request line included) larger than this are refused with a 400.
  static constexpr size_t kMaxHeaderBytes = 64 * 1024;
  // A request's headers must all arrive within header_timeout_s of its first byte; a
  // client trickling them one byte at a time is cut off there (slowloris).
  void set_header_timeout(int seconds) { header_timeout_s_ = seconds; }
  // At most n connections open at once, each with a worker thread of its own from the
  // moment it is accepted; one more is answered 503 with `refusal_json` as its body and
  // closed, on the accepting thread, without reading it.
  void set_max_connections(size_t n, std::string refusal_json);
  size_t n_connections() const { return n_open_.load(); }
  // After binding: httplib listens with a backlog of 5, so a burst of more connections than
  // that loses its SYNs and the clients wait a second to retry; this makes it SOMAXCONN.
  bool widen_backlog();

 private:
  bool process_and_close_socket(socket_t sock) override;
  void refuse(socket_t sock) const;
  int header_timeout_s_ = 30;
  std::string refusal_;
  std::atomic<size_t> n_open_{0};
  // The thread that accepts connections; a connection is processed there only when it is
  // over the cap (every other one goes to a worker).
  std::thread::id accept_thread_;
};

}  // namespace xent::app::serve
