// `xent run --backend vulkan` where no Vulkan driver can be loaded: one line on stderr says
// so, and the CPU produces the same text as a CPU-only run. The loader is pointed at a
// driver manifest that does not exist, which is what a machine without a driver looks like.
#include <catch2/catch.hpp>

#include <string>

#include "common/run-xent.h"

namespace {

const std::string kTmp = std::string(XENT_BINARY_DIR) + "/test-vulkan-nodriver";
const std::string kModel = std::string(XENT_SHARED_DIR) + "/models/clinical-gpt2-q8_0.gguf";

using Run = xent::test::XentRun;

Run run(const std::string& env, const std::string& args) { return xent::test::run_xent(kTmp, args, env); }

int count_mentions(const std::string& text, const std::string& word) {
  int n = 0;
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("xent run --backend vulkan without a driver runs on the CPU with one line", "[vulkan][apps]") {
  const std::string args = "run -m " + kModel + " -p 'MEDICATIONS: metformin 500 mg twice' -n 12 --temp 0 -t 1";
  const std::string no_driver = "VK_ICD_FILENAMES=/nonexistent/xent-icd.json VK_DRIVER_FILES=/nonexistent/xent-icd.json";
  const Run cpu = run("", args + " --backend cpu");
  const Run vk = run(no_driver, args + " --backend vulkan");
  INFO("stderr (no driver): " << vk.err);
  REQUIRE(cpu.exit_code == 0);
  CHECK(vk.exit_code == 0);
  CHECK_FALSE(cpu.out.empty());
  CHECK(vk.out == cpu.out);
  // Exactly one line names the missing backend; the CPU-only run names none.
  int lines_naming_vulkan = 0;
  size_t start = 0;
  while (start < vk.err.size()) {
    size_t end = vk.err.find('\n', start);
    if (end == std::string::npos) end = vk.err.size();
    const std::string line = vk.err.substr(start, end - start);
    if (count_mentions(line, "vulkan") > 0 || count_mentions(line, "Vulkan") > 0) ++lines_naming_vulkan;
    start = end + 1;
  }
  CHECK(lines_naming_vulkan == 1);
  CHECK(count_mentions(cpu.err, "vulkan") == 0);
}
