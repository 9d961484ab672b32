// `xent serve` under hostile clients, over loopback, bounded in count and time: malformed
// JSON, bodies over --max-body, huge headers, slowloris (partial headers, then silence or a
// trickle), abandoned streams and path traversal attempts, all at once and mixed with good
// /v1/completions requests on the tiny model. The server must stay up, answer every good
// request, refuse every bad one with an OpenAI-shaped JSON error (or close a connection
// that never finished its request), and keep its memory flat. Prints a table per kind.
// Then the connection cap (--max-connections) under a flood of idle sockets, and a client
// that stops reading its stream (the write timeout).
#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/serve-client.h"

namespace {

using namespace xent::test;
using Clock = std::chrono::steady_clock;

// What a raw exchange got back: the status (0: the server closed without answering) and
// whether the body was an OpenAI-shaped error.
struct Outcome {
  int status = 0;
  bool json_error = false;
  double seconds = 0;  // until the server answered or closed
};

// Sends `parts` with `gap` between them (a trickle), then reads until the server closes.
Outcome exchange(int port, const std::vector<std::string>& parts, std::chrono::milliseconds gap = {},
                 int timeout_s = 20) {
  Outcome o;
  const auto t0 = Clock::now();
  const int fd = connect_loopback(port, timeout_s);
  if (fd < 0) return o;
  for (size_t k = 0; k < parts.size(); ++k) {
    if (k > 0 && gap.count() > 0) std::this_thread::sleep_for(gap);
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 0) > 0) break;  // the server answered (or closed): stop sending
    if (send(fd, parts[k].data(), parts[k].size(), MSG_NOSIGNAL) < 0) break;
  }
  std::string raw;
  char buf[8192];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  o.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const size_t head_end = raw.find("\r\n\r\n");
  if (raw.compare(0, 9, "HTTP/1.1 ") != 0 || head_end == std::string::npos) return o;
  o.status = std::atoi(raw.c_str() + 9);
  Response r;
  r.body = raw.substr(head_end + 4);
  if (raw.find("Transfer-Encoding: chunked") != std::string::npos) r.body = dechunk(r.body);
  o.json_error = r.is_json_error();
  return o;
}

std::string post_head(size_t content_length, const std::string& extra = "") {
  return "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n" +
         extra + "Content-Length: " + std::to_string(content_length) + "\r\n\r\n";
}

// A streamed request whose client hangs up after the first event.
bool abandon_stream(int port) {
  return abandon(port, {{"prompt", "Once upon a time"}, {"max_tokens", 16}, {"stream", true}}, 20);
}

struct Tally {
  int count = 0, failures = 0;
  std::map<int, int> statuses;  // 0: closed without an answer
  std::vector<std::string> why;
};

class Table {
 public:
  void add(const std::string& kind, int status, bool ok, const std::string& what = "") {
    std::lock_guard<std::mutex> lock(mu_);
    Tally& t = rows_[kind];
    ++t.count;
    ++t.statuses[status];
    if (!ok) {
      ++t.failures;
      if (t.why.size() < 3) t.why.push_back(what + " (status " + std::to_string(status) + ")");
    }
  }
  int failures(const std::string& kind) { return rows_[kind].failures; }
  std::string print(long rss_before, long rss_after) {
    std::string out = "| kind | count | status codes | failures |\n|---|---|---|---|\n";
    for (const auto& [kind, t] : rows_) {
      std::string codes;
      for (const auto& [s, n] : t.statuses) codes += (codes.empty() ? "" : ", ") + (s ? std::to_string(s) : std::string("closed")) + " x" + std::to_string(n);
      out += "| " + kind + " | " + std::to_string(t.count) + " | " + codes + " | " + std::to_string(t.failures) + " |\n";
      for (const auto& w : t.why) out += "  failure: " + w + "\n";
    }
    out += "RSS before " + std::to_string(rss_before) + " KiB, after " + std::to_string(rss_after) + " KiB (" +
           std::to_string(rss_after - rss_before) + " KiB)\n";
    return out;
  }

 private:
  std::mutex mu_;
  std::map<std::string, Tally> rows_;
};

}  // namespace

TEST_CASE("xent serve stays up and answers good requests among hostile ones", "[apps][serve]") {
  // --timeout 2: a silent or trickling client is cut off after 2 s (headers included).
  ServerProcess server({"-m", kModels + "tiny-llama-bpe-q8_0.gguf", "--parallel", "2", "--max-body", "65536",
                        "--max-tokens", "16", "--timeout", "2", "--queue-timeout", "60"});
  INFO(server.log());
  REQUIRE(server.port > 0);
  const int port = server.port;
  const json good = {{"prompt", "Once upon a time"}, {"max_tokens", 8}, {"temperature", 0}};
  // Warm up (first request allocates the slot's buffers), then measure.
  REQUIRE(post(port, "/v1/completions", good).status == 200);
  const long rss_before = rss_kib(server.pid());

  Table table;
  auto good_request = [&] {
    const Response r = post(port, "/v1/completions", good);
    const json j = r.j();
    const bool ok = r.status == 200 && j.is_object() && j.contains("choices") && j["choices"][0]["text"].is_string();
    table.add("good completion", r.status, ok, r.body.substr(0, 200));
  };
  auto expect_error = [&](const std::string& kind, const Outcome& o, int want) {
    table.add(kind, o.status, o.status == want && o.json_error, "wanted " + std::to_string(want) + " with a JSON error");
  };

  std::vector<std::thread> threads;
  // Good requests all through: 3 clients x 8.
  for (int c = 0; c < 3; ++c)
    threads.emplace_back([&] {
      for (int k = 0; k < 8; ++k) good_request();
    });
  // Malformed bodies: 400 each.
  threads.emplace_back([&] {
    const std::vector<std::string> bodies = {"{", "[]", "nul", "{\"prompt\": 5}", "{\"prompt\": \"x\", \"max_tokens\": -1}",
                                             std::string("\xff\xfe\x00\x01", 4), std::string(20000, '['),
                                             "{\"prompt\": \"\\ud800\"}", "{\"messages\": {}}", "\"just a string\""};
    for (int round = 0; round < 2; ++round)
      for (const std::string& b : bodies) expect_error("malformed JSON", exchange(port, {post_head(b.size()) + b}), 400);
  });
  // Bodies over --max-body (declared, then sent in part): 413.
  threads.emplace_back([&] {
    for (size_t n : {size_t{65537}, size_t{1} << 20, size_t{1} << 30})
      for (int k = 0; k < 2; ++k)
        expect_error("oversize body", exchange(port, {post_head(n) + std::string(std::min<size_t>(n, 100000), 'x')}), 413);
  });
  // Huge headers: 2,000 lines of 100 bytes (over the 64 KiB cap), one 10 KiB line (over
  // httplib's 8 KiB line limit): 400.
  threads.emplace_back([&] {
    std::string many;
    for (int k = 0; k < 2000; ++k) many += "X-Pad-" + std::to_string(k) + ": " + std::string(90, 'a') + "\r\n";
    const std::string one_long = "X-Long: " + std::string(10000, 'b') + "\r\n";
    for (int k = 0; k < 3; ++k) {
      expect_error("huge headers", exchange(port, {post_head(2, many) + "{}"}), 400);
      expect_error("huge headers", exchange(port, {post_head(2, one_long) + "{}"}), 400);
    }
  });
  // Slowloris: partial headers, then silence (4), or a byte every 150 ms for ever (2): the
  // server answers 400 and closes within the timeout plus a margin.
  for (int k = 0; k < 6; ++k)
    threads.emplace_back([&, k] {
      const std::string start = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
      Outcome o;
      if (k < 4) {
        o = exchange(port, {start});
      } else {
        std::vector<std::string> bytes(60, "z");  // 9 s of trickle if nobody stops it
        bytes.insert(bytes.begin(), start);
        o = exchange(port, bytes, std::chrono::milliseconds(150));
      }
      const bool ok = o.status == 400 && o.json_error && o.seconds < 6;
      table.add(k < 4 ? "slowloris (silent)" : "slowloris (trickle)", o.status, ok,
                "closed after " + std::to_string(o.seconds) + " s");
    });
  // Abandoned streams: the client leaves after the first event.
  threads.emplace_back([&] {
    for (int k = 0; k < 6; ++k) {
      const bool got = abandon_stream(port);
      table.add("abandoned stream", got ? 200 : 0, got, "no first event");
    }
  });
  // Path traversal: nothing but the page itself is served, and never a file.
  threads.emplace_back([&] {
    for (const char* path : {"/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/index.html/../../../etc/passwd",
                             "/..%2f..%2fetc%2fpasswd", "//etc/passwd", "/web/../CMakeLists.txt", "/./index.html/.."}) {
      const Response r = http(port, "GET", path);
      const bool ok = (r.status == 404 || r.status == 400) && r.is_json_error() &&
                      r.body.find("root:") == std::string::npos && r.body.find("cmake_minimum") == std::string::npos;
      table.add("path traversal", r.status, ok, path);
    }
  });
  for (auto& t : threads) t.join();

  // Still up, still answering, memory flat.
  CHECK(http(port, "GET", "/health").status == 200);
  good_request();
  const long rss_after = rss_kib(server.pid());
  const std::string report = table.print(rss_before, rss_after);
  std::printf("%s", report.c_str());
  INFO(report);
  for (const char* kind : {"good completion", "malformed JSON", "oversize body", "huge headers", "slowloris (silent)",
                           "slowloris (trickle)", "abandoned stream", "path traversal"})
    CHECK(table.failures(kind) == 0);
  CHECK(rss_after > 0);
  CHECK(rss_after - rss_before < 32 * 1024);
  CHECK(server.stop());
}

namespace {

// n connections made in a burst that send `first` (nothing when empty) and then stay
// silent; -1 where one could not be made. The burst must not wait for SYN retransmits (a
// listen backlog as short as httplib's 5 costs a second here).
std::vector<int> hold_connections(int port, int n, const std::string& first = "") {
  std::vector<int> fds;
  const auto t0 = Clock::now();
  for (int k = 0; k < n; ++k) {
    const int fd = connect_loopback(port, 20);
    if (fd >= 0 && !first.empty()) send(fd, first.data(), first.size(), MSG_NOSIGNAL);
    fds.push_back(fd);
  }
  const double burst_s = std::chrono::duration<double>(Clock::now() - t0).count();
  CHECK(std::count(fds.begin(), fds.end(), -1) == 0);
  CHECK(burst_s < 0.5);
  // The server accepts them in order, before the connections made after this.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  return fds;
}

void close_all(std::vector<int>& fds) {
  for (int fd : fds)
    if (fd >= 0) close(fd);
  fds.clear();
}

// Posts `body` every 100 ms until it is answered 200 or `limit` passes; the seconds that
// took, and how many tries were refused with a 503 on the way.
struct Retried {
  Response last;
  double seconds = 0;
  int refused = 0;
};
Retried post_until_answered(int port, const json& body, std::chrono::seconds limit) {
  Retried out;
  const auto t0 = Clock::now();
  while (Clock::now() - t0 < limit) {
    out.last = post(port, "/v1/completions", body);
    if (out.last.status == 200) break;
    if (out.last.status == 503 && out.last.is_json_error()) ++out.refused;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  out.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return out;
}

}  // namespace

// --max-connections: a flood of idle sockets holds at most that many; the next connection
// is answered 503 (a JSON error) at once and closed, and the count falls again as held
// connections end, whether their client closes them or the server times them out.
TEST_CASE("xent serve refuses connections over --max-connections at once and counts them down as they end",
          "[apps][serve]") {
  constexpr int kMax = 8;
  ServerProcess server({"-m", kModels + "tiny-llama-bpe-q8_0.gguf", "--parallel", "1", "--max-connections",
                        std::to_string(kMax), "--timeout", "2", "--max-tokens", "16"});
  INFO(server.log());
  REQUIRE(server.port > 0);
  const int port = server.port;
  const json good = {{"prompt", "Once upon a time"}, {"max_tokens", 4}, {"temperature", 0}};
  const std::string good_text = good.dump();
  // Over the cap: two clients that send nothing, two that send a good request at once.
  auto refused_quickly = [&](const char* phase) {
    double slowest = 0;
    for (int k = 0; k < 4; ++k) {
      const Outcome o = k < 2 ? exchange(port, {}) : exchange(port, {post_head(good_text.size()) + good_text});
      INFO(phase << ": extra connection " << k << " got " << o.status << " after " << o.seconds << " s");
      CHECK(o.status == 503);
      CHECK(o.json_error);
      CHECK(o.seconds < 1.0);
      slowest = std::max(slowest, o.seconds);
    }
    std::printf("%s: %d connections held, 4 more refused with 503 in at most %.2f ms\n", phase, kMax, slowest * 1e3);
  };

  SECTION("closed by their clients") {
    std::vector<int> idle = hold_connections(port, kMax);
    refused_quickly("idle sockets");
    close_all(idle);
    const Retried r = post_until_answered(port, good, std::chrono::seconds(3));
    CHECK(r.last.status == 200);
    // The count is back to this request alone.
    int n_open = -1;
    for (int k = 0; k < 20 && n_open != 1; ++k) {
      const json h = http(port, "GET", "/health").j();
      n_open = h.is_object() && h.contains("connections") ? h["connections"].get<int>() : -1;
      if (n_open != 1) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    CHECK(n_open == 1);
  }
  SECTION("timed out by the server") {
    // Headers begun and never finished: the server answers 400 and closes after --timeout.
    std::vector<int> slow = hold_connections(port, kMax, "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
    refused_quickly("partial headers");
    const Retried r = post_until_answered(port, good, std::chrono::seconds(8));
    std::printf("partial headers: a good request answered after %.2f s of retries (%d refused first)\n",
                r.seconds, r.refused);
    CHECK(r.last.status == 200);
    CHECK(r.refused > 0);  // the held connections counted until the timeout ended them
    CHECK(r.seconds < 6);
    close_all(slow);
  }
  CHECK(server.stop());
}

// A client that asks for a long stream and never reads it (a tiny receive buffer, set
// before connecting) fills the kernel's buffers; the server's next write then waits
// --timeout at most, and the connection is dropped. With --max-connections 1 the stuck
// client holds the only connection until then: the good request after it is refused until
// the drop, and answered right after.
TEST_CASE("xent serve drops a client that stops reading its stream after --timeout", "[apps][serve]") {
  // Every event names the model: a 4 KiB alias makes the 2000-token stream about 8 MiB,
  // more than the kernel holds for one connection, so the server's writes block for good.
  ServerProcess server({"-m", kModels + "tiny-llama-bpe-q8_0.gguf", "--parallel", "1", "--max-connections", "1",
                        "--timeout", "2", "--max-tokens", "2048", "--alias", std::string(4096, 'm')});
  INFO(server.log());
  REQUIRE(server.port > 0);
  const int port = server.port;

  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  const int rcvbuf = 1024;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  const std::string body = json{{"prompt", "Once upon a time"}, {"max_tokens", 2000}, {"temperature", 0}, {"stream", true}}.dump();
  const std::string req = post_head(body.size()) + body;
  REQUIRE(send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));

  const Retried r = post_until_answered(port, {{"prompt", "Once upon a time"}, {"max_tokens", 4}, {"temperature", 0}},
                                        std::chrono::seconds(12));
  std::printf("stuck reader: a good request answered after %.2f s of retries (%d refused first)\n", r.seconds, r.refused);
  CHECK(r.last.status == 200);
  CHECK(r.refused > 0);
  CHECK(r.seconds < 2 + 4);  // --timeout, the lingering close (0.5 s) and a margin

  // What the stuck client gets when it reads at last: the start of its stream and the end
  // of the connection, no [DONE]: the server cut the stream, it did not finish it.
  std::string raw;
  char buf[65536];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) raw.append(buf, static_cast<size_t>(n));
  close(fd);
  std::printf("stuck reader: got %zu bytes of its stream, then the close\n", raw.size());
  CHECK(n == 0);
  CHECK(raw.compare(0, 12, "HTTP/1.1 200") == 0);
  CHECK(raw.find("data: [DONE]") == std::string::npos);
  CHECK(server.stop());
}
