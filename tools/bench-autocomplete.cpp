// `xent bench-autocomplete`: replays typing a note character by character through the
// autocomplete engine and reports latency percentiles and tokens evaluated per keystroke.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench.h"
#include "commands.h"
#include "common.h"

namespace xent::app {
namespace {

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, i > 0 ? i - 1 : 0)];
}

bool is_word_char(char c) {
  const unsigned char u = static_cast<unsigned char>(c);
  return u >= 0x80 || (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z');
}

// The suggestion is what the note goes on with, up to a word end.
bool predicts(const std::string& note, size_t at, const char* insert) {
  const std::string ins = insert;
  if (ins.empty() || note.compare(at, ins.size(), ins) != 0) return false;
  const size_t end = at + ins.size();
  return end >= note.size() || !is_word_char(note[end]);
}

}  // namespace

int run_autocomplete_bench(const AutocompleteBenchOptions& o) {
  std::string note;
  if (!read_file(o.note_path, &note)) return 1;
  if (o.max_chars > 0 && note.size() > o.max_chars) note.resize(o.max_chars);
  if (note.empty()) {
    print_error("bench-autocomplete", "the note is empty");
    return 1;
  }
  xent_model* model = load_model(o.model);
  if (!model) return 1;
  std::unique_ptr<xent_model, decltype(&xent_model_free)> model_guard(model, xent_model_free);
  xent_context* ctx = create_context(model, o.model);
  if (!ctx) return 1;
  std::unique_ptr<xent_context, decltype(&xent_context_free)> ctx_guard(ctx, xent_context_free);
  xent_autocomplete* ac = xent_autocomplete_create(ctx);
  if (!ac) {
    print_error("bench-autocomplete", xent_last_error());
    return 1;
  }
  std::unique_ptr<xent_autocomplete, decltype(&xent_autocomplete_free)> ac_guard(ac, xent_autocomplete_free);
  xent_autocomplete_params p = xent_autocomplete_default_params();
  p.n_suggestions = o.n_suggestions;
  p.max_words = o.max_words;
  p.beam_width = o.beam_width;

  std::vector<double> ms;
  uint64_t n_prefix = 0, n_tree = 0, n_steps = 0, n_reused = 0;
  size_t with_suggestion = 0, top1_hits = 0, topn_hits = 0;
  for (size_t i = 1; i <= note.size(); ++i) {
    // A UTF-8 character is one keystroke.
    if (i < note.size() && (static_cast<unsigned char>(note[i]) & 0xC0) == 0x80) continue;
    xent_autocomplete_result* r = nullptr;
    if (xent_autocomplete_run(ac, note.data(), static_cast<int32_t>(i), &p, &r) != XENT_OK) {
      print_error("bench-autocomplete", xent_last_error());
      return 1;
    }
    ms.push_back(r->ms);
    if (o.per_key)
      std::fprintf(stderr, "key %4zu  %8.2f ms  context %3d  tree %4d  steps %2d  '%s'\n", i, r->ms,
                   r->n_prefix_evaluated, r->n_tree_evaluated, r->n_steps,
                   r->n_suggestions > 0 ? r->suggestions[0].text : "");
    n_prefix += static_cast<uint64_t>(r->n_prefix_evaluated);
    n_tree += static_cast<uint64_t>(r->n_tree_evaluated);
    n_steps += static_cast<uint64_t>(r->n_steps);
    n_reused += static_cast<uint64_t>(r->n_tree_reused);
    if (r->n_suggestions > 0 && i < note.size()) {
      ++with_suggestion;
      if (predicts(note, i, r->suggestions[0].insert)) ++top1_hits;
      for (int32_t k = 0; k < r->n_suggestions; ++k)
        if (predicts(note, i, r->suggestions[k].insert)) {
          ++topn_hits;
          break;
        }
    }
    xent_autocomplete_result_free(r);
  }
  const double n = static_cast<double>(ms.size());
  double total_ms = 0;
  for (double v : ms) total_ms += v;
  nlohmann::json j = {
      {"model", xent_model_description(model)},
      {"backends", xent_context_backends(ctx)},
      {"threads", o.model.threads},
      {"keystrokes", ms.size()},
      {"p50_ms", percentile(ms, 0.50)},
      {"p95_ms", percentile(ms, 0.95)},
      {"p99_ms", percentile(ms, 0.99)},
      {"max_ms", percentile(ms, 1.0)},
      {"mean_ms", total_ms / n},
      {"context_tokens_per_keystroke", static_cast<double>(n_prefix) / n},
      {"tree_tokens_per_keystroke", static_cast<double>(n_tree) / n},
      {"tree_steps_per_keystroke", static_cast<double>(n_steps) / n},
      {"tree_nodes_reused_per_keystroke", static_cast<double>(n_reused) / n},
      {"top1_accuracy", with_suggestion ? static_cast<double>(top1_hits) / static_cast<double>(with_suggestion) : 0.0},
      {"topn_accuracy", with_suggestion ? static_cast<double>(topn_hits) / static_cast<double>(with_suggestion) : 0.0},
  };
  if (o.output == "json") {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("model        %s (%s)\n", xent_model_description(model), xent_context_backends(ctx));
  std::printf("keystrokes   %zu\n", ms.size());
  std::printf("latency      p50 %.2f ms  p95 %.2f ms  p99 %.2f ms  max %.2f ms  mean %.2f ms\n",
              j["p50_ms"].get<double>(), j["p95_ms"].get<double>(), j["p99_ms"].get<double>(),
              j["max_ms"].get<double>(), j["mean_ms"].get<double>());
  std::printf("per key      %.2f context tokens, %.1f tree tokens in %.2f steps (%.1f tree nodes known from earlier keys)\n",
              j["context_tokens_per_keystroke"].get<double>(), j["tree_tokens_per_keystroke"].get<double>(),
              j["tree_steps_per_keystroke"].get<double>(), j["tree_nodes_reused_per_keystroke"].get<double>());
  std::printf("accuracy     top-1 %.1f%%  top-%d %.1f%% (the note goes on with the suggested word)\n",
              100.0 * j["top1_accuracy"].get<double>(), o.n_suggestions, 100.0 * j["topn_accuracy"].get<double>());
  return 0;
}

void add_bench_autocomplete_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<AutocompleteBenchOptions>();
  CLI::App* cmd = app.add_subcommand("bench-autocomplete", "replay typing a note and measure autocomplete latency");
  add_model_options(*cmd, o->model);
  cmd->add_option("-f,--file", o->note_path, "the note to type")->required();
  cmd->add_option("--max-chars", o->max_chars, "type only the first N bytes (0: all)");
  cmd->add_option("-n,--n-suggestions", o->n_suggestions, "suggestions per keystroke")->check(CLI::Range(1, 64));
  cmd->add_option("--words", o->max_words, "words per suggestion")->check(CLI::Range(1, 8));
  cmd->add_option("--beam", o->beam_width, "candidates kept per step")->check(CLI::Range(1, 256));
  cmd->add_flag("--per-key", o->per_key, "print each keystroke's latency and work to stderr");
  cmd->add_option("--output", o->output, "text or json")->check(CLI::IsMember({"text", "json"}));
  cmd->callback([o, &exit_code] { exit_code = run_autocomplete_bench(*o); });
}

}  // namespace xent::app
