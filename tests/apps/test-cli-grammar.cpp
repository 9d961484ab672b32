// Structured output on the command line: `xent run` and `xent chat` with --grammar,
// --grammar-file, -j/--json-schema and --json-schema-file write what the grammar admits, and
// bad grammars, bad schemas and conflicting options give one clear line and a non-zero exit.
#include <unistd.h>
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "runtime/sampling/grammar.h"

namespace {

const std::string kXent = std::string(XENT_BINARY_DIR) + "/apps/xent";
const std::string kTmp = std::string(XENT_BINARY_DIR) + "/test-cli-grammar";
const std::string kModel = std::string(XENT_SHARED_DIR) + "/models/tiny-llama-bpe-q8_0.gguf";
const std::string kSamples = std::string(XENT_SOURCE_DIR) + "/tests/runtime/sampling/";

struct Result {
  int exit_code = -1;
  bool crashed = false;
  std::string out, err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

Result run_xent(const std::string& args, const std::string& stdin_text = "") {
  std::system(("mkdir -p " + kTmp).c_str());
  const std::string base = kTmp + "/" + std::to_string(::getpid());
  {
    std::ofstream in(base + ".in", std::ios::binary);
    in << stdin_text;
  }
  const std::string cmd = kXent + " " + args + " <" + base + ".in >" + base + ".out 2>" + base + ".err";
  const int status = std::system(cmd.c_str());
  Result r;
  r.crashed = WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) >= 128);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(base + ".out");
  r.err = slurp(base + ".err");
  return r;
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

void expect_one_line_error(const Result& r, const std::string& must_mention) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK_FALSE(r.crashed);
  CHECK(r.exit_code != 0);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(r.err.find(must_mention) != std::string::npos);
}

std::string trim_newline(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

}  // namespace

TEST_CASE("xent run follows --json-schema, --grammar and their file forms", "[apps][cli]") {
  const std::string run = "run -m " + kModel + " -p JSON: -q --temp 1 ";
  for (int seed = 1; seed <= 3; ++seed) {
    INFO("seed " << seed);
    const Result r = run_xent(run + "-n 300 --seed " + std::to_string(seed) + " -j " +
                          quote(R"({"type": "object", "properties": {"dose": {"type": "number"},
                                    "unit": {"enum": ["mg", "ml"]}}, "required": ["dose", "unit"]})"));
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    const nlohmann::json j = nlohmann::json::parse(trim_newline(r.out));
    CHECK(j.at("dose").is_number());
    CHECK((j.at("unit") == "mg" || j.at("unit") == "ml"));
  }
  {
    const Result r = run_xent(run + "-n 300 --seed 4 --json-schema-file " + kSamples + "schemas/medication-list.json");
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(nlohmann::json::parse(trim_newline(r.out)).at("medications").is_array());
  }
  {
    const std::string gbnf = slurp(kSamples + "grammars/chess.gbnf");
    const Result r = run_xent(run + "-n 300 --seed 5 --grammar-file " + kSamples + "grammars/chess.gbnf");
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(xent::Grammar::parse(gbnf)->accepts(trim_newline(r.out)));
    CHECK(r.out.rfind("1. ", 0) == 0);
  }
  {
    const Result r = run_xent(run + "-n 300 --seed 6 --grammar " + quote(R"(root ::= ("yes" | "no") "!")"));
    INFO("stderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK((r.out == "yes!\n" || r.out == "no!\n"));
  }
  {  // -n reached before the grammar is complete: the output is kept and said to be incomplete
    const Result r = run_xent(run + "-n 5 --grammar " + quote(R"(root ::= "ab"{100})"));
    CHECK(r.exit_code == 0);
    CHECK(r.out.rfind("abab", 0) == 0);
    CHECK(r.err.find("incomplete under the grammar") != std::string::npos);
  }
}

TEST_CASE("xent chat replies under -j", "[apps][cli]") {
  const Result r = run_xent("chat -m " + kModel + " -n 200 --temp 1 --seed 2 -j " +
                            quote(R"({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]})"),
                        "Is it fine?");
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(nlohmann::json::parse(trim_newline(r.out)).at("ok").is_boolean());
}

TEST_CASE("bad grammars, schemas and option mixes are one clear line", "[apps][cli]") {
  const std::string run = "run -m " + kModel + " -p hi -n 4 ";
  expect_one_line_error(run_xent(run + "-j " + quote(R"({"type": "string", "pattern": "^a"})")), "'pattern' at #/pattern");
  expect_one_line_error(run_xent(run + "--json-schema " + quote(R"({"minimum": 1})")), "'minimum'");
  expect_one_line_error(run_xent(run + "--json-schema " + quote(R"({"type": )")), "not valid JSON");
  expect_one_line_error(run_xent(run + "--grammar " + quote(R"(root ::= "a)")), "unterminated string");
  expect_one_line_error(run_xent(run + "--grammar " + quote("root ::= item")), "'item' is used but never defined");
  expect_one_line_error(run_xent(run + "--grammar-file " + kTmp + "/no-such.gbnf"), "no-such.gbnf");
  expect_one_line_error(run_xent(run + "--json-schema-file " + kTmp + "/no-such.json"), "no-such.json");
  const Result both = run_xent(run + "--grammar " + quote(R"(root ::= "a")") + " -j '{}'");
  CHECK(both.exit_code != 0);
  CHECK(both.err.find("excludes") != std::string::npos);
  expect_one_line_error(run_xent("chat -m " + kModel + " -n 4 --grammar " + quote("root ::= ("), "hi"), "grammar");
}
