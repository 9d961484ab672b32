// The connection loop of serve-http.h: keep-alive requests on one socket, each read through
// a stream that enforces the header cap and deadline, then httplib's own request handling;
// and the queue that caps open connections.
#include "serve-http.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <netinet/in.h>
#include <string>

namespace xent::app::serve {
namespace {

using Clock = std::chrono::steady_clock;

// Waits until fd is ready for `events`, at most timeout_ms; false on timeout or error.
bool wait_for(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  int r;
  do {
    r = ::poll(&p, 1, std::max(timeout_ms, 0));
  } while (r < 0 && errno == EINTR);
  return r > 0 && (p.revents & (events | POLLHUP | POLLERR)) != 0;
}

void address_of(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage a{};
  socklen_t n = sizeof a;
  if ((peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &n) : ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n)) != 0)
    return;
  char buf[INET6_ADDRSTRLEN] = "";
  if (a.ss_family == AF_INET) {
    auto* s = reinterpret_cast<sockaddr_in*>(&a);
    ::inet_ntop(AF_INET, &s->sin_addr, buf, sizeof buf);
    port = ntohs(s->sin_port);
  } else if (a.ss_family == AF_INET6) {
    auto* s = reinterpret_cast<sockaddr_in6*>(&a);
    ::inet_ntop(AF_INET6, &s->sin6_addr, buf, sizeof buf);
    port = ntohs(s->sin6_port);
  }
  ip = buf;
}

// A socket stream whose reads are bounded in bytes and time while the headers are read
// (from begin_request until end_headers), and by the per-read timeout always.
class LimitedStream : public httplib::Stream {
 public:
  LimitedStream(int fd, int read_ms, int write_ms) : fd_(fd), read_ms_(read_ms), write_ms_(write_ms) {}

  void begin_request(int header_ms) {
    in_headers_ = true;
    header_bytes_ = 0;
    status_ = 0;
    header_deadline_ = Clock::now() + std::chrono::milliseconds(header_ms);
  }
  void end_headers() { in_headers_ = false; }
  bool has_buffered() const { return buf_at_ < buf_end_; }  // a pipelined request
  // A read failed, timed out or hit the header cap: what follows on this connection is
  // not a request, so it is closed after the (error) response.
  bool broken() const { return broken_; }
  // The status of the last response written (400: a request line or headers httplib could
  // not parse either, after which the stream's position is unknown).
  int status() const { return status_; }

  bool is_readable() const override { return buf_at_ < buf_end_ || wait_for(fd_, POLLIN, read_wait_ms()); }
  bool is_writable() const override { return wait_for(fd_, POLLOUT, write_ms_); }

  ssize_t read(char* ptr, size_t size) override {
    if (in_headers_) {
      if (header_bytes_ >= HttpServer::kMaxHeaderBytes) return broken_ = true, -1;
      size = std::min(size, HttpServer::kMaxHeaderBytes - header_bytes_);
    }
    // httplib reads the headers a byte at a time: serve those from a buffer.
    if (buf_at_ == buf_end_ && size < sizeof buf_) {
      const ssize_t n = receive(buf_, sizeof buf_);
      if (n <= 0) return broken_ = true, n;
      buf_at_ = 0;
      buf_end_ = static_cast<size_t>(n);
    }
    ssize_t n;
    if (buf_at_ < buf_end_) {
      n = static_cast<ssize_t>(std::min(size, buf_end_ - buf_at_));
      std::memcpy(ptr, buf_ + buf_at_, static_cast<size_t>(n));
      buf_at_ += static_cast<size_t>(n);
    } else {
      n = receive(ptr, size);
      if (n <= 0) broken_ = true;
    }
    if (n > 0 && in_headers_) header_bytes_ += static_cast<size_t>(n);
    return n;
  }
  ssize_t write(const char* ptr, size_t size) override {
    // httplib writes the status line in a write of its own: remember the status.
    if (size > 12 && std::memcmp(ptr, "HTTP/1.1 ", 9) == 0) status_ = std::atoi(ptr + 9);
    if (!is_writable()) return -1;
    ssize_t n;
    do {
      n = ::send(fd_, ptr, size, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { address_of(fd_, true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address_of(fd_, false, ip, port); }
  socket_t socket() const override { return fd_; }

 private:
  ssize_t receive(char* ptr, size_t size) {
    if (!wait_for(fd_, POLLIN, read_wait_ms())) return -1;
    ssize_t n;
    do {
      n = ::recv(fd_, ptr, size, 0);
    } while (n < 0 && errno == EINTR);
    return n;
  }
  int read_wait_ms() const {
    if (!in_headers_) return read_ms_;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(header_deadline_ - Clock::now()).count();
    return static_cast<int>(std::clamp<long long>(left, 0, read_ms_));
  }

  int fd_;
  int read_ms_, write_ms_;
  bool in_headers_ = false, broken_ = false;
  int status_ = 0;
  size_t header_bytes_ = 0;
  Clock::time_point header_deadline_{};
  char buf_[4096];
  size_t buf_at_ = 0, buf_end_ = 0;
};

int to_ms(time_t sec, time_t usec) { return static_cast<int>(sec * 1000 + usec / 1000); }

// httplib's accept loop hands each accepted connection to a TaskQueue as a job. This one
// has a worker per allowed connection and counts the jobs it has taken until they end
// (the socket is closed then, whatever ended it: the client, a timeout, the server). A
// job over the cap runs at once on the accepting thread instead, which HttpServer
// recognises (accept_thread_) and answers with a refusal: a few microseconds, no worker.
class ConnectionQueue : public httplib::TaskQueue {
 public:
  ConnectionQueue(size_t max, std::atomic<size_t>& n_open) : max_(max), n_open_(n_open), workers_(max) {}

  void enqueue(std::function<void()> fn) override {
    // Only this (the accepting) thread adds, so the check and the increment cannot race.
    if (n_open_.load() >= max_) {
      fn();
      return;
    }
    ++n_open_;
    workers_.enqueue([this, fn = std::move(fn)] {
      struct Release {
        std::atomic<size_t>& n;
        ~Release() { --n; }
      } release{n_open_};
      fn();
    });
  }
  void shutdown() override { workers_.shutdown(); }

 private:
  const size_t max_;
  std::atomic<size_t>& n_open_;
  httplib::ThreadPool workers_;
};

}  // namespace

void HttpServer::set_max_connections(size_t n, std::string refusal_json) {
  const std::string status = "HTTP/1.1 503 Service Unavailable\r\n";
  refusal_ = status + "Content-Type: application/json\r\nContent-Length: " + std::to_string(refusal_json.size()) +
             "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" + refusal_json;
  // httplib makes the queue on the thread that then accepts, before the first connection.
  new_task_queue = [this, n] {
    accept_thread_ = std::this_thread::get_id();
    return new ConnectionQueue(n, n_open_);
  };
}

bool HttpServer::widen_backlog() { return ::listen(svr_sock_, SOMAXCONN) == 0; }

// Nothing of the request is read or waited for: the answer fits an empty send buffer, and
// what already arrived is discarded so that closing does not reset the connection over it.
void HttpServer::refuse(socket_t sock) const {
  ssize_t n;
  do {
    n = ::send(sock, refusal_.data(), refusal_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  ::shutdown(sock, SHUT_WR);
  char sink[4096];
  for (int k = 0; k < 16 && ::recv(sock, sink, sizeof sink, MSG_DONTWAIT) > 0; ++k) {
  }
  ::close(sock);
}

bool HttpServer::process_and_close_socket(socket_t sock) {
  if (std::this_thread::get_id() == accept_thread_) {
    refuse(sock);
    return false;
  }
  LimitedStream strm(sock, to_ms(read_timeout_sec_, read_timeout_usec_), to_ms(write_timeout_sec_, write_timeout_usec_));
  bool ok = false;
  for (size_t left = keep_alive_max_count_; left > 0; --left) {
    // Wait for the next request (the first one too) at most the keep-alive timeout,
    // looking every 100 ms whether the server is stopping.
    const auto until = Clock::now() + std::chrono::seconds(keep_alive_timeout_sec_);
    bool ready = strm.has_buffered();
    while (!ready && svr_sock_ != INVALID_SOCKET && Clock::now() < until) ready = wait_for(sock, POLLIN, 100);
    if (!ready) break;
    strm.begin_request(header_timeout_s_ * 1000);
    bool closed = false;
    ok = process_request(strm, left == 1 || svr_sock_ == INVALID_SOCKET, closed,
                         [&strm](httplib::Request&) { strm.end_headers(); });
    if (!ok || closed || strm.broken() || strm.status() == 400 || strm.status() == 413 || strm.status() == 414) break;
  }
  // A refused request (headers or body too large) may leave unread bytes, and closing over
  // them sends a reset that can destroy the error response in flight. Send FIN, then drain
  // what the client still sends for a moment (bounded in time and bytes) before closing.
  ::shutdown(sock, SHUT_WR);
  char sink[4096];
  size_t drained = 0;
  const auto until = Clock::now() + std::chrono::milliseconds(500);
  while (drained < (1u << 20) && Clock::now() < until && wait_for(sock, POLLIN, 100)) {
    const ssize_t n = ::recv(sock, sink, sizeof sink, 0);
    if (n <= 0) break;
    drained += static_cast<size_t>(n);
  }
  ::close(sock);
  return ok;
}

}  // namespace xent::app::serve
