// Drives `xent chat` through a pseudo-terminal, as a person would: two turns on the
// ChatML test model. Each turn gets a reply, and the second turn evaluates only the
// new text (the first turn stays in the KV cache).
#include <catch2/catch.hpp>

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <string>

#include "formats/gguf.h"
#include "runtime/tokenizer/tokenizer.h"

namespace {

const std::string kXent = std::string(XENT_BINARY_DIR) + "/apps/xent";
const std::string kModel = std::string(XENT_SHARED_DIR) + "/models/tiny-llama-bpe-q8_0.gguf";

class Pty {
 public:
  explicit Pty(const std::vector<std::string>& args) {
    pid_ = forkpty(&fd_, nullptr, nullptr, nullptr);
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~Pty() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return pid_ > 0; }
  void send(const std::string& s) { REQUIRE(write(fd_, s.data(), s.size()) == static_cast<ssize_t>(s.size())); }
  // Reads until `pattern` matches the output since `from`, or the timeout.
  bool wait_for(const std::regex& pattern, size_t from, std::smatch* m, int timeout_s = 60) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (std::chrono::steady_clock::now() < end) {
      const std::string tail = out_.substr(from);
      if (std::regex_search(tail, *m, pattern)) {
        last_match_text_ = tail;
        return true;
      }
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 200) > 0) {
        char buf[4096];
        const ssize_t n = read(fd_, buf, sizeof buf);
        if (n <= 0) return false;
        out_.append(buf, static_cast<size_t>(n));
      }
    }
    return false;
  }
  const std::string& output() const { return out_; }
  std::string last_match_text_;

 private:
  int fd_ = -1;
  pid_t pid_ = -1;
  std::string out_;
};

}  // namespace

TEST_CASE("xent chat: two turns through a terminal, the second reuses the cache", "[apps][chat]") {
  Pty pty({kXent, "chat", "-m", kModel, "-n", "12", "--temp", "0", "-c", "512", "-t", "2"});
  REQUIRE(pty.ok());
  std::smatch m;
  const std::regex prompt(R"(\n?> $)");
  REQUIRE(pty.wait_for(std::regex(R"(> )"), 0, &m));

  const std::regex stats(R"(\[(\d+) new tokens evaluated, (\d+) in context\])");
  size_t mark = pty.output().size();
  pty.send("hello there\r");
  REQUIRE(pty.wait_for(stats, mark, &m));
  const int first_new = std::stoi(m[1]);
  const int first_total = std::stoi(m[2]);
  INFO(pty.output());
  CHECK(first_new > 5);
  CHECK(first_total > first_new);  // the reply's tokens were evaluated too

  mark = pty.output().size();
  pty.send("how are you\r");
  REQUIRE(pty.wait_for(stats, mark, &m));
  const int second_new = std::stoi(m[1]);

  // The second turn's new text under the ChatML template: the end of the assistant turn,
  // then the user turn, then the assistant header.
  auto file = xent::gguf::Reader::open(kModel);
  auto tok = xent::Tokenizer::from_gguf(*file);
  const std::string delta = "<|im_end|>\n<|im_start|>user\nhow are you<|im_end|>\n<|im_start|>assistant\n";
  const size_t expected = tok->encode(delta, false, true).size();
  CHECK(second_new == static_cast<int>(expected));
  CHECK(second_new < first_total);  // far less than a cold start

  pty.send("/exit\r");
}

TEST_CASE("xent chat keeps answering past the context size", "[apps][chat]") {
  Pty pty({kXent, "chat", "-m", kModel, "-n", "24", "--temp", "0", "-c", "256", "-t", "2"});
  REQUIRE(pty.ok());
  std::smatch m;
  REQUIRE(pty.wait_for(std::regex(R"(> )"), 0, &m));
  const std::regex stats(R"(\[(\d+) new tokens evaluated, (\d+) in context\])");
  bool dropped = false;
  for (int turn = 0; turn < 12; ++turn) {
    const size_t mark = pty.output().size();
    pty.send("Please summarise the patient's history of hypertension and diabetes once more.\r");
    INFO("turn " << turn << "\n" << pty.output().substr(mark));
    REQUIRE(pty.wait_for(stats, mark, &m));
    CHECK(std::stoi(m[2]) <= 256);
    if (pty.output().find("context full", mark) != std::string::npos) dropped = true;
  }
  CHECK(dropped);
  pty.send("/exit\r");
}

TEST_CASE("xent chat --print-prompt renders the model's template", "[apps][chat]") {
  const std::string dir = std::string(XENT_BINARY_DIR) + "/test-chat";
  std::system(("mkdir -p " + dir).c_str());
  {
    FILE* f = std::fopen((dir + "/messages.json").c_str(), "w");
    std::fputs(R"([{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}])", f);
    std::fclose(f);
  }
  const std::string cmd = kXent + " chat -m " + kModel + " --print-prompt --messages " + dir + "/messages.json";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p);
  std::string out;
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  CHECK(pclose(p) == 0);
  CHECK(out == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}
