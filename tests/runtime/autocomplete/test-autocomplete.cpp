// Autocomplete: the token-tree beam against a brute-force search that re-evaluates every
// path from scratch with plain Context::decode; cache reuse while typing; the clinical demo.
#include <catch2/catch.hpp>

#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "runtime/autocomplete/autocomplete.h"
#include "runtime/inference/context.h"
#include "runtime/inference/model.h"
#include "xent.h"

namespace {

using xent::AutocompleteParams;
using xent::Autocompleter;
using xent::Context;
using xent::Model;

const std::string kClinical = std::string(XENT_SHARED_DIR) + "/models/clinical-gpt2-q8_0.gguf";

const Model& clinical() {
  static std::unique_ptr<Model> m = Model::load(kClinical);
  return *m;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// ---- the reference: exhaustive depth-first search, every node evaluated from scratch ----
// It follows the rules stated in runtime/autocomplete/autocomplete.cpp, written again from that
// description: a node is the context plus a token path; paths must agree with the partial
// word; past it, word tokens extend the word, boundary tokens end it once it has a letter
// or digit; a suggestion's probability is the path's times the word-end mass.
class Reference {
 public:
  Reference(const Model& model, const AutocompleteParams& p) : model_(model), p_(p) {
    xent::ContextParams cp;
    ctx_ = std::make_unique<Context>(model, cp);
    const xent::Tokenizer& tok = model.tokenizer();
    const int32_t n = static_cast<int32_t>(model.hparams().n_vocab);
    pieces_.resize(static_cast<size_t>(n));
    kinds_.assign(static_cast<size_t>(n), 'x');
    for (int32_t t = 0; t < n; ++t) {
      if (tok.is_end_of_generation(t)) {
        kinds_[t] = 'e';
        continue;
      }
      const auto type = tok.token_type(t);
      if (type == xent::TokenType::Control || type == xent::TokenType::Unused || type == xent::TokenType::Unknown)
        continue;
      pieces_[t] = tok.token_to_piece(t, false);
      const std::string& s = pieces_[t];
      if (s.empty()) continue;
      if (s.find_first_of("\r\n") != std::string::npos) kinds_[t] = 'l';
      else if (!word_char(s[0])) kinds_[t] = 'b';
      else kinds_[t] = 'w';
    }
  }

  // insert -> probability, for every suggestion at or above min_probability.
  std::map<std::string, double> run(const std::string& text) {
    size_t ws = text.size();
    while (ws > 0 && word_char(text[ws - 1])) --ws;
    if (ws > 0 && text[ws - 1] == ' ') --ws;
    partial_ = text.substr(ws);
    context_ = model_.tokenizer().encode(text.substr(0, ws), false, false);
    if (context_.empty()) context_.push_back(model_.tokenizer().bos() >= 0 ? model_.tokenizer().bos() : model_.tokenizer().eos());
    found_.clear();
    n_nodes = 0;
    std::vector<int32_t> path;
    visit(path, "", 0.0, 0, partial_.size());
    std::map<std::string, double> out;
    for (const auto& [ins, prob] : found_)
      if (prob >= p_.min_probability) out[ins] = prob;
    return out;
  }
  int n_nodes = 0;

 private:
  static bool word_char(char c) {
    const unsigned char u = static_cast<unsigned char>(c);
    return u >= 0x80 || std::isalnum(u);
  }

  void visit(std::vector<int32_t>& path, const std::string& bytes, double logp, int words_done, size_t seg_start) {
    ++n_nodes;
    std::vector<int32_t> all = context_;
    all.insert(all.end(), path.begin(), path.end());
    ctx_->truncate(0);
    ctx_->decode(all.data(), all.size(), false);
    const int64_t n = ctx_->n_vocab();
    const std::vector<float> logits(ctx_->logits(), ctx_->logits() + n);
    double mx = -1e30, sum = 0;
    for (float l : logits) mx = std::max(mx, static_cast<double>(l));
    for (float l : logits) sum += std::exp(l - mx);
    const double lse = mx + std::log(sum);
    const double log_min = std::log(static_cast<double>(p_.min_probability));
    const bool can_grow = static_cast<int>(path.size()) < p_.max_tokens;
    auto descend = [&](int32_t t, double lp, int wd, size_t seg) {
      path.push_back(t);
      visit(path, bytes + pieces_[t], lp, wd, seg);
      path.pop_back();
    };
    if (bytes.size() < partial_.size()) {
      if (!can_grow) return;
      const std::string need = partial_.substr(bytes.size());
      for (int32_t t = 0; t < n; ++t) {
        const std::string& s = pieces_[t];
        if (s.empty() || kinds_[t] == 'e') continue;
        const size_t m = std::min(s.size(), need.size());
        if (s.substr(0, m) != need.substr(0, m)) continue;
        const double lp = logp + logits[t] - lse;
        if (lp >= log_min) descend(t, lp, words_done, seg_start);
      }
      return;
    }
    bool content = false;
    for (size_t i = seg_start; i < bytes.size(); ++i) content = content || word_char(bytes[i]);
    double end_mass = 0;
    for (int32_t t = 0; t < n; ++t) {
      const char k = kinds_[t];
      if (k == 'x') continue;
      const double lp = logp + logits[t] - lse;
      const bool keep = can_grow && lp >= log_min;
      if (k == 'w') {
        if (keep) descend(t, lp, words_done, seg_start);
      } else if (content) {
        if (words_done + 1 >= p_.max_words || k != 'b') end_mass += std::exp(logits[t] - lse);
        else if (keep) descend(t, lp, words_done + 1, bytes.size());
      } else if (k == 'b' && keep) {
        descend(t, lp, words_done, seg_start);
      }
    }
    if (content && end_mass > 0) found_[bytes.substr(partial_.size())] += std::exp(logp) * end_mass;
  }

  const Model& model_;
  AutocompleteParams p_;
  std::unique_ptr<Context> ctx_;
  std::vector<std::string> pieces_;
  std::vector<char> kinds_;
  std::vector<int32_t> context_;
  std::string partial_;
  std::map<std::string, double> found_;
};

std::map<std::string, double> as_map(const xent::AutocompleteResult& r) {
  std::map<std::string, double> m;
  for (const auto& s : r.suggestions) m[s.insert] = s.probability;
  return m;
}

void require_same(const std::map<std::string, double>& got, const std::map<std::string, double>& want) {
  // Suggestions right at the threshold may fall either side of it by rounding.
  const double tol = 2e-3;
  for (const auto& [ins, p] : want) {
    INFO("reference suggestion '" << ins << "' p=" << p);
    if (p < 0.05 + tol && !got.count(ins)) continue;
    REQUIRE(got.count(ins) == 1);
    CHECK(std::abs(got.at(ins) - p) < tol);
  }
  for (const auto& [ins, p] : got) {
    INFO("engine suggestion '" << ins << "' p=" << p);
    if (p < 0.05 + tol && !want.count(ins)) continue;
    CHECK(want.count(ins) == 1);
  }
}

AutocompleteParams exhaustive_params() {
  AutocompleteParams p;
  p.n_suggestions = 64;
  p.min_probability = 0.05f;
  p.beam_width = 256;  // never binds at this threshold: the beam is the exhaustive search
  p.max_tokens = 6;
  return p;
}

}  // namespace

TEST_CASE("word boundaries and the last word", "[runtime][autocomplete]") {
  CHECK(xent::last_word_start("metformin 500 mg twi") == std::string("metformin 500 mg").size());
  CHECK(xent::last_word_start("twice ") == 5);
  CHECK(xent::last_word_start("95%") == 3);
  CHECK(xent::last_word_start("word") == 0);
  CHECK(xent::last_word_start("") == 0);
  CHECK(xent::is_word_boundary_byte(' '));
  CHECK(xent::is_word_boundary_byte(';'));
  CHECK_FALSE(xent::is_word_boundary_byte('q'));
  CHECK_FALSE(xent::is_word_boundary_byte(0xC3));
  CHECK(xent::has_word_char("  x"));
  CHECK_FALSE(xent::has_word_char(" ;."));
}

TEST_CASE("tree beam equals a brute-force search evaluated from scratch", "[runtime][autocomplete][model]") {
  const Model& model = clinical();
  xent::ContextParams cp;
  Context ctx(model, cp);
  Autocompleter ac(model, ctx);
  const std::vector<std::string> texts = {
      "MEDICATIONS: metformin 500 mg twi",
      "VITAL SIGNS: oxygen saturation 95% on room",
      "HISTORY OF PRESENT ILLNESS: The patient is a 67-year-old man with a history of",
      "ALLERGIES: No known drug ",
      "PHYSICAL EXAMINATION: Lungs: clear to ausc",
  };
  for (int max_words : {1, 2}) {
    size_t n_found = 0;
    int64_t n_reused = 0;
    AutocompleteParams p = exhaustive_params();
    p.max_words = max_words;
    Reference ref(model, p);
    for (const std::string& text : texts) {
      INFO("text: '" << text << "', max_words " << max_words);
      const auto want = ref.run(text);
      // Typed up to here: the last keystrokes' trees leave distributions that this one reuses.
      for (size_t cut = 3; cut >= 1; --cut) ac.complete(text.substr(0, text.size() - cut), p);
      const auto r = ac.complete(text, p);
      REQUIRE_FALSE(r.cancelled);
      n_reused += r.n_tree_reused;
      INFO("reference nodes " << ref.n_nodes << ", tree tokens " << r.n_tree_evaluated);
      // One-word completions of these texts are likely enough to pass the threshold; two-word
      // phrases often are not, so there only the sum over the texts must be non-empty.
      if (max_words == 1) CHECK_FALSE(want.empty());
      n_found += want.size();
      require_same(as_map(r), want);
    }
    INFO("max_words " << max_words);
    CHECK(n_found > 0);  // the comparison is never vacuous
    CHECK(n_reused > 0);  // and covers distributions kept from earlier keystrokes
  }
}

TEST_CASE("typing a note reuses the cache", "[runtime][autocomplete][model]") {
  const Model& model = clinical();
  xent::ContextParams cp;
  Context ctx(model, cp);
  Autocompleter ac(model, ctx);
  Context fresh_ctx(model, cp);
  // Long enough to slide the window of a 256-token context.
  std::string note = read_text(std::string(XENT_SHARED_DIR) + "/data/clinical-notes-sample.txt");
  note.resize(std::min<size_t>(note.size(), 1600));
  AutocompleteParams p;
  int64_t evaluated = 0, keystrokes = 0;
  for (size_t i = 1; i <= note.size(); ++i) {
    const std::string text = note.substr(0, i);
    const auto r = ac.complete(text, p);
    evaluated += r.n_prefix_evaluated;
    ++keystrokes;
    // Now and then: the incremental answer equals one computed on an empty cache.
    if (i % 97 == 0) {
      Autocompleter fresh(model, fresh_ctx);
      const auto want = fresh.complete(text, p);
      INFO("after " << i << " characters");
      REQUIRE(r.suggestions.size() == want.suggestions.size());
      for (size_t k = 0; k < r.suggestions.size(); ++k) {
        CHECK(r.suggestions[k].insert == want.suggestions[k].insert);
        CHECK(std::abs(r.suggestions[k].probability - want.suggestions[k].probability) < 1e-3);
      }
    }
  }
  const double per_key = static_cast<double>(evaluated) / static_cast<double>(keystrokes);
  INFO("context tokens evaluated per keystroke: " << per_key);
  CHECK(per_key <= 2.0);
  CHECK(per_key > 0.0);
}

TEST_CASE("a word's first keystroke evaluates the finished word inside its first tree step", "[runtime][autocomplete][model]") {
  // Typing a space after a word the tree had suggested: the word's tokens are evaluated as
  // the first rows of the next tree step. Each such answer must equal one from an empty cache,
  // and so must the next keystroke's (which reads the cache those rows left).
  const Model& model = clinical();
  xent::ContextParams cp;
  Context ctx(model, cp), fresh_ctx(model, cp);
  Autocompleter ac(model, ctx);
  std::string note = read_text(std::string(XENT_SHARED_DIR) + "/data/clinical-notes-sample.txt");
  note.resize(std::min<size_t>(note.size(), 700));
  AutocompleteParams p;
  int n_word_starts = 0, n_in_tree = 0, n_checked = 0;
  bool check_next = false;
  for (size_t i = 1; i <= note.size(); ++i) {
    const std::string text = note.substr(0, i);
    const auto r = ac.complete(text, p);
    REQUIRE_FALSE(r.cancelled);
    const bool word_start = text.back() == ' ' && i >= 2 && text[i - 2] != ' ' && text[i - 2] != '\n';
    n_word_starts += word_start;
    n_in_tree += r.prefix_in_tree;
    if (r.prefix_in_tree) CHECK(r.n_prefix_evaluated > 0);
    if (r.prefix_in_tree || check_next) {
      Autocompleter fresh(model, fresh_ctx);
      const auto want = fresh.complete(text, p);
      INFO("after " << i << " characters: '" << text.substr(text.size() > 40 ? text.size() - 40 : 0) << "'");
      REQUIRE(r.suggestions.size() == want.suggestions.size());
      for (size_t k = 0; k < r.suggestions.size(); ++k) {
        CHECK(r.suggestions[k].insert == want.suggestions[k].insert);
        CHECK(std::abs(r.suggestions[k].probability - want.suggestions[k].probability) < 1e-3);
      }
      ++n_checked;
    }
    check_next = r.prefix_in_tree;
  }
  INFO("word starts " << n_word_starts << ", evaluated in the tree " << n_in_tree);
  CHECK(n_in_tree * 2 > n_word_starts);  // most word starts take the shorter way
  CHECK(n_checked >= 2 * n_in_tree - 1);
}

TEST_CASE("clinical model completes medication and vital-sign phrases", "[runtime][autocomplete][model]") {
  const Model& model = clinical();
  xent::ContextParams cp;
  Context ctx(model, cp);
  Autocompleter ac(model, ctx);
  AutocompleteParams p;
  auto r = ac.complete("metformin 500 mg twice", p);
  REQUIRE_FALSE(r.suggestions.empty());
  CHECK(r.suggestions[0].text == "daily");
  CHECK(r.suggestions[0].insert == " daily");
  for (size_t i = 0; i < r.suggestions.size() && i < 3; ++i)
    std::printf("after 'metformin 500 mg twice': '%s' p=%.3f\n", r.suggestions[i].text.c_str(), r.suggestions[i].probability);
  // A clear first choice: more likely than the runner-up by a wide margin.
  CHECK(r.suggestions[0].probability > 0.2);
  if (r.suggestions.size() > 1) CHECK(r.suggestions[0].probability > 2 * r.suggestions[1].probability);

  r = ac.complete("oxygen saturation 95% on room", p);
  REQUIRE_FALSE(r.suggestions.empty());
  CHECK(r.suggestions[0].text == "air");

  // Mid-word: the typed part is kept in the text, the insert is the rest.
  r = ac.complete("metformin 500 mg twi", p);
  REQUIRE_FALSE(r.suggestions.empty());
  CHECK(r.suggestions[0].text == "twice");
  CHECK(r.suggestions[0].insert == "ce");

  SECTION("blocklist") {
    p.blocklist = {"Daily"};
    r = ac.complete("metformin 500 mg twice", p);
    for (const auto& s : r.suggestions) CHECK(s.text.find("daily") == std::string::npos);
  }
  SECTION("phrases") {
    p.max_words = 2;
    r = ac.complete("oxygen saturation 95% on", p);
    REQUIRE_FALSE(r.suggestions.empty());
    CHECK(r.suggestions[0].text == "room air");
  }
  SECTION("probabilities fall and stay above the threshold") {
    p.n_suggestions = 10;
    r = ac.complete("The patient is a 54-year-old", p);
    for (size_t i = 0; i < r.suggestions.size(); ++i) {
      CHECK(r.suggestions[i].probability >= p.min_probability);
      CHECK(r.suggestions[i].probability <= 1.0 + 1e-6);
      if (i) CHECK(r.suggestions[i].probability <= r.suggestions[i - 1].probability);
    }
  }
}

TEST_CASE("a cancelled request leaves a consistent cache", "[runtime][autocomplete][model]") {
  const Model& model = clinical();
  xent::ContextParams cp;
  Context ctx(model, cp);
  Autocompleter ac(model, ctx);
  std::string note = read_text(std::string(XENT_SHARED_DIR) + "/data/clinical-notes-sample.txt").substr(0, 700);
  AutocompleteParams p;
  std::atomic<bool> done{false};
  xent::AutocompleteResult cancelled_result;
  std::thread worker([&] {
    cancelled_result = ac.complete(note, p);  // cold cache: ~150 tokens, evaluated in chunks
    done = true;
  });
  while (!done) ac.cancel();
  worker.join();
  CHECK(cancelled_result.cancelled);
  CHECK(cancelled_result.suggestions.empty());

  const auto again = ac.complete(note, p);
  Context fresh_ctx(model, cp);
  Autocompleter fresh(model, fresh_ctx);
  const auto want = fresh.complete(note, p);
  REQUIRE_FALSE(again.cancelled);
  REQUIRE(again.suggestions.size() == want.suggestions.size());
  for (size_t k = 0; k < want.suggestions.size(); ++k) CHECK(again.suggestions[k].insert == want.suggestions[k].insert);
}

TEST_CASE("autocomplete C API", "[runtime][autocomplete][model]") {
  xent_model* m = xent_model_load(kClinical.c_str(), nullptr);
  REQUIRE(m);
  xent_context* c = xent_context_create(m, nullptr);
  REQUIRE(c);
  xent_autocomplete* ac = xent_autocomplete_create(c);
  REQUIRE(ac);
  const std::string text = "metformin 500 mg twice";
  xent_autocomplete_params p = xent_autocomplete_default_params();
  p.blocklist = "bid, nightly";
  xent_autocomplete_result* r = nullptr;
  REQUIRE(xent_autocomplete_run(ac, text.data(), static_cast<int32_t>(text.size()), &p, &r) == XENT_OK);
  REQUIRE(r);
  REQUIRE(r->n_suggestions >= 1);
  CHECK(std::string(r->suggestions[0].text) == "daily");
  CHECK(r->n_prefix_evaluated > 0);
  xent_autocomplete_result_free(r);

  // The same text again: nothing to evaluate for the context.
  REQUIRE(xent_autocomplete_run(ac, text.data(), static_cast<int32_t>(text.size()), &p, &r) == XENT_OK);
  CHECK(r->n_prefix_evaluated == 0);
  xent_autocomplete_result_free(r);

  // Generation on the same context in between, then autocomplete again: still right.
  xent_sampler_params sp = xent_sampler_default_params();
  sp.temperature = 0;
  xent_sampler* s = xent_sampler_create(&sp);
  REQUIRE(xent_generate(c, s, "ALLERGIES: No known", 4, nullptr, nullptr, nullptr) == XENT_OK);
  xent_sampler_free(s);
  REQUIRE(xent_autocomplete_run(ac, text.data(), static_cast<int32_t>(text.size()), &p, &r) == XENT_OK);
  REQUIRE(r->n_suggestions >= 1);
  CHECK(std::string(r->suggestions[0].text) == "daily");
  xent_autocomplete_result_free(r);

  p.max_words = 0;
  CHECK(xent_autocomplete_run(ac, text.data(), static_cast<int32_t>(text.size()), &p, &r) == XENT_ERROR_INVALID_ARGUMENT);
  CHECK(r == nullptr);
  CHECK(xent_autocomplete_run(ac, nullptr, 5, nullptr, &r) == XENT_ERROR_INVALID_ARGUMENT);
  CHECK(xent_autocomplete_run(nullptr, "x", 1, nullptr, &r) == XENT_ERROR_INVALID_ARGUMENT);
  CHECK(xent_autocomplete_create(nullptr) == nullptr);
  xent_autocomplete_result_free(nullptr);
  xent_autocomplete_free(ac);
  xent_context_free(c);
  xent_model_free(m);
}
