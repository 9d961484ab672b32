// Grammars: GBNF parse errors name the problem; the recogniser accepts and rejects what it
// should (code points, split UTF-8); and sampling under the JSON, arithmetic, list and chess
// grammars on a random-weight model emits only tokens the grammar takes, ending in outputs
// that the recogniser and (for JSON) an independent parser accept.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "formats/error.h"
#include "runtime/sampling/grammar.h"
#include "runtime/sampling/sampler.h"
#include "xent.h"

using namespace xent;

namespace {

std::string read_grammar(const std::string& name) {
  std::ifstream f(std::string(XENT_SOURCE_DIR) + "/tests/runtime/sampling/grammars/" + name, std::ios::binary);
  REQUIRE(f);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

std::string parse_error(const std::string& gbnf) {
  try {
    Grammar::parse(gbnf);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("grammar syntax errors name the problem and the place", "[runtime][grammar]") {
  CHECK(parse_error("root ::= \"a\"").empty());
  CHECK_THAT(parse_error("root = \"a\""), Catch::Contains("expected '::='"));
  CHECK_THAT(parse_error("root ::= \"a"), Catch::Contains("unterminated string"));
  CHECK_THAT(parse_error("root ::= [a-"), Catch::Contains("unterminated character class"));
  CHECK_THAT(parse_error("root ::= item\n"), Catch::Contains("'item' is used but never defined"));
  CHECK_THAT(parse_error("item ::= \"x\"\n"), Catch::Contains("no rule named 'root'"));
  CHECK_THAT(parse_error("root ::= \"a\"\nroot ::= \"b\"\n"), Catch::Contains("defined twice"));
  CHECK_THAT(parse_error("root ::= root \"a\" | \"a\"\n"), Catch::Contains("left recursion"));
  CHECK_THAT(parse_error("root ::= x\nx ::= y? x \"a\"\ny ::= \"b\"\n"), Catch::Contains("left recursion"));
  CHECK_THAT(parse_error("root ::= \"\\q\""), Catch::Contains("unknown escape"));
  CHECK_THAT(parse_error("root ::= ( \"a\" \n"), Catch::Contains("expected ')'"));
  CHECK_THAT(parse_error("root ::= \"a\"{3,1}"), Catch::Contains("n < m"));
  CHECK_THAT(parse_error("root ::= \"a\" \"b\" )"), Catch::Contains("line 1, column 18"));
  CHECK_THAT(parse_error("\n\nroot ::= [z-a]"), Catch::Contains("line 3"));
  CHECK_THAT(parse_error("root ::= *"), Catch::Contains("unexpected character '*'"));
  CHECK_THAT(parse_error("root ::= <[1234]>"), Catch::Contains("token references"));
}

TEST_CASE("the recogniser accepts the sentences and only those", "[runtime][grammar]") {
  auto g = Grammar::parse(R"(
# comments and line breaks inside groups
root  ::= greet ( ", " name ){1,2} "!"?
greet ::= "hi" | "hello"
name  ::= [A-Z] [a-z]*
)");
  CHECK(g->accepts("hi, Ann"));
  CHECK(g->accepts("hello, Bo, Cy!"));
  CHECK_FALSE(g->accepts("hi"));
  CHECK_FALSE(g->accepts("hi, ann"));
  CHECK_FALSE(g->accepts("hi, A, B, C"));
  CHECK_FALSE(g->accepts("hi, Ann!!"));

  auto cls = Grammar::parse(R"(root ::= [^a-c\n] [\x41-\x43] "\u00e9" . [é-ë]+)");
  CHECK(cls->accepts("dAéxê"));
  CHECK(cls->accepts("zC\xc3\xa9\xe2\x82\xac\xc3\xab\xc3\xaa"));  // multi-byte any and range
  CHECK_FALSE(cls->accepts("aAéxê"));
  CHECK_FALSE(cls->accepts("dDéxê"));
  CHECK_FALSE(cls->accepts("dAexê"));
  CHECK_FALSE(cls->accepts("dAéxe"));

  auto rep = Grammar::parse("root ::= \"ab\"{2} [0-9]{1,3} \"x\"{2,} \"-\"{,1}");
  CHECK(rep->accepts("abab1xx"));
  CHECK(rep->accepts("abab123xxxx-"));
  CHECK_FALSE(rep->accepts("ab1xx"));
  CHECK_FALSE(rep->accepts("abab1234xx"));
  CHECK_FALSE(rep->accepts("abab1x"));
  CHECK_FALSE(rep->accepts("abab1xx--"));

  auto json = Grammar::parse(read_grammar("json.gbnf"));
  CHECK(json->accepts(R"({"a": [1, -2.5e3, true, null], "b": {"c": "\u00e9\n"}})"));
  CHECK(json->accepts("[]"));
  CHECK_FALSE(json->accepts(R"({"a": 01})"));
  CHECK_FALSE(json->accepts(R"({"a" 1})"));
  CHECK_FALSE(json->accepts(R"([1, 2,])"));
  CHECK_FALSE(json->accepts("\"tab\tinside\""));
}

TEST_CASE("a code point split across tokens is matched when it completes", "[runtime][grammar]") {
  auto g = Grammar::parse(R"(root ::= "é" [a-z] | "€")");
  GrammarMatcher m(g);
  CHECK(m.can_accept("\xc3"));       // the first byte of é (and not of €: E2)
  CHECK_FALSE(m.can_accept("\xc4"));  // starts U+0100..U+013F: nothing allowed
  CHECK_FALSE(m.can_accept("\x80"));  // not a lead byte
  REQUIRE(m.accept("\xc3"));
  CHECK_FALSE(m.is_accepting());
  CHECK_FALSE(m.can_accept("\xa8"));  // è
  REQUIRE(m.accept("\xa9" "b"));
  CHECK(m.is_done());

  // A vocabulary with split and whole pieces: the mask takes exactly the fitting ones.
  GrammarVocab vocab({"\xe2", "\xe2\x82", "\xac", "\xc3", "\xc3\xa9", "\xc3\xa9x", "", "b", "\x82\xac"},
                     {0, 0, 0, 0, 0, 0, 1, 0, 0});
  GrammarMatcher fresh(g);
  std::vector<uint8_t> allowed;
  CHECK(fresh.allowed_tokens(vocab, allowed) == 5);
  CHECK(allowed == std::vector<uint8_t>{1, 1, 0, 1, 1, 1, 0, 0, 0});
  REQUIRE(fresh.accept("\xe2"));
  fresh.allowed_tokens(vocab, allowed);
  CHECK(allowed == std::vector<uint8_t>{0, 0, 0, 0, 0, 0, 0, 0, 1});
  REQUIRE(fresh.accept("\x82\xac"));
  fresh.allowed_tokens(vocab, allowed);
  CHECK(allowed == std::vector<uint8_t>{0, 0, 0, 0, 0, 0, 1, 0, 0});  // only the end token
  for (int32_t id = 0; id < vocab.n_vocab(); ++id) CHECK(fresh.allows(vocab, id) == (allowed[id] != 0));
}

// The regression behind a JSON output that json.parse refused: on tiny-llama-bpe a random
// model wrote `",` then E0 80 A0 E0 80 A2 (overlong forms of ' ' and '"'), which the
// recogniser decoded as a space and a quote, so the key it thought was open was not.
TEST_CASE("overlong forms, surrogates and code points past U+10FFFF are not characters", "[runtime][grammar]") {
  auto str = Grammar::parse(R"(root ::= "\"" [^"\\]* "\"")");
  GrammarMatcher m(str);
  REQUIRE(m.accept("\""));
  CHECK_FALSE(m.can_accept("\xe0\x80\xa2"));      // '"' in three bytes
  CHECK_FALSE(m.can_accept("\xe0\x80"));           // can only become an overlong form
  CHECK_FALSE(m.can_accept("\xf0\x80\x80\xa2"));  // '"' in four bytes
  CHECK_FALSE(m.can_accept("\xed\xa0\x80"));      // U+D800
  CHECK_FALSE(m.can_accept("\xf4\x90\x80\x80"));  // U+110000
  CHECK(m.can_accept("\xe0\xa0\x80"));            // U+0800, the first three-byte code point
  CHECK(m.can_accept("\xed\x9f\xbf"));            // U+D7FF
  CHECK(m.can_accept("\xf4\x8f\xbf\xbf\""));      // U+10FFFF
  CHECK(m.can_accept("\xe0"));
  CHECK_FALSE(str->accepts("\"\xe0\x80\xa2"));
  CHECK_FALSE(str->accepts("\"a\xe0\x80\xa2 \""));

  // A lead byte alone is allowed only if a valid code point it starts fits: E0 starts
  // U+0800..U+0FFF (not U+0000..U+0FFF), ED U+D000..U+D7FF, F0 U+10000..U+3FFFF.
  CHECK_FALSE(GrammarMatcher(Grammar::parse(R"(root ::= [\x00-\u07FF])")).can_accept("\xe0"));
  CHECK_FALSE(GrammarMatcher(Grammar::parse(R"(root ::= [\uD800-\uDFFF])")).can_accept("\xed"));
  CHECK_FALSE(GrammarMatcher(Grammar::parse(R"(root ::= [\x00-\uFFFF])")).can_accept("\xf0"));
  CHECK(GrammarMatcher(Grammar::parse(R"(root ::= [\u0800])")).can_accept("\xe0"));

  // The mask agrees: the overlong pieces are out, the real ones in.
  GrammarVocab vocab({"\xe0\x80\xa2", "\"", "\xe0\xa0\x80", "a", "\xe0\x80", "\xe0", "\xc0\xa2"},
                     {0, 0, 0, 0, 0, 0, 0});
  std::vector<uint8_t> allowed;
  CHECK(m.allowed_tokens(vocab, allowed) == 4);
  CHECK(allowed == std::vector<uint8_t>{0, 1, 1, 1, 0, 1, 0});
  // The same state again comes from the mask cache; a new state does not.
  std::vector<uint8_t> again;
  CHECK(m.allowed_tokens(vocab, again) == 4);
  CHECK(again == allowed);
  REQUIRE(m.accept("\xe0"));
  CHECK(m.allowed_tokens(vocab, again) == 0);  // "\xe0\xa0\x80" is not "\xa0..."; nothing fits
  REQUIRE(m.accept("\xa0\x80"));
  CHECK(m.allowed_tokens(vocab, again) == 4);
  CHECK(again == allowed);  // back in the string: the cached mask
}

TEST_CASE("nested optional repetitions match in time linear in their size (fuzz-grammar)", "[runtime][grammar]") {
  // An optional item repeated 40 times, that repeated 4 times: the ways to skip items are
  // 2^40 paths to the same parse stacks. The fuzzer's input had {1,24}; walking every path
  // took minutes. This test runs for seconds only if each stack is expanded once.
  const auto g = Grammar::parse("root ::= item{0,4}\nitem ::= \"\" [a-z ]?{1,40}\n");
  CHECK(g->accepts(""));
  CHECK(g->accepts(std::string(160, 'a')));
  CHECK_FALSE(g->accepts(std::string(161, 'a')));
  CHECK_FALSE(g->accepts("aB"));
  GrammarVocab vocab({"a", "b c", "Z", "", "abc"}, {0, 0, 0, 1, 0});
  GrammarMatcher m(g);
  std::vector<uint8_t> allowed;
  CHECK(m.allowed_tokens(vocab, allowed) == 4);  // all but "Z" (the end token included)
  CHECK(allowed == std::vector<uint8_t>{1, 1, 0, 1, 1});
  CHECK(m.accept(std::string(100, 'x')));
  CHECK(m.allowed_tokens(vocab, allowed) == 4);
}

TEST_CASE("the text a grammar forces is the one continuation it admits", "[runtime][grammar]") {
  auto g = Grammar::parse(R"(root ::= "{\"patient\": " ( "true" | "tr" [u] "ly" ) "é€}" | "{\"pa" [x-y])");
  GrammarMatcher m(g);
  CHECK(m.forced_bytes(100) == "{\"pa");  // then "t" or [x-y]
  CHECK(m.forced_bytes(3) == "{\"p");
  REQUIRE(m.accept("{\"pat"));
  CHECK(m.forced_bytes(100) == "ient\": tru");  // "true" and "truly" part after "tru"
  REQUIRE(m.accept("ient\": true"));
  CHECK(m.forced_bytes(100) == "é€}");
  REQUIRE(m.accept("\xc3"));
  CHECK(m.forced_bytes(100).empty());  // a split code point: nothing forced
  REQUIRE(m.accept("\xa9€}"));
  CHECK(m.forced_bytes(100).empty());  // complete
  GrammarMatcher star(Grammar::parse(R"(root ::= "ab" "c"*)"));
  CHECK(star.forced_bytes(100) == "ab");  // then it may end or go on
}

TEST_CASE("the sampler keeps to the grammar and reports when it cannot", "[runtime][grammar]") {
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  Sampler s(p);
  auto vocab = std::make_shared<GrammarVocab>(std::vector<std::string>{"a", "b", "ab", "", "c"},
                                              std::vector<uint8_t>{0, 0, 0, 1, 0});
  s.set_grammar(Grammar::parse("root ::= \"ab\" \"c\"?"), vocab);
  const std::vector<float> logits = {0.0f, 0.0f, -5.0f, 9.0f, 9.0f};  // likes the end and c
  std::string out;
  for (int i = 0; i < 5; ++i) {
    const int32_t t = s.sample(logits.data(), 5);
    REQUIRE(t >= 0);
    s.accept(t);
    if (t == 3) break;
    out += vocab->piece(t);
  }
  CHECK((out == "ab" || out == "abc"));
  CHECK(s.grammar()->is_accepting());

  // A grammar the vocabulary cannot spell stops with a reason, no hang.
  s.set_grammar(Grammar::parse("root ::= \"z\""), vocab);
  CHECK(s.sample(logits.data(), 5) == -1);
  CHECK_THAT(s.grammar_error(), Catch::Contains("no token of the vocabulary"));
}

TEST_CASE("redrawing refused tokens gives the masked distribution", "[runtime][grammar]") {
  // Tokens 0..4; the grammar takes "a" (p 0.1 of all), "b" (0.05) and "c" (0.05): most draws are
  // refused at first, and some runs of 32 refusals fall back to the mask. Either way each
  // allowed token must come out in proportion to its probability: a 2:1:1 split.
  auto vocab = std::make_shared<GrammarVocab>(std::vector<std::string>{"a", "b", "c", "x", "y"},
                                              std::vector<uint8_t>{0, 0, 0, 0, 0});
  const std::vector<float> logits = {std::log(0.1f), std::log(0.05f), std::log(0.05f), std::log(0.4f), std::log(0.4f)};
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  Sampler s(p);
  auto g = Grammar::parse("root ::= [abc]");
  s.set_grammar(g, vocab);
  std::vector<int> seen(5, 0);
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    ++seen[static_cast<size_t>(s.sample(logits.data(), 5))];
    s.set_grammar(g, vocab);  // restarts the grammar, keeps the random stream (reset() would not)
  }
  CHECK(seen[3] + seen[4] == 0);
  CHECK(std::abs(seen[0] / double(n) - 0.5) < 0.02);
  CHECK(std::abs(seen[1] / double(n) - 0.25) < 0.02);
  CHECK(std::abs(seen[2] / double(n) - 0.25) < 0.02);
  CHECK(s.n_grammar_masks() < static_cast<uint64_t>(n) / 100);  // 0.8^32 of them: most found one by redrawing
}

namespace {

struct Collect {
  std::vector<xent_token> tokens;
  std::string text;
};

bool collect(xent_token t, const char* piece, int32_t len, void* user) {
  auto* c = static_cast<Collect*>(user);
  c->tokens.push_back(t);
  c->text.append(piece, static_cast<size_t>(len));
  return true;
}

// n generations at temperature 1 under a grammar on a random-weight model: every one
// ends by itself (the grammars are bounded), every prefix is accepted token by token by
// the grammar's own recogniser, and every whole output is a sentence.
std::vector<std::string> generate(const std::string& model_file, const std::string& gbnf, int n) {
  const std::string path = std::string(XENT_SHARED_DIR) + "/models/" + model_file;
  xent_model* model = xent_model_load(path.c_str(), nullptr);
  REQUIRE(model);
  xent_context_params cp = xent_context_default_params();
  cp.n_ctx = 512;
  cp.n_threads = 1;  // tiny models: a second thread only spins on a busy machine
  xent_context* ctx = xent_context_create(model, &cp);
  REQUIRE(ctx);
  auto grammar = Grammar::parse(gbnf);
  std::vector<std::string> outputs;
  for (int i = 0; i < n; ++i) {
    xent_sampler_params sp = xent_sampler_default_params();
    sp.temperature = 1.0f;
    sp.top_k = 0;
    sp.top_p = 1.0f;
    sp.min_p = 0.0f;
    sp.seed = 1000 + static_cast<uint64_t>(i);
    xent_sampler* s = xent_sampler_create(&sp);
    REQUIRE(s);
    REQUIRE(xent_sampler_set_grammar(s, model, gbnf.c_str(), nullptr) == XENT_OK);
    Collect c;
    xent_generate_stats st{};
    const xent_status rc = xent_generate(ctx, s, "Output:", 400, collect, &c, &st);
    INFO("generation " << i << ": " << c.text << " / " << xent_last_error());
    REQUIRE(rc == XENT_OK);
    CHECK(st.stopped_by_eog);
    CHECK(xent_sampler_grammar_state(s) >= XENT_GRAMMAR_COMPLETE);
    GrammarMatcher check(grammar);
    for (xent_token t : c.tokens) {
      char buf[256];
      const int32_t n = xent_token_to_piece(model, t, buf, sizeof buf, false);
      REQUIRE(n > 0);
      REQUIRE(check.accept(std::string(buf, static_cast<size_t>(n))));
    }
    CHECK(grammar->accepts(c.text));
    outputs.push_back(c.text);
    xent_sampler_free(s);
  }
  xent_context_free(ctx);
  xent_model_free(model);
  return outputs;
}

}  // namespace

// JSON: the case that found the overlong-UTF-8 bug (see the test above).
TEST_CASE("JSON under its grammar: 200 random-model outputs parse", "[runtime][grammar-model]") {
  const auto outputs = generate("tiny-llama-bpe-q8_0.gguf", read_grammar("json-small.gbnf"), 200);
  size_t longest = 0;
  for (const std::string& o : outputs) {
    INFO(o);
    nlohmann::json j;
    REQUIRE_NOTHROW(j = nlohmann::json::parse(o));
    CHECK(j.is_object());
    longest = std::max(longest, o.size());
  }
  CHECK(longest > 10);  // the model wrote more than empty objects
}

TEST_CASE("arithmetic, list and chess grammars: 200 random-model outputs each", "[runtime][grammar-model]") {
  for (const char* name : {"arithmetic.gbnf", "list.gbnf", "chess.gbnf"}) {
    INFO(name);
    const auto outputs = generate(std::string(name) == "list.gbnf" ? "tiny-llama-spm-q8_0.gguf" : "tiny-gpt2-q8_0.gguf",
                                  read_grammar(name), 200);
    CHECK(outputs.size() == 200);
  }
}

namespace {

// The vocabulary of a model file as the grammar sees it (as the C API builds it).
std::shared_ptr<GrammarVocab> vocab_of(const std::string& path) {
  xent_model* model = xent_model_load(path.c_str(), nullptr);
  if (!model) return nullptr;
  const int32_t n = xent_model_n_vocab(model);
  std::vector<std::string> pieces(static_cast<size_t>(n));
  std::vector<uint8_t> eog(pieces.size());
  std::vector<char> buf(1024);
  for (int32_t id = 0; id < n; ++id) {
    const int32_t len = xent_token_to_piece(model, id, buf.data(), static_cast<int32_t>(buf.size()), false);
    if (len > 0) pieces[static_cast<size_t>(id)].assign(buf.data(), static_cast<size_t>(len));
    eog[static_cast<size_t>(id)] = xent_token_is_eog(model, id) ? 1 : 0;
  }
  xent_model_free(model);
  return std::make_shared<GrammarVocab>(std::move(pieces), std::move(eog));
}

}  // namespace

TEST_CASE("an ambiguous repetition ends in a clear error within the work limit (fuzz-grammar)", "[runtime][grammar]") {
  // The fuzzer's second slow input: items of 1 to 24 characters, up to 40 of them. After 100
  // letters every split of them into items is a parse stack of its own (hundreds), and a
  // mask walk advances each at every node of the vocabulary trie: seconds per token before
  // the work limit, a clear error now.
  auto vocab = vocab_of(std::string(XENT_SHARED_DIR) + "/models/tiny-gpt2-q8_0.gguf");
  REQUIRE(vocab);
  const auto g = Grammar::parse("root ::= item{0,40}\nitem ::= [ -~]{1,24}\n");
  CHECK(g->accepts(std::string(960, 'a')));
  CHECK_FALSE(g->accepts(std::string(961, 'a')));
  GrammarMatcher m(g);
  std::vector<uint8_t> allowed;
  REQUIRE(m.accept(std::string(100, 'a')));
  CHECK(m.work_of_last_operation() < GrammarMatcher::max_work());
  CHECK_THROWS_WITH(m.allowed_tokens(*vocab, allowed), Catch::Contains("too ambiguous"));
  CHECK(m.work_of_last_operation() <= GrammarMatcher::max_work());
  // The matcher is still usable: the text is unchanged, single tokens are checked.
  CHECK(m.can_accept("b"));
  CHECK_FALSE(m.can_accept("\n"));

  // A JSON grammar over the tiny Qwen2's 8,192-token vocabulary: a whole mask at the start
  // and inside a string takes a small share of the limit (the grammar bench measures 2.6M
  // steps at most on a 128K vocabulary).
  auto big = vocab_of(std::string(XENT_SHARED_DIR) + "/models/tiny-qwen2-q8_0.gguf");
  REQUIRE(big);
  GrammarMatcher json(Grammar::parse(read_grammar("json.gbnf")));
  for (const char* text : {"", "{\"note\": \"pat", "{\"dose\": [1, 2.5, {\"a\": "}) {
    INFO(text);
    json.reset();
    REQUIRE(json.accept(text));
    (void)json.allowed_tokens(*big, allowed);
    std::printf("json.gbnf mask on a %d-token vocabulary after \"%s\": %llu steps\n", big->n_vocab(), text,
                static_cast<unsigned long long>(json.work_of_last_operation()));
    CHECK(json.work_of_last_operation() * 4 < GrammarMatcher::max_work());
  }
}

// What a grammar costs per sampled token on a real vocabulary, with random logits standing
// in for a random model: sampling with the grammar minus the same sampling without.
// Prints; run with `test-grammar "[grammar-bench]"` (XENT_BENCH_VOCABS: model files).
TEST_CASE("grammar cost per token on 49k and 128k vocabularies", "[.][grammar-bench]") {
  std::vector<std::string> files = {"/tmp/bench/smollm2-135m-q8_0.gguf", "/tmp/bench/llama-1b-q4_0.gguf"};
  if (const char* env = std::getenv("XENT_BENCH_VOCABS")) {
    files.clear();
    std::string s = env;
    for (size_t at = 0; at <= s.size();) {
      const size_t next = std::min(s.find(',', at), s.size());
      files.push_back(s.substr(at, next - at));
      at = next + 1;
    }
  }
  for (const std::string& file : files) {
    auto vocab = vocab_of(file);
    if (!vocab) {
      WARN("cannot load " << file);
      continue;
    }
    for (const char* name : {"json.gbnf", "json-small.gbnf", "chess.gbnf"}) {
      auto grammar = Grammar::parse(read_grammar(name));
      const int32_t n = vocab->n_vocab();
      std::mt19937 rng(42);
      std::normal_distribution<float> normal(0.0f, 2.0f);
      std::vector<float> logits(static_cast<size_t>(n));
      double grammar_us = 0, plain_us = 0, mask_us = 0;
      std::vector<uint8_t> mask;
      int64_t n_tokens = 0, n_masks = 0;
      uint64_t max_steps = 0;  // the most parse-stack steps one whole mask took
      for (int g = 0; g < 20; ++g) {
        SamplerParams p;
        p.temperature = 1.0f;
        p.top_k = 0;
        p.top_p = 1.0f;
        p.min_p = 0.0f;
        p.seed = 100 + static_cast<uint64_t>(g);
        Sampler with(p), without(p);
        with.set_grammar(grammar, vocab);
        for (int i = 0; i < 200; ++i) {
          for (float& l : logits) l = normal(rng);
          auto m0 = std::chrono::steady_clock::now();
          with.grammar()->allowed_tokens(*vocab, mask);
          auto m1 = std::chrono::steady_clock::now();
          mask_us += std::chrono::duration<double, std::micro>(m1 - m0).count();
          max_steps = std::max(max_steps, with.grammar()->work_of_last_operation());
          auto t0 = std::chrono::steady_clock::now();
          const int32_t t = with.sample(logits.data(), n);
          REQUIRE(t >= 0);
          with.accept(t);
          auto t1 = std::chrono::steady_clock::now();
          without.accept(without.sample(logits.data(), n));
          auto t2 = std::chrono::steady_clock::now();
          grammar_us += std::chrono::duration<double, std::micro>(t1 - t0).count();
          plain_us += std::chrono::duration<double, std::micro>(t2 - t1).count();
          ++n_tokens;
          if (vocab->is_end_of_generation(t)) break;
        }
        n_masks += static_cast<int64_t>(with.n_grammar_masks());
      }
      std::printf("vocab %6d %-16s %5lld tokens: %8.1f us/token sampling with the grammar, %8.1f without; "
                  "%5.1f%% of draws masked; a whole mask %8.1f us, at most %llu steps\n",
                  n, name, static_cast<long long>(n_tokens), grammar_us / n_tokens, plain_us / n_tokens,
                  100.0 * n_masks / n_tokens, mask_us / n_tokens, static_cast<unsigned long long>(max_steps));
    }
  }
}

// The overhead row of docs/performance.md: on the SmolLM2-135M shape (2 threads), the time a
// JSON-schema grammar adds to sampling, as a share of a decode step; and what forced tokens
// save on a schema with long keys (xent_generate forces them, a plain sample-and-decode loop
// does not). Prints; `test-grammar "[grammar-bench]"`, XENT_BENCH_MODEL to change the file.
TEST_CASE("JSON grammar overhead against a decode step, forced tokens", "[.][grammar-bench]") {
  const char* env = std::getenv("XENT_BENCH_MODEL");
  const std::string path = env ? env : "/tmp/bench/smollm2-135m-q8_0.gguf";
  const std::string schema = R"({"type": "object", "properties": {
      "patient_identifier": {"type": "string", "maxLength": 12},
      "medication_statements": {"type": "array", "maxItems": 3, "items": {"type": "object", "properties": {
          "medication_name": {"type": "string", "maxLength": 16},
          "daily_dose_in_milligrams": {"type": "number"},
          "route_of_administration": {"enum": ["oral", "intravenous", "subcutaneous"]}},
        "required": ["medication_name", "daily_dose_in_milligrams", "route_of_administration"]}},
      "reviewed_by_pharmacist": {"type": "boolean"}},
    "required": ["patient_identifier", "medication_statements", "reviewed_by_pharmacist"]})";
  char* g = xent_json_schema_to_grammar(schema.c_str());
  REQUIRE(g);
  const std::string gbnf = g;
  xent_string_free(g);
  auto vocab = vocab_of(path);
  REQUIRE(vocab);
  xent_model* model = xent_model_load(path.c_str(), nullptr);
  REQUIRE(model);
  xent_context_params cp = xent_context_default_params();
  cp.n_ctx = 1024;
  cp.n_threads = 2;
  xent_context* ctx = xent_context_create(model, &cp);
  REQUIRE(ctx);
  const int32_t n_vocab = xent_model_n_vocab(model);
  using clock = std::chrono::steady_clock;
  auto ms = [](clock::time_point a, clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
  std::vector<xent_token> prompt(64);
  prompt.resize(static_cast<size_t>(xent_tokenize(model, "JSON:", 5, prompt.data(), 64, true, false)));

  // Per step: decode, sampling without the grammar and with it on the same logits.
  double decode_ms = 0, with_ms = 0, without_ms = 0;
  int64_t steps = 0;
  const int kRuns = 5;
  for (int run = 0; run < kRuns; ++run) {
    SamplerParams p;  // the CLI's defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05
    p.seed = 500 + static_cast<uint64_t>(run);
    Sampler with(p), without(p);
    with.set_grammar(Grammar::parse(gbnf), vocab);
    xent_context_truncate(ctx, 0);
    REQUIRE(xent_decode(ctx, prompt.data(), static_cast<int32_t>(prompt.size()), false) == XENT_OK);
    for (int i = 0; i < 400; ++i) {
      const float* logits = xent_get_logits(ctx);
      const auto t0 = clock::now();
      const int32_t t = with.sample(logits, n_vocab);
      const auto t1 = clock::now();
      without.accept(without.sample(logits, n_vocab));
      const auto t2 = clock::now();
      REQUIRE(t >= 0);
      with.accept(t);
      if (vocab->is_end_of_generation(t)) break;
      const auto t3 = clock::now();
      REQUIRE(xent_decode(ctx, &t, 1, false) == XENT_OK);
      const auto t4 = clock::now();
      with_ms += ms(t0, t1), without_ms += ms(t1, t2), decode_ms += ms(t3, t4);
      ++steps;
    }
  }
  std::printf("%s, 2 threads, %lld steps: decode %.3f ms/token; sampling %.3f ms with the JSON grammar, %.3f without: "
              "+%.3f ms = %.1f%% of a decode step\n",
              path.c_str(), static_cast<long long>(steps), decode_ms / steps, with_ms / steps, without_ms / steps,
              (with_ms - without_ms) / steps, 100.0 * (with_ms - without_ms) / decode_ms);

  // Forced tokens: xent_generate against the same loop without forcing, same seeds.
  struct Count {
    int64_t bytes = 0;
  };
  auto count = [](xent_token, const char*, int32_t len, void* user) {
    static_cast<Count*>(user)->bytes += len;
    return true;
  };
  double forced_ms = 0, plain_ms = 0;
  int64_t forced_tokens = 0, total_forced = 0, plain_tokens = 0, forced_bytes = 0, plain_bytes = 0;
  for (int run = 0; run < kRuns; ++run) {
    xent_sampler_params sp = xent_sampler_default_params();
    sp.seed = 900 + static_cast<uint64_t>(run);
    xent_sampler* s = xent_sampler_create(&sp);
    REQUIRE(xent_sampler_set_grammar(s, model, gbnf.c_str(), nullptr) == XENT_OK);
    xent_context_truncate(ctx, 0);
    xent_generate_stats st{};
    Count c;
    REQUIRE(xent_generate(ctx, s, "JSON:", 600, count, &c, &st) == XENT_OK);
    forced_ms += st.generate_ms, forced_tokens += st.n_generated, total_forced += st.n_forced, forced_bytes += c.bytes;
    xent_sampler_free(s);

    s = xent_sampler_create(&sp);
    REQUIRE(xent_sampler_set_grammar(s, model, gbnf.c_str(), nullptr) == XENT_OK);
    xent_context_truncate(ctx, 0);
    REQUIRE(xent_decode(ctx, prompt.data(), static_cast<int32_t>(prompt.size()), false) == XENT_OK);
    const auto t0 = clock::now();
    for (int i = 0; i < 600; ++i) {
      const xent_token t = xent_sampler_sample(s, ctx);
      REQUIRE(t >= 0);
      if (xent_token_is_eog(model, t)) break;
      char buf[256];
      plain_bytes += std::max(0, xent_token_to_piece(model, t, buf, sizeof buf, false));
      ++plain_tokens;
      REQUIRE(xent_decode(ctx, &t, 1, false) == XENT_OK);
    }
    plain_ms += ms(t0, clock::now());
    xent_sampler_free(s);
  }
  std::printf("forced tokens: %lld of %lld generated (%.0f%%); %.2f ms per output byte with forcing, %.2f without "
              "(%lld and %lld bytes in %d runs; %.0f vs %.0f ms)\n",
              static_cast<long long>(total_forced), static_cast<long long>(forced_tokens),
              100.0 * total_forced / std::max<int64_t>(1, forced_tokens), forced_ms / forced_bytes, plain_ms / plain_bytes,
              static_cast<long long>(forced_bytes), static_cast<long long>(plain_bytes), kRuns, forced_ms, plain_ms);
  xent_context_free(ctx);
  xent_model_free(model);
}
