// Checks a model against shared/reference/logits: tokens, teacher-forced top-10 logits
// (as one batch and token by token), top-1 and greedy agreement, with the tolerances of
// shared/reference/README.md. Used by the CPU, Vulkan and CUDA test suites alike.
#pragma once
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "runtime/inference/context.h"
#include "runtime/inference/lora.h"
#include "runtime/inference/model.h"

namespace xent::test {

inline std::string shared_path(const std::string& rel) { return std::string(XENT_SHARED_DIR) + "/" + rel; }

inline bool file_exists(const std::string& p) { return std::ifstream(p).good(); }

// Tolerance by the type in the model's file name (README: F32/F16/BF16 0.05; Q8_0 and
// the 32-block quants 0.4; K-quants 0.6).
inline float reference_tolerance(const std::string& model_name) {
  for (const char* t : {"-f32", "-f16", "-bf16"})
    if (model_name.find(t) != std::string::npos) return 0.05f;
  if (model_name.find("_k") != std::string::npos) return 0.6f;
  return 0.4f;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct ReferenceResult {
  float max_abs_diff = 0;     // over every position and every reference top-10 id
  int top1_checked = 0, top1_mismatch = 0;
  int greedy_checked = 0;     // greedy steps compared (until a near-tie)
};

// Evaluates `prompt_name` with the model file `model_path` and compares with the reference
// of `ref_name` (usually the same name; converted/quantized files use their peer's name).
// `ref_path` names the JSON file (check_reference_at) or, through ref_name, one of
// shared/reference/logits (check_reference).
inline ReferenceResult check_reference_at(const std::string& model_path, const std::string& ref_path,
                                          const std::string& prompt_name, const ContextParams& base_params,
                                          float tol, const std::vector<std::pair<std::string, float>>& loras = {}) {
  INFO("reference " << ref_path << " model " << model_path << " ubatch " << base_params.n_ubatch);
  REQUIRE(file_exists(ref_path));
  REQUIRE(file_exists(model_path));
  const nlohmann::json ref = nlohmann::json::parse(read_text(ref_path));
  const std::string prompt = read_text(shared_path("prompts/" + prompt_name + ".txt"));
  REQUIRE(prompt == ref["prompt"].get<std::string>());

  std::unique_ptr<Model> model = Model::load(model_path);
  const std::vector<int32_t> tokens = model->tokenizer().encode(prompt, true, true);
  REQUIRE(tokens == ref["tokens"].get<std::vector<int32_t>>());

  Context ctx(*model, base_params);
  ctx.set_adapters(load_adapters(*model, loras));  // LoRA adapters (path, scale), as the reference had them
  ctx.decode(tokens.data(), tokens.size(), /*all_logits=*/true);
  const int64_t n_vocab = model->hparams().n_vocab;

  ReferenceResult r;
  const auto& forced = ref["teacher_forced"];
  REQUIRE(forced.size() == tokens.size());
  for (size_t pos = 0; pos < tokens.size(); ++pos) {
    const float* logits = ctx.logits_at(pos);
    const auto& top = forced[pos];
    for (const auto& pair : top) {
      const int32_t id = pair[0].get<int32_t>();
      const float want = pair[1].get<float>();
      const float diff = std::fabs(logits[id] - want);
      r.max_abs_diff = std::max(r.max_abs_diff, diff);
      if (diff > tol) {
        INFO("position " << pos << " token " << id << ": ours " << logits[id] << " reference " << want);
        CHECK(diff <= tol);
      }
    }
    const float margin = top[0][1].get<float>() - top[1][1].get<float>();
    if (margin >= 2 * tol) {
      ++r.top1_checked;
      const int32_t ours = static_cast<int32_t>(std::max_element(logits, logits + n_vocab) - logits);
      if (ours != top[0][0].get<int32_t>()) {
        ++r.top1_mismatch;
        INFO("position " << pos << ": top-1 ours " << ours << " reference " << top[0][0]);
        CHECK(ours == top[0][0].get<int32_t>());
      }
    }
  }

  // Greedy continuation: equal up to the first step whose reference margin is below 2*tol.
  const auto greedy = ref["greedy"].get<std::vector<int32_t>>();
  const auto margins = ref["greedy_margins"].get<std::vector<float>>();
  for (size_t step = 0; step < greedy.size(); ++step) {
    if (margins[step] < 2 * tol) break;
    const float* logits = ctx.logits();
    const int32_t ours = static_cast<int32_t>(std::max_element(logits, logits + n_vocab) - logits);
    INFO("greedy step " << step);
    REQUIRE(ours == greedy[step]);
    ++r.greedy_checked;
    if (step + 1 < greedy.size()) ctx.decode(&ours, 1);
  }
  return r;
}

inline ReferenceResult check_reference(const std::string& model_path, const std::string& ref_name,
                                       const std::string& prompt_name, const ContextParams& base_params,
                                       float tol) {
  return check_reference_at(model_path, shared_path("reference/logits/" + ref_name + "--" + prompt_name + ".json"),
                            prompt_name, base_params, tol);
}

}  // namespace xent::test
