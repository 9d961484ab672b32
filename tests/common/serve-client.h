// A `xent serve` child process and a minimal HTTP/1.1 client over loopback, for the tests
// of the server (tests/apps/test-serve*.cpp): requests, chunked bodies, SSE events.
#pragma once
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <chrono>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace xent::test {

using json = nlohmann::json;

inline const std::string kXent = std::string(XENT_BINARY_DIR) + "/apps/xent";
inline const std::string kModels = std::string(XENT_SHARED_DIR) + "/models/";

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A `xent serve` child process; stopped with SIGTERM (and checked to exit cleanly).
class ServerProcess {
 public:
  explicit ServerProcess(const std::vector<std::string>& args) {
    log_ = std::string(XENT_BINARY_DIR) + "/test-serve-" + std::to_string(getpid()) + "-" + std::to_string(counter_++) + ".log";
    std::vector<std::string> argv = {kXent, "serve", "--host", "127.0.0.1", "--port", "0", "-t", "1"};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> cargv;
      for (auto& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      execv(kXent.c_str(), cargv.data());
      _exit(127);
    }
    // Wait for "listening on http://127.0.0.1:PORT".
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      const std::string log = read_file(log_);
      const size_t at = log.find("listening on http://127.0.0.1:");
      if (at != std::string::npos) {
        port = std::atoi(log.c_str() + at + std::string("listening on http://127.0.0.1:").size());
        break;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~ServerProcess() { stop(); }
  // Returns true when the server exited by itself with status 0 after SIGTERM.
  bool stop() {
    if (pid_ <= 0) return false;
    kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 200; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return false;
  }
  std::string log() const { return read_file(log_); }
  pid_t pid() const { return pid_; }
  int port = 0;

 private:
  pid_t pid_ = -1;
  std::string log_;
  static inline int counter_ = 0;
};

struct Response {
  int status = 0;
  std::string headers, body;
  json j() const { return json::parse(body, nullptr, false); }
  bool is_json_error() const {
    const json e = j();
    return e.is_object() && e.contains("error") && e["error"].contains("message") && e["error"]["message"].is_string() &&
           e["error"].contains("type") && e["error"]["type"].is_string();
  }
};

inline std::string dechunk(const std::string& s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    const size_t eol = s.find("\r\n", i);
    if (eol == std::string::npos) break;
    const size_t n = std::stoul(s.substr(i, eol - i), nullptr, 16);
    if (n == 0) break;
    out += s.substr(eol + 2, n);
    i = eol + 2 + n + 2;
  }
  return out;
}

// A TCP connection to 127.0.0.1:port whose reads and writes time out after timeout_s;
// -1 when it cannot be made.
inline int connect_loopback(int port, int timeout_s) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  timeval tv{timeout_s, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// One HTTP/1.1 request on a fresh loopback connection (Connection: close).
inline Response http(int port, const std::string& method, const std::string& path, const std::string& body = "",
              const std::vector<std::string>& headers = {}) {
  Response r;
  const int fd = connect_loopback(port, 60);
  if (fd < 0) return r;
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (const auto& h : headers) req += h + "\r\n";
  if (method == "POST") req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  for (size_t sent = 0; sent < req.size();) {
    const ssize_t n = send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer (413) before reading everything
    sent += static_cast<size_t>(n);
  }
  std::string raw;
  char buf[65536];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  const size_t head_end = raw.find("\r\n\r\n");
  if (raw.compare(0, 9, "HTTP/1.1 ") != 0 || head_end == std::string::npos) return r;
  r.status = std::atoi(raw.c_str() + 9);
  r.headers = raw.substr(0, head_end);
  r.body = raw.substr(head_end + 4);
  std::string lower = r.headers;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.find("transfer-encoding: chunked") != std::string::npos) r.body = dechunk(r.body);
  return r;
}

inline Response post(int port, const std::string& path, const json& body, const std::vector<std::string>& headers = {}) {
  return http(port, "POST", path, body.dump(), headers);
}

// Resident memory of a process, in KiB (/proc/PID/status VmRSS); -1 when unreadable.
inline long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, 6, "VmRSS:") == 0) return std::atol(line.c_str() + 6);
  return -1;
}

// Sends a streamed /v1/completions request, reads until the first event arrives, then hangs
// up: a client that goes away in the middle of its answer. Returns whether an event came.
inline bool abandon(int port, const json& body, int timeout_s = 30) {
  const int fd = connect_loopback(port, timeout_s);
  if (fd < 0) return false;
  const std::string text = body.dump();
  const std::string req = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          "Content-Length: " + std::to_string(text.size()) + "\r\n\r\n" + text;
  send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string raw;
  char buf[4096];
  bool got = false;
  while (!got) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
    got = raw.find("data: ") != std::string::npos;
    if (raw.compare(0, 9, "HTTP/1.1 ") == 0 && raw.compare(0, 10, "HTTP/1.1 2") != 0) break;  // refused
  }
  close(fd);
  return got;
}

// The JSON payloads of an SSE stream, up to and excluding "[DONE]" (which must end it).
inline std::vector<json> sse_events(const std::string& body, bool* saw_done) {
  std::vector<json> out;
  *saw_done = false;
  size_t i = 0;
  while (i < body.size()) {
    const size_t end = body.find("\n\n", i);
    if (end == std::string::npos) break;
    const std::string ev = body.substr(i, end - i);
    i = end + 2;
    if (ev.compare(0, 6, "data: ") != 0) continue;
    if (ev.substr(6) == "[DONE]") {
      *saw_done = true;
      continue;
    }
    out.push_back(json::parse(ev.substr(6), nullptr, false));
  }
  return out;
}

}  // namespace xent::test
