// `xent bench-autocomplete`: replays typing a note character by character through the
// autocomplete engine and reports latency percentiles, tokens evaluated per keystroke and the
// quality a typist would see: keystrokes saved and words hit, top-1 and top-N.
#include <algorithm>
#include <climits>
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

// Where a suggestion takes the note, if the note goes on with it up to a word end: the
// offset after it, else 0.
size_t accepted_end(const std::string& note, size_t at, const char* insert) {
  const std::string ins = insert;
  if (ins.empty() || note.compare(at, ins.size(), ins) != 0) return 0;
  const size_t end = at + ins.size();
  return end >= note.size() || !is_word_char(note[end]) ? end : 0;
}

// One word of the note: its letters are [begin, end); the keystrokes that may complete it
// start at `from`, the end of the word before (so " metformin" after "MEDICATIONS:" counts).
struct Word {
  size_t from = 0, begin = 0, end = 0;
  int n_tokens = 0;  // " word" (with the space before it, if any) in the model's tokenizer
};

std::vector<Word> words_of(const std::string& note, const xent_model* model) {
  std::vector<Word> words;
  size_t prev_end = 0;
  for (size_t i = 0; i < note.size();) {
    if (!is_word_char(note[i])) {
      ++i;
      continue;
    }
    Word w;
    w.from = prev_end;
    w.begin = i;
    while (i < note.size() && is_word_char(note[i])) ++i;
    w.end = i;
    const size_t tb = w.begin > 0 && note[w.begin - 1] == ' ' ? w.begin - 1 : w.begin;
    const int32_t len = static_cast<int32_t>(w.end - tb);
    const int32_t nt = xent_tokenize(model, note.data() + tb, len, nullptr, 0, false, false);
    w.n_tokens = nt < 0 && nt != INT32_MIN ? -nt : std::max(nt, 1);
    words.push_back(w);
    prev_end = w.end;
  }
  return words;
}

// How far the top-1 suggestion takes the note one word at a time (Ctrl+Right in the web
// page, one key per word): the end of its longest run of leading words that is what follows
// in the note up to a word end, and how many words that is (end 0: not even the first word).
// A word is what separates it from the text before (space, punctuation) and its letters.
struct WordAccept {
  size_t end = 0;
  size_t n_words = 0;
};

WordAccept accepted_words(const std::string& note, size_t at, const char* insert) {
  const std::string ins = insert;
  WordAccept best;
  size_t j = 0, n = 0;
  while (j < ins.size()) {
    while (j < ins.size() && !is_word_char(ins[j])) ++j;
    while (j < ins.size() && is_word_char(ins[j])) ++j;
    ++n;
    if (note.compare(at, j, ins, 0, j) != 0) break;
    const size_t end = at + j;
    if (end >= note.size() || !is_word_char(note[end])) best = {end, n};
  }
  return best;
}

// What the replay saw at each offset of the note (the text typed so far = note[0, i)):
// where accepting the top-1 suggestion, or the best of all shown, would take the note
// (0: none of them is what follows), and the top-1 taken word by word.
struct Offered {
  std::vector<size_t> top1, topn;
  std::vector<WordAccept> top1_words;
};

// The simulated user types the note; whenever a suggestion is exactly what follows up to a
// word end, one key accepts it. Because accepting jumps to an offset the replay also
// typed, one replay serves both users. Returns the keys pressed.
size_t keys_pressed(const std::vector<size_t>& accept_at, size_t n) {
  size_t keys = 0;
  for (size_t i = 0; i < n; ++keys) i = accept_at[i] > i ? accept_at[i] : i + 1;
  return keys;
}

// The same user with one more key: a suggestion that is right only in its first words is
// taken a word per key (one key takes it whole when all of it is right, as above). After a
// word the page keeps the rest as the ghost; the replay shows the next offset's own
// suggestion instead, which is what the page shows once the ghost is used up.
size_t keys_pressed_by_word(const std::vector<size_t>& whole, const std::vector<WordAccept>& words, size_t n) {
  size_t keys = 0;
  for (size_t i = 0; i < n;) {
    if (whole[i] > i) {
      i = whole[i];
      ++keys;
    } else if (words[i].end > i) {
      keys += words[i].n_words;
      i = words[i].end;
    } else {
      ++i;
      ++keys;
    }
  }
  return keys;
}

struct Quality {
  double savings_top1 = 0, savings_topn = 0;  // share of the note's bytes not typed
  double savings_top1_words = 0;              // top-1, also taken a word per key
  double hit_top1 = 0, hit_topn = 0;          // words offered at some keystroke before their end
  double first_top1 = 0, first_topn = 0;      // words offered before their first letter
  // By the word's length in tokens: 1, 2, 3, 4+.
  size_t by_len_words[4] = {0, 0, 0, 0};
  double by_len_top1[4] = {0, 0, 0, 0}, by_len_topn[4] = {0, 0, 0, 0};
  size_t n_words = 0;
};

Quality score(const std::string& note, const std::vector<Word>& words, const Offered& off) {
  Quality q;
  const double n = static_cast<double>(note.size());
  q.savings_top1 = 1.0 - static_cast<double>(keys_pressed(off.top1, note.size())) / n;
  q.savings_topn = 1.0 - static_cast<double>(keys_pressed(off.topn, note.size())) / n;
  q.savings_top1_words = 1.0 - static_cast<double>(keys_pressed_by_word(off.top1, off.top1_words, note.size())) / n;
  size_t h1 = 0, hn = 0, f1 = 0, fn = 0;
  size_t b1[4] = {0, 0, 0, 0}, bn[4] = {0, 0, 0, 0};
  for (const Word& w : words) {
    bool any1 = false, anyn = false, first1 = false, firstn = false;
    for (size_t i = w.from; i < w.end; ++i) {
      // A phrase (--words 2..3) completes this word too when it ends past it.
      const bool y1 = off.top1[i] >= w.end, yn = off.topn[i] >= w.end;
      any1 |= y1;
      anyn |= yn;
      if (i <= w.begin) {
        first1 |= y1;
        firstn |= yn;
      }
    }
    const int b = std::clamp(w.n_tokens, 1, 4) - 1;
    ++q.by_len_words[b];
    h1 += any1, hn += anyn, f1 += first1, fn += firstn;
    b1[b] += any1, bn[b] += anyn;
  }
  q.n_words = words.size();
  const double nw = std::max<double>(1, static_cast<double>(words.size()));
  q.hit_top1 = h1 / nw, q.hit_topn = hn / nw, q.first_top1 = f1 / nw, q.first_topn = fn / nw;
  for (int b = 0; b < 4; ++b) {
    const double d = std::max<double>(1, static_cast<double>(q.by_len_words[b]));
    q.by_len_top1[b] = b1[b] / d;
    q.by_len_topn[b] = bn[b] / d;
  }
  return q;
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
  if (o.beam_width > 0) p.beam_width = o.beam_width;
  if (o.max_tokens > 0) p.max_tokens = o.max_tokens;
  if (o.min_probability >= 0) p.min_probability = o.min_probability;

  std::vector<double> ms;
  uint64_t n_prefix = 0, n_tree = 0, n_steps = 0, n_reused = 0;
  Offered off;
  size_t with_suggestion = 0, top1_hits = 0, topn_hits = 0;  // per keystroke that shows one
  off.top1.assign(note.size() + 1, 0);
  off.topn.assign(note.size() + 1, 0);
  off.top1_words.assign(note.size() + 1, WordAccept{});
  for (size_t i = 0; i < note.size(); ++i) {
    // A UTF-8 character is one keystroke.
    if (i > 0 && (static_cast<unsigned char>(note[i]) & 0xC0) == 0x80) continue;
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
    for (int32_t k = 0; k < r->n_suggestions; ++k) {
      const size_t e = accepted_end(note, i, r->suggestions[k].insert);
      if (k == 0) off.top1[i] = e;
      if (k == 0) off.top1_words[i] = accepted_words(note, i, r->suggestions[k].insert);
      off.topn[i] = std::max(off.topn[i], e);
    }
    if (r->n_suggestions > 0 && i > 0) {
      ++with_suggestion;
      top1_hits += off.top1[i] != 0;
      topn_hits += off.topn[i] != 0;
    }
    xent_autocomplete_result_free(r);
  }
  const Quality q = score(note, words_of(note, model), off);
  const double n = static_cast<double>(ms.size());
  double total_ms = 0;
  for (double v : ms) total_ms += v;
  nlohmann::json by_len = nlohmann::json::array();
  const char* len_names[4] = {"1", "2", "3", "4+"};
  for (int b = 0; b < 4; ++b)
    by_len.push_back({{"tokens", len_names[b]}, {"words", q.by_len_words[b]},
                      {"top1_hit", q.by_len_top1[b]}, {"topn_hit", q.by_len_topn[b]}});
  nlohmann::json j = {
      {"model", xent_model_description(model)},
      {"backends", xent_context_backends(ctx)},
      {"threads", o.model.threads},
      {"note_bytes", note.size()},
      {"words", q.n_words},
      {"n_suggestions", p.n_suggestions},
      {"max_words", p.max_words},
      {"beam_width", p.beam_width},
      {"max_tokens", p.max_tokens},
      {"min_probability", p.min_probability},
      {"keystrokes", ms.size()},
      {"p50_ms", percentile(ms, 0.50)},
      {"p95_ms", percentile(ms, 0.95)},
      {"p99_ms", percentile(ms, 0.99)},
      {"max_ms", percentile(ms, 1.0)},
      {"mean_ms", total_ms / n},
      {"context_tokens_per_keystroke", static_cast<double>(n_prefix) / n},
      {"tree_tokens_per_keystroke", static_cast<double>(n_tree) / n},
      {"tokens_per_keystroke", static_cast<double>(n_prefix + n_tree) / n},
      {"tree_steps_per_keystroke", static_cast<double>(n_steps) / n},
      {"tree_nodes_reused_per_keystroke", static_cast<double>(n_reused) / n},
      {"top1_accuracy", with_suggestion ? static_cast<double>(top1_hits) / static_cast<double>(with_suggestion) : 0.0},
      {"topn_accuracy", with_suggestion ? static_cast<double>(topn_hits) / static_cast<double>(with_suggestion) : 0.0},
      {"keystroke_savings_top1", q.savings_top1},
      {"keystroke_savings_topn", q.savings_topn},
      {"keystroke_savings_top1_by_word", q.savings_top1_words},
      {"word_hit_top1", q.hit_top1},
      {"word_hit_topn", q.hit_topn},
      {"word_hit_first_key_top1", q.first_top1},
      {"word_hit_first_key_topn", q.first_topn},
      {"hit_by_tokens", by_len},
  };
  if (o.output == "json") {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  const int k = p.n_suggestions;
  std::printf("### %s (%s), %d threads\n\n", xent_model_description(model), xent_context_backends(ctx),
              o.model.threads);
  std::printf("%zu bytes, %zu words, %zu keystrokes; %d suggestions, %d word(s), beam %d, max %d tokens, min p %.3g\n\n",
              note.size(), q.n_words, ms.size(), k, p.max_words, p.beam_width, p.max_tokens,
              static_cast<double>(p.min_probability));
  std::printf("| savings top-1 | savings top-%d | word hit top-1 | top-%d | before 1st letter top-1 | top-%d | p50 | p95 | p99 | tokens/key (context + tree) |\n", k, k, k);
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  std::printf("| %.1f %% | %.1f %% | %.1f %% | %.1f %% | %.1f %% | %.1f %% | %.2f ms | %.2f ms | %.2f ms | %.2f (%.2f + %.2f) |\n\n",
              100 * q.savings_top1, 100 * q.savings_topn, 100 * q.hit_top1, 100 * q.hit_topn,
              100 * q.first_top1, 100 * q.first_topn, j["p50_ms"].get<double>(), j["p95_ms"].get<double>(),
              j["p99_ms"].get<double>(), j["tokens_per_keystroke"].get<double>(),
              j["context_tokens_per_keystroke"].get<double>(), j["tree_tokens_per_keystroke"].get<double>());
  if (p.max_words > 1)
    std::printf("Top-1 taken a word per key where only its first words are right (Ctrl+Right): savings %.1f %%.\n\n",
                100 * q.savings_top1_words);
  std::printf("| word length | words | hit top-1 | hit top-%d |\n|---|---|---|---|\n", k);
  for (int b = 0; b < 4; ++b)
    std::printf("| %s token%s | %zu | %.1f %% | %.1f %% |\n", len_names[b], b == 0 ? "" : "s", q.by_len_words[b],
                100 * q.by_len_top1[b], 100 * q.by_len_topn[b]);
  std::printf("\n(savings: the share of the note's bytes a user need not type when one key accepts a suggestion "
              "that is exactly what follows up to a word end; a word is hit when such a suggestion completing it "
              "was shown at some keystroke from the end of the word before to its last letter. %.1f tree steps "
              "and %.1f reused tree nodes per key.)\n",
              j["tree_steps_per_keystroke"].get<double>(), j["tree_nodes_reused_per_keystroke"].get<double>());
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
  cmd->add_option("--beam", o->beam_width, "candidates kept per step (default: the engine's)")->check(CLI::Range(1, 256));
  cmd->add_option("--max-tokens", o->max_tokens, "tokens per suggestion (default: the engine's)")->check(CLI::Range(1, 32));
  cmd->add_option("--min-probability", o->min_probability, "suggestion threshold (default: the engine's)")->check(CLI::Range(0.0f, 1.0f));
  cmd->add_flag("--per-key", o->per_key, "print each keystroke's latency and work to stderr");
  cmd->add_option("--output", o->output, "text (markdown tables) or json")->check(CLI::IsMember({"text", "json"}));
  cmd->callback([o, &exit_code] { exit_code = run_autocomplete_bench(*o); });
}

}  // namespace xent::app
