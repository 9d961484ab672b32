// JSON Schema to grammar: unsupported keywords are errors naming them and where they are;
// and for each schema in tests/runtime/sampling/schemas/, outputs sampled at temperature 1
// from random-weight models under the schema's grammar validate against the schema with an
// independent validator (Python's jsonschema, validate-json-schema.py).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/sampling/grammar.h"
#include "xent.h"

namespace {

// The grammar, or "" with the error in *error.
std::string convert(const std::string& schema, std::string* error = nullptr) {
  char* g = xent_json_schema_to_grammar(schema.c_str());
  if (!g) {
    if (error) *error = xent_last_error();
    return "";
  }
  std::string out(g);
  xent_string_free(g);
  return out;
}

std::string error_of(const std::string& schema) {
  std::string error;
  const std::string g = convert(schema, &error);
  INFO(g);
  CHECK(g.empty());
  return error;
}

bool accepts(const std::string& schema, const std::string& text) {
  const std::string g = convert(schema);
  REQUIRE(!g.empty());
  return xent::Grammar::parse(g)->accepts(text);
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("unsupported keywords and bad schemas are errors naming them", "[runtime][grammar]") {
  CHECK_THAT(error_of(R"({"type": "string", "pattern": "^a+$"})"),
             Catch::Contains("'pattern' at #/pattern is not supported"));
  CHECK_THAT(error_of(R"({"properties": {"age": {"type": "integer", "minimum": 0}}})"),
             Catch::Contains("unsupported keyword 'minimum' at #/properties/age/minimum"));
  CHECK_THAT(error_of(R"({"$defs": {"a/b": {"not": {}}}, "$ref": "#/$defs/a~1b"})"),
             Catch::Contains("unsupported keyword 'not' at #/$defs/a~1b/not"));
  CHECK_THAT(error_of(R"({"type": "array", "prefixItems": [{}]})"), Catch::Contains("'prefixItems' at #/prefixItems"));
  CHECK_THAT(error_of(R"({"type": "string", "format": "email"})"), Catch::Contains("format \"email\" at #/format"));
  CHECK_THAT(error_of(R"({"type": "text"})"), Catch::Contains("unknown type 'text' at #/type"));
  CHECK_THAT(error_of(R"({"$ref": "#/$defs/missing"})"), Catch::Contains("points to nothing"));
  CHECK_THAT(error_of(R"({"$ref": "https://example.com/s.json"})"), Catch::Contains("only references inside"));
  CHECK_THAT(error_of(R"({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"})"), Catch::Contains("$ref cycle"));
  CHECK_THAT(error_of(R"({"type": "object", "properties": {"a": false}})"), Catch::Contains("#/properties/a is false"));
  CHECK_THAT(error_of(R"({"type": "string", "minLength": 3, "maxLength": 2})"), Catch::Contains("maxLength < minLength"));
  CHECK_THAT(error_of(R"({"type": "array", "minItems": -1})"), Catch::Contains("'minItems' at #/minItems"));
  CHECK_THAT(error_of(R"({"enum": [1, 2], "type": "string"})"), Catch::Contains("admits no value"));
  CHECK_THAT(error_of(R"({"allOf": [{"type": "string"}]})"), Catch::Contains("only object schemas"));
  CHECK_THAT(error_of(R"({"type": "object", "required": ["x"], "additionalProperties": false})"),
             Catch::Contains("'x' is required"));
  CHECK_THAT(error_of(R"({"type": )"), Catch::Contains("not valid JSON"));
  CHECK_THAT(error_of("[1]"), Catch::Contains("must be an object or a boolean"));
  CHECK(xent_json_schema_to_grammar(nullptr) == nullptr);
  xent_string_free(nullptr);
}

TEST_CASE("schema grammars take the values the schema admits and refuse others", "[runtime][grammar]") {
  const std::string person = R"({
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 4}, "age": {"type": "integer"},
                   "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 1, "maxItems": 2}},
    "required": ["name"]})";
  CHECK(accepts(person, R"({"name": "Ann"})"));
  CHECK(accepts(person, "{\n  \"name\": \"Ann\",\n  \"age\": 40,\n  \"tags\": [\"a\", \"b\"]\n}"));
  CHECK(accepts(person, R"({"name":"Ann","tags":["b"]})"));
  CHECK_FALSE(accepts(person, R"({"age": 40})"));                   // name is required
  CHECK_FALSE(accepts(person, R"({"name": "Annie"})"));             // maxLength 4
  CHECK_FALSE(accepts(person, R"({"name": "Ann", "age": 4.5})"));   // integer
  CHECK_FALSE(accepts(person, R"({"name": "Ann", "tags": []})"));   // minItems 1
  CHECK_FALSE(accepts(person, R"({"name": "Ann", "tags": ["a","b","a"]})"));
  CHECK_FALSE(accepts(person, R"({"name": "Ann", "tags": ["c"]})"));
  CHECK_FALSE(accepts(person, R"({"name": "Ann",})"));
  CHECK_FALSE(accepts(person, R"({"name": "Ann", "x": 1})"));       // no extras unless asked
  CHECK_FALSE(accepts(person, "{\"name\":                  \"Ann\"}"));  // whitespace is bounded

  const std::string extra = R"({"properties": {"ab": {"type": "null"}}, "additionalProperties": {"type": "integer"}})";
  CHECK(accepts(extra, R"({"ab": null, "a": 1, "abc": 2, "b": 3})"));
  CHECK(accepts(extra, R"({"x": 1})"));
  CHECK(accepts(extra, R"({})"));
  CHECK_FALSE(accepts(extra, R"({"ab": null, "ab": 1})"));  // a second "ab" would break its schema
  CHECK_FALSE(accepts(extra, R"({"a": "s"})"));

  CHECK(accepts(R"({"type": ["string", "null"], "format": "date"})", R"("2024-02-28")"));
  CHECK(accepts(R"({"type": ["string", "null"], "format": "date"})", "null"));
  CHECK_FALSE(accepts(R"({"format": "date"})", R"("2024-02-30")"));
  CHECK(accepts(R"({"format": "date-time"})", R"("2024-12-07T09:15:00.5+01:00")"));
  CHECK_FALSE(accepts(R"({"format": "time"})", R"("24:00:00Z")"));
  CHECK(accepts(R"({"format": "uuid"})", R"("123e4567-e89b-12d3-a456-426614174000")"));
  CHECK(accepts(R"({"const": {"a": [1, "é"]}})", R"({"a":[1,"é"]})"));
  CHECK(accepts(R"({"type": "string"})", R"("a\"b\\ \u00e9 \n")"));
  CHECK_FALSE(accepts(R"({"type": "string"})", R"("\ud800")"));  // a lone surrogate escape
  CHECK(accepts("true", R"([{"a": null}, -1.5e3, "x"])"));
  CHECK(accepts(R"({"anyOf": [{"type": "integer"}, {"type": "object", "properties": {"k": {"const": 1}}, "required": ["k"]}]})",
                R"({"k": 1})"));
  CHECK(accepts(R"({"$ref": "#/definitions/list", "definitions": {"list": {"type": "array", "items": {"$ref": "#/definitions/list"}}}})",
                "[[], [[]]]"));
}

namespace {

struct Collect {
  std::string text;
};

bool collect(xent_token, const char* piece, int32_t len, void* user) {
  static_cast<Collect*>(user)->text.append(piece, static_cast<size_t>(len));
  return true;
}

}  // namespace

// n generations per schema and model at temperature 1, written one JSON string a line and
// judged by validate-json-schema.py (json + jsonschema with format checks). The schemas are
// bounded (maxLength, maxItems, no recursion) so that a random model finishes them.
TEST_CASE("sampled outputs validate against their schemas", "[runtime][grammar][model]") {
  const std::string dir = std::string(XENT_SOURCE_DIR) + "/tests/runtime/sampling/";
  const int n = 25;
  for (const char* model_file : {"tiny-llama-bpe-q8_0.gguf", "tiny-gpt2-q8_0.gguf"}) {
    const std::string path = std::string(XENT_SHARED_DIR) + "/models/" + model_file;
    xent_model* model = xent_model_load(path.c_str(), nullptr);
    REQUIRE(model);
    xent_context_params cp = xent_context_default_params();
    cp.n_ctx = 1024;
    cp.n_threads = 1;  // tiny models: a second thread only spins on a busy machine
    xent_context* ctx = xent_context_create(model, &cp);
    REQUIRE(ctx);
    for (const auto& entry : std::filesystem::directory_iterator(dir + "schemas")) {
      const std::string schema_path = entry.path().string();
      INFO(model_file << " " << schema_path);
      const std::string gbnf = convert(read_file(schema_path));
      REQUIRE(!gbnf.empty());
      const std::string out_path =
          std::string(XENT_BINARY_DIR) + "/json-schema-" + entry.path().stem().string() + "-" + model_file + ".jsonl";
      std::ofstream out(out_path, std::ios::binary);
      int64_t n_forced = 0;
      for (int i = 0; i < n; ++i) {
        xent_sampler_params sp = xent_sampler_default_params();
        sp.temperature = 1.0f;
        sp.top_k = 0;
        sp.top_p = 1.0f;
        sp.min_p = 0.0f;
        sp.seed = 7000 + static_cast<uint64_t>(i);
        xent_sampler* s = xent_sampler_create(&sp);
        REQUIRE(s);
        REQUIRE(xent_sampler_set_grammar(s, model, gbnf.c_str(), nullptr) == XENT_OK);
        Collect c;
        xent_generate_stats st{};
        const xent_status rc = xent_generate(ctx, s, "JSON:", 1000, collect, &c, &st);
        INFO("generation " << i << " (" << st.n_generated << " tokens, " << st.n_forced << " forced): " << c.text << " / " << xent_last_error());
        REQUIRE(rc == XENT_OK);
        CHECK(st.stopped_by_eog);
        n_forced += st.n_forced;
        CHECK_NOTHROW(nlohmann::json::parse(c.text));  // valid UTF-8 and JSON to a second parser too
        out << nlohmann::json(c.text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
        xent_sampler_free(s);
      }
      out.close();
      // Property names are forced after their first characters, unless the tokenizer
      // spells the text otherwise (every schema here has keys longer than a token).
      CHECK(n_forced > 0);
      const std::string cmd = "python3 " + dir + "validate-json-schema.py " + schema_path + " " + out_path + " 2>&1";
      FILE* p = popen(cmd.c_str(), "r");
      REQUIRE(p);
      std::string report;
      char buf[512];
      while (fgets(buf, sizeof buf, p)) report += buf;
      const int status = pclose(p);
      INFO(report);
      CHECK(status == 0);
    }
    xent_context_free(ctx);
    xent_model_free(model);
  }
}
