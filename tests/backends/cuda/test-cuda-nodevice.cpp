// The CUDA backend where a build has it: without a device it must step aside (null
// backend, a reason, one note, the CPU computes the same logits); with one, it must run.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "common/reference.h"
#include "runtime/inference/context.h"
#include "runtime/inference/model.h"

using namespace xent;

namespace {

const std::string kModel = "models/tiny-llama-spm-q8_0.gguf";

// Evaluates a fixed prompt of ids (no tokenizer needed) as one batch, then one more token
// through the cache (the decode path); the context keeps the last token's logits.
std::unique_ptr<Context> run(const Model& model, const std::vector<std::string>& backends,
                             std::vector<std::string>* notes) {
  ContextParams cp;
  cp.n_ctx = 64;
  cp.n_threads = 2;
  cp.backends = backends;
  auto ctx = std::make_unique<Context>(model, cp, notes);
  const std::vector<int32_t> tokens = {1, 450, 4996, 1735, 1701, 432, 2988, 3, 77, 5000};
  ctx->decode(tokens.data(), tokens.size());
  const int32_t next = 42;
  ctx->decode(&next, 1);
  return ctx;
}

std::vector<float> last_logits(const Context& ctx) {
  return std::vector<float>(ctx.logits(), ctx.logits() + ctx.n_vocab());
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  float d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

}  // namespace

TEST_CASE("cuda: the backend is compiled in and a missing device index is refused", "[cuda]") {
  const std::vector<std::string> names = available_backends();
  CHECK(std::find(names.begin(), names.end(), "cuda") != names.end());
  std::string why;
  CHECK(create_backend("cuda99", 1, &why) == nullptr);
  CHECK_FALSE(why.empty());
  CHECK(why.find("CUDA device") != std::string::npos);
}

TEST_CASE("cuda: without a device the context falls back to the CPU, else it uses the device", "[cuda]") {
  std::string why;
  std::unique_ptr<Backend> probe = create_backend("cuda", 1, &why);
  const bool have_device = probe != nullptr;
  const std::string probe_name = probe ? probe->name() : "";
  const bool probe_is_host = probe && probe->is_host();
  const std::string probe_description = probe ? probe->device_description() : "";
  const std::string path = test::shared_path(kModel);
  REQUIRE(test::file_exists(path));
  std::unique_ptr<Model> model = Model::load(path);

  probe.reset();  // the contexts make their own

  std::vector<std::string> cpu_notes;
  const std::vector<float> cpu = last_logits(*run(*model, {"cpu"}, &cpu_notes));
  CHECK(cpu_notes.empty());

  std::vector<std::string> notes;
  const std::unique_ptr<Context> ctx = run(*model, {"cuda"}, &notes);
  const std::vector<float> via_cuda = last_logits(*ctx);
  const float diff = max_abs_diff(cpu, via_cuda);
  INFO("max |logit difference| to a CPU-only context: " << diff);

  if (!have_device) {
    // The path CI takes: a clear reason, nothing listed, one note, the CPU does the work.
    INFO("reason: " << why);
    CHECK(why.rfind("no CUDA device", 0) == 0);
    CHECK(why.size() > std::string("no CUDA device").size());
    for (const std::string& d : list_devices()) CHECK(d.rfind("cuda", 0) != 0);
    REQUIRE(notes.size() == 1);
    CHECK(notes[0].find("cuda") != std::string::npos);
    CHECK(notes[0].find("no CUDA device") != std::string::npos);
    REQUIRE(ctx->backends().size() == 1);
    CHECK(ctx->backends()[0]->is_host());
    // The same CPU kernels on the same inputs: the same logits.
    CHECK(diff <= 1e-5f);
  } else {
    // A device exists: it is named, listed, used without notes, and agrees with the CPU.
    CHECK(probe_name == "cuda0");
    CHECK_FALSE(probe_is_host);
    CHECK_FALSE(probe_description.empty());
    bool listed = false;
    for (const std::string& d : list_devices()) listed = listed || d.rfind("cuda0: ", 0) == 0;
    CHECK(listed);
    CHECK(notes.empty());
    REQUIRE(ctx->backends().size() == 2);
    CHECK(ctx->backends()[0]->name() == "cuda0");
    const std::vector<int>& where = ctx->scheduler().placement();
    const long on_device = std::count(where.begin(), where.end(), 0);
    INFO("nodes on the device in the last step: " << on_device << " of " << where.size());
    CHECK(on_device * 10 >= static_cast<long>(where.size()) * 9);
    // Q8_0 on the CPU quantizes activations to 8 bits; the device computes in f32.
    CHECK(diff <= 0.05f);
  }
}
