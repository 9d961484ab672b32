// `xent perplexity`: a trained model predicts text like its training data far better
// than chance, and a model compared with itself has zero KL divergence.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/run-xent.h"

namespace {

const std::string kTmp = std::string(XENT_BINARY_DIR) + "/test-perplexity";
const std::string kModel = std::string(XENT_SHARED_DIR) + "/models/clinical-gpt2-q8_0.gguf";
const std::string kText = std::string(XENT_SHARED_DIR) + "/data/clinical-notes-sample.txt";

using Run = xent::test::XentRun;

Run run_xent(const std::string& args) { return xent::test::run_xent(kTmp, args); }

// The number after `label` in the output; NaN when absent.
double value_after(const std::string& out, const std::string& label) {
  const size_t p = out.find(label);
  if (p == std::string::npos) return NAN;
  return std::strtod(out.c_str() + p + label.size(), nullptr);
}

}  // namespace

TEST_CASE("perplexity of the trained clinical model on clinical notes", "[tools][perplexity][model]") {
  const Run r = run_xent("perplexity -m " + kModel + " -f " + kText + " -t 2");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const double ppl = value_after(r.out, "Final estimate: PPL = ");
  const double err = value_after(r.out, " +/- ");
  CHECK(std::isfinite(ppl));
  // 8,192 tokens: a uniform guess scores 8192; the trained model knows this kind of text.
  CHECK(ppl > 1.0);
  CHECK(ppl < 50.0);
  CHECK(err > 0);
  CHECK(err < ppl * 0.2);
  CHECK(r.out.find("[1]") != std::string::npos);  // running per-chunk values
}

TEST_CASE("a model against itself: KL divergence 0, top-1 agreement 100%", "[tools][perplexity]") {
  const Run r = run_xent("perplexity -m " + kModel + " -f " + kText + " --kl-base " + kModel + " --chunks 4 -t 2");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(std::fabs(value_after(r.out, "Mean KLD: ")) < 1e-6);
  CHECK(value_after(r.out, "Same top: ") == Approx(100.0));
  CHECK(value_after(r.out, "Base PPL = ") == Approx(value_after(r.out, "Final estimate: PPL = ")));
}

TEST_CASE("perplexity refuses a context past GPT-2's position table and a short text", "[tools][perplexity]") {
  Run r = run_xent("perplexity -m " + kModel + " -f " + kText + " --ctx 1024");
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("position table") != std::string::npos);
  std::ofstream(kTmp + "/short.txt") << "Too short.";
  r = run_xent("perplexity -m " + kModel + " -f " + kTmp + "/short.txt");
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("needs at least") != std::string::npos);
}
