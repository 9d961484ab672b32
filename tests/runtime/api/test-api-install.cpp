// libxent as a library for other programs: libxent.so exports exactly the functions xent.h
// declares, and `cmake --install` gives a relocatable tree that examples/c builds against.
#include <catch2/catch.hpp>

#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const std::string kBin = XENT_BINARY_DIR;
const std::string kSrc = XENT_SOURCE_DIR;
const std::string kModel = std::string(XENT_SHARED_DIR) + "/models/clinical-gpt2-q8_0.gguf";
const std::string kPrompt = "MEDICATIONS: metformin 500 mg twice";
constexpr int kTokens = 24;

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct Shell {
  int rc = -1;
  std::string out;  // stdout only; stderr goes to the log, shown when a check fails
};

// Runs cmd under /bin/sh; its stderr is appended to log.
Shell sh(const std::string& cmd, const fs::path& log) {
  Shell r;
  FILE* p = popen(("{ " + cmd + " ; } 2>>" + quote(log.string())).c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return r;
}

// The functions xent.h declares with XENT_API.
std::set<std::string> declared_functions() {
  const std::string header = read_text(kSrc + "/include/xent.h");
  std::set<std::string> names;
  const std::regex decl(R"(XENT_API[^;(]*?\b(xent_[a-z0-9_]+)\s*\()");
  for (auto it = std::sregex_iterator(header.begin(), header.end(), decl); it != std::sregex_iterator(); ++it)
    names.insert((*it)[1]);
  return names;
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "xent-api-XXXXXX").string();
    if (mkdtemp(tmpl.data())) path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

}  // namespace

TEST_CASE("libxent.so exports exactly the C API of xent.h", "[api]") {
  const fs::path lib = kBin + "/libxent.so";
  REQUIRE(fs::exists(lib));
  const fs::path log = kBin + "/test-api-nm.log";
  fs::remove(log);
  const Shell nm = sh("nm -D --defined-only " + quote(lib.string()), log);
  INFO("nm stderr: " << read_text(log));
  REQUIRE(nm.rc == 0);

  std::set<std::string> exported;
  std::vector<std::string> foreign;
  std::istringstream lines(nm.out);
  for (std::string line; std::getline(lines, line);) {
    const size_t space = line.find_last_of(' ');
    if (line.empty() || space == std::string::npos) continue;
    const std::string name = line.substr(space + 1);
    if (name.rfind("xent_", 0) == 0) exported.insert(name);
    else foreign.push_back(line);
  }
  INFO("symbols that are not xent_*: " << foreign.size());
  for (const std::string& f : foreign) UNSCOPED_INFO(f);
  CHECK(foreign.empty());

  const std::set<std::string> declared = declared_functions();
  REQUIRE(declared.size() > 40);  // the parse found the API, not a fragment of it
  std::vector<std::string> missing, extra;
  for (const std::string& d : declared)
    if (!exported.count(d)) missing.push_back(d);
  for (const std::string& e : exported)
    if (!declared.count(e)) extra.push_back(e);
  for (const std::string& m : missing) UNSCOPED_INFO("declared, not exported: " << m);
  for (const std::string& e : extra) UNSCOPED_INFO("exported, not declared: " << e);
  CHECK(missing.empty());
  CHECK(extra.empty());

  const Shell soname = sh("readelf -d " + quote(lib.string()), log);
  REQUIRE(soname.rc == 0);
  CHECK(soname.out.find("Library soname: [libxent.so.0]") != std::string::npos);
}

namespace {

// Installed once per process (Catch2 re-enters a test case for each section): the tree,
// moved after installing, and the text `xent run` gives, to compare the examples with.
struct Installed {
  TempDir tmp;
  fs::path log, staged, prefix, pc_dir, lib_dir;
  std::string expected;       // `xent run --temp 0`, without the echoed prompt
  std::string expected_seed;  // `xent run -s 7`, the sampler's defaults
};

std::string log_text(const Installed& in) { return read_text(in.log); }

const Installed& installed() {
  static std::unique_ptr<Installed> in;
  if (in) return *in;
  auto r = std::make_unique<Installed>();
  REQUIRE(!r->tmp.path.empty());
  r->log = r->tmp.path / "log.txt";
  const std::string xent = kBin + "/apps/xent";
  REQUIRE(fs::exists(xent));
  REQUIRE(fs::exists(kModel));

  // Install, then move the tree: nothing in it may point at where it was built or installed.
  r->staged = r->tmp.path / "staged";
  r->prefix = r->tmp.path / "moved";
  const Shell inst = sh("cmake --install " + quote(kBin) + " --prefix " + quote(r->staged.string()), r->log);
  INFO(log_text(*r));
  REQUIRE(inst.rc == 0);
  fs::rename(r->staged, r->prefix);
  for (const auto& e : fs::recursive_directory_iterator(r->prefix))
    if (e.path().filename() == "xent.pc") r->pc_dir = e.path().parent_path();
  REQUIRE(!r->pc_dir.empty());
  r->lib_dir = r->pc_dir.parent_path();

  const std::string run = quote(xent) + " run -q -m " + quote(kModel) + " -p " + quote(kPrompt) + " -n " +
                          std::to_string(kTokens);
  const Shell greedy = sh(run + " --temp 0", r->log);
  const Shell seeded = sh(run + " -s 7", r->log);
  INFO(log_text(*r));
  REQUIRE(greedy.rc == 0);
  REQUIRE(seeded.rc == 0);
  REQUIRE(greedy.out.size() > 10);  // real text, not just the final newline
  r->expected = greedy.out;
  r->expected_seed = seeded.out;
  in = std::move(r);
  return *in;
}

}  // namespace

TEST_CASE("an installed, moved xent tree builds examples/c with pkg-config and CMake", "[api][model]") {
  const Installed& in = installed();
  const fs::path& prefix = in.prefix;
  const fs::path& lib_dir = in.lib_dir;
  const fs::path& log = in.log;
  const fs::path tmp = in.tmp.path;
  auto log_text = [&] { return read_text(log); };

  const std::string model_args = quote(kModel) + " " + quote(kPrompt) + " " + std::to_string(kTokens);
  const std::string src = kSrc + "/examples/c";
  const std::string pkg = "PKG_CONFIG_LIBDIR=" + quote(in.pc_dir.string()) + " pkg-config";
  const std::string cflags = "-std=c99 -Wall -Wextra -pedantic -Werror";
  const std::string ld_path = "LD_LIBRARY_PATH=" + quote(lib_dir.string()) + " ";
  const std::string no_ld_path = "env -u LD_LIBRARY_PATH ";

  SECTION("the tree: one header, both libraries, no absolute build paths") {
    CHECK(fs::is_regular_file(lib_dir / "libxent.so.0.1.0"));
    CHECK(fs::read_symlink(lib_dir / "libxent.so.0") == "libxent.so.0.1.0");
    CHECK(fs::is_symlink(lib_dir / "libxent.so"));
    CHECK(fs::canonical(lib_dir / "libxent.so") == fs::canonical(lib_dir / "libxent.so.0.1.0"));
    CHECK(fs::is_regular_file(lib_dir / "libxent.a"));
    for (const char* f : {"xentConfig.cmake", "xentConfigVersion.cmake", "xentTargets.cmake"})
      CHECK(fs::is_regular_file(lib_dir / "cmake" / "xent" / f));
    std::vector<std::string> headers;
    for (const auto& e : fs::recursive_directory_iterator(prefix / "include"))
      headers.push_back(fs::relative(e.path(), prefix / "include").string());
    CHECK(headers == std::vector<std::string>{"xent.h"});

    for (const auto& e : fs::recursive_directory_iterator(prefix)) {
      if (!e.is_regular_file() || e.is_symlink()) continue;
      const std::string ext = e.path().extension().string();
      if (ext != ".cmake" && ext != ".pc") continue;
      const std::string text = read_text(e.path());
      INFO(e.path().string());
      CHECK(text.find(kBin) == std::string::npos);
      CHECK(text.find(kSrc) == std::string::npos);
      CHECK(text.find(in.staged.string()) == std::string::npos);
    }
    const Shell r = sh("readelf -d " + quote((lib_dir / "libxent.so.0.1.0").string()), log);
    REQUIRE(r.rc == 0);
    CHECK(r.out.find(kBin) == std::string::npos);  // no build-tree RPATH left behind
  }

  SECTION("pkg-config, shared") {
    const fs::path exe = tmp / "complete-pc";
    const Shell cc = sh("cc " + cflags + " -o " + quote(exe.string()) + " " + quote(src + "/complete.c") + " $(" +
                            pkg + " --cflags --libs xent)",
                        log);
    INFO(log_text());
    REQUIRE(cc.rc == 0);
    const Shell needed = sh("readelf -d " + quote(exe.string()), log);
    CHECK(needed.out.find("[libxent.so.0]") != std::string::npos);
    const Shell run = sh(ld_path + quote(exe.string()) + " " + model_args, log);
    INFO(log_text());
    REQUIRE(run.rc == 0);
    CHECK(run.out == in.expected);

    // With a seed: the sampler defaults of xent run, so the same draw.
    const Shell seeded = sh(ld_path + quote(exe.string()) + " " + model_args + " 7", log);
    INFO(log_text());
    REQUIRE(seeded.rc == 0);
    CHECK(seeded.out == in.expected_seed);
  }

  SECTION("pkg-config --static, libxent.a linked in") {
    const fs::path exe = tmp / "complete-pc-static";
    // -l:libxent.a: the archive even though libxent.so lies beside it.
    const Shell cc = sh("cc " + cflags + " -o " + quote(exe.string()) + " " + quote(src + "/complete.c") + " $(" +
                            pkg + " --cflags --static --libs xent | sed 's/-lxent\\b/-l:libxent.a/')",
                        log);
    INFO(log_text());
    REQUIRE(cc.rc == 0);
    const Shell needed = sh("readelf -d " + quote(exe.string()), log);
    CHECK(needed.out.find("libxent") == std::string::npos);
    const Shell run = sh(no_ld_path + quote(exe.string()) + " " + model_args, log);
    INFO(log_text());
    REQUIRE(run.rc == 0);
    CHECK(run.out == in.expected);
  }

  SECTION("find_package(xent) from CMAKE_PREFIX_PATH") {
    const fs::path build = tmp / "example-build";
    const Shell conf = sh("cmake -S " + quote(src) + " -B " + quote(build.string()) + " -DCMAKE_PREFIX_PATH=" +
                              quote(prefix.string()) + " -DCMAKE_BUILD_TYPE=Release" +
                              " -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_C_FLAGS=" + quote(cflags),
                          log);
    INFO(log_text());
    REQUIRE(conf.rc == 0);
    CHECK(read_text(build / "CMakeCache.txt").find("xent_DIR:PATH=" + (lib_dir / "cmake" / "xent").string()) !=
          std::string::npos);
    const Shell make = sh("cmake --build " + quote(build.string()), log);
    INFO(log_text());
    REQUIRE(make.rc == 0);

    const Shell shared = sh(ld_path + quote((build / "complete").string()) + " " + model_args, log);
    const Shell statik = sh(no_ld_path + quote((build / "complete-static").string()) + " " + model_args, log);
    INFO(log_text());
    REQUIRE(shared.rc == 0);
    REQUIRE(statik.rc == 0);
    CHECK(shared.out == in.expected);
    CHECK(statik.out == in.expected);
    const Shell needed = sh("readelf -d " + quote((build / "complete-static").string()), log);
    CHECK(needed.out.find("libxent") == std::string::npos);
  }
}
