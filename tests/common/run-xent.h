// Runs the built `xent` executable as a user would and captures what it printed. Output
// files carry the test process's pid: ctest -j runs cases of one test binary side by side.
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace xent::test {

struct XentRun {
  int exit_code = -1;
  std::string out, err;
};

inline std::string xent_binary() { return std::string(XENT_BINARY_DIR) + "/apps/xent"; }

// `env` is prepended to the command line ("VAR=value ..."); tmp_dir holds the captures.
inline XentRun run_xent(const std::string& tmp_dir, const std::string& args, const std::string& env = "") {
  std::filesystem::create_directories(tmp_dir);
  const std::string stem = tmp_dir + "/" + std::to_string(::getpid());
  const std::string cmd = env + " " + xent_binary() + " " + args + " >" + stem + ".out 2>" + stem + ".err";
  const int status = std::system(cmd.c_str());
  XentRun r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream o(stem + ".out", std::ios::binary), e(stem + ".err", std::ios::binary);
  r.out.assign(std::istreambuf_iterator<char>(o), std::istreambuf_iterator<char>());
  r.err.assign(std::istreambuf_iterator<char>(e), std::istreambuf_iterator<char>());
  return r;
}

// Writes dir/NAME.gguf, a seeded model of a `xent bench --synthetic` shape with the
// tokenizer of vocab_gguf (the bytes the peer references were made from); the path, or ""
// with the error in *err.
inline std::string write_synthetic(const std::string& dir, const std::string& shape, const std::string& type,
                                   const std::string& vocab_gguf, const std::string& name, std::string* err) {
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/" + name + ".gguf";
  const XentRun r = run_xent(dir, "bench --synthetic " + shape + " --type " + type + " --vocab " + vocab_gguf +
                                      " -o " + path);
  if (err) *err = r.err;
  return r.exit_code == 0 ? path : "";
}

}  // namespace xent::test
