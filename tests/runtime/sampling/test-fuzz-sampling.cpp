// Inputs the fuzzers of tests/fuzz/ found in sampling code (grammars, JSON Schema), kept as
// regression tests: each ends in xent::Error naming the problem.
#include <catch2/catch.hpp>

#include <string>

#include "formats/error.h"
#include "runtime/sampling/json-schema.h"

namespace {

std::string schema_error(const std::string& schema) {
  try {
    xent::json_schema_to_gbnf(schema);
  } catch (const xent::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("json schema: a number too large for a double is invalid JSON, as an xent::Error", "[runtime][grammar][fuzz]") {
  // Found by fuzz-json-schema: nlohmann's out_of_range (406) escaped as another type.
  CHECK_THAT(schema_error(R"({"type": "object", "properties": {"b": 222e222222200}})"), Catch::Contains("not valid JSON"));
  CHECK_THAT(schema_error("[1e999]"), Catch::Contains("not valid JSON"));
}
