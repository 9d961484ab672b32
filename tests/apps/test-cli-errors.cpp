// Bad input to `xent run` gives one clear line on stderr and a non-zero exit, never a
// crash: unknown architecture, truncated file, a directory, a missing file, garbage.
#include <unistd.h>
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "formats/gguf.h"

namespace {

const std::string kXent = std::string(XENT_BINARY_DIR) + "/apps/xent";
const std::string kTmp = std::string(XENT_BINARY_DIR) + "/test-cli-errors";

struct Result {
  int exit_code = -1;
  bool crashed = false;
  std::string err;
};

Result run(const std::string& args) {
  const std::string err_path = kTmp + "/stderr-" + std::to_string(::getpid()) + ".txt";
  const std::string cmd = kXent + " " + args + " >/dev/null 2>" + err_path;
  const int status = std::system(cmd.c_str());
  Result r;
  r.crashed = WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) >= 128);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(err_path);
  r.err.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return r;
}

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

void expect_one_clear_line(const Result& r, const std::string& must_mention) {
  INFO("stderr: " << r.err);
  CHECK_FALSE(r.crashed);
  CHECK(r.exit_code != 0);
  CHECK(count_lines(r.err) == 1);
  CHECK(r.err.find(must_mention) != std::string::npos);
}

void write_bytes(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

TEST_CASE("xent run refuses bad model files with one line", "[apps][cli]") {
  std::system(("mkdir -p " + kTmp).c_str());
  const std::string model = std::string(XENT_SHARED_DIR) + "/models/tiny-llama-spm-q8_0.gguf";

  SECTION("missing file") {
    expect_one_clear_line(run("run -m " + kTmp + "/no-such-model.gguf -p hi -n 2"), "no-such-model.gguf");
  }
  SECTION("a directory") { expect_one_clear_line(run("run -m " + kTmp + " -p hi -n 2"), "directory"); }
  SECTION("truncated file") {
    std::ifstream in(model, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    REQUIRE(bytes.size() > 1000);
    for (size_t keep : {bytes.size() / 2, size_t{200}, size_t{10}}) {
      bytes.resize(keep);
      write_bytes(kTmp + "/truncated.gguf", bytes);
      expect_one_clear_line(run("run -m " + kTmp + "/truncated.gguf -p hi -n 2"), "truncated.gguf");
    }
  }
  SECTION("not a GGUF file") {
    write_bytes(kTmp + "/garbage.gguf", std::vector<char>(4096, 'x'));
    expect_one_clear_line(run("run -m " + kTmp + "/garbage.gguf -p hi -n 2"), "garbage.gguf");
  }
  SECTION("unknown architecture") {
    xent::gguf::Writer w;
    w.set_string("general.architecture", "mamba9");
    w.write(kTmp + "/mamba.gguf");
    const Result r = run("run -m " + kTmp + "/mamba.gguf -p hi -n 2");
    expect_one_clear_line(r, "mamba9");
    CHECK(r.err.find("llama") != std::string::npos);  // lists what is supported
  }
  SECTION("prompt longer than the context") {
    std::string long_prompt;
    for (int i = 0; i < 300; ++i) long_prompt += "word ";
    const Result r = run("run -m " + model + " -c 64 -n 2 -p \"" + long_prompt + "\"");
    INFO(r.err);
    CHECK_FALSE(r.crashed);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("context") != std::string::npos);
  }
}
