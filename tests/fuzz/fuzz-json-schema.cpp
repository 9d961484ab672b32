// A JSON Schema (response_format / tools parameters) through the schema-to-GBNF compiler
// and, when it compiles, the grammar parser: the GBNF it writes must always parse, and the
// grammar must take a short walk of matching. Errors are expected; crashes, sanitizer
// reports, non-xent::Error exceptions and GBNF the compiler writes but the parser refuses
// are findings.
#include <cstdint>
#include <string>
#include <string_view>

#include "formats/error.h"
#include "fuzz-common.h"
#include "runtime/sampling/grammar.h"
#include "runtime/sampling/json-schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view schema(reinterpret_cast<const char*>(data), size);
  std::string gbnf;
  try {
    gbnf = xent::json_schema_to_gbnf(schema);
  } catch (const xent::Error&) {
    return 0;
  } catch (const std::exception& e) {
    xent::fuzz::unexpected_exception(e);
  }
  try {
    auto g = xent::Grammar::parse(gbnf);
    xent::GrammarMatcher m(g);
    for (const char* piece : {"{", "\"", "a", "\"", ":", " ", "1", "}"})
      if (!m.accept(piece)) break;
  } catch (const xent::Error& e) {
    xent::fuzz::finding("the compiler wrote GBNF the parser refuses", std::string(e.what()) + "\n" + gbnf);
  } catch (const std::exception& e) {
    xent::fuzz::unexpected_exception(e);
  }
  return 0;
}
