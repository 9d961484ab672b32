// `xent serve` under hostile clients, over loopback, bounded in count and time: malformed
// JSON, bodies over --max-body, huge headers, slowloris (partial headers, then silence or a
// trickle), abandoned streams and path traversal attempts, all at once and mixed with good
// /v1/completions requests on the tiny model. The server must stay up, answer every good
// request, refuse every bad one with an OpenAI-shaped JSON error (or close a connection
// that never finished its request), and keep its memory flat. Prints a table per kind.
#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

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
