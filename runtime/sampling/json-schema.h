// JSON Schema to GBNF: a grammar whose sentences are JSON texts that the schema admits, for
// structured output (include/xent.h xent_json_schema_to_grammar documents the subset).
#pragma once
#include <string>
#include <string_view>

namespace xent {

// GBNF with root rule "root". Throws xent::Error ("json schema: ...") on malformed JSON, an
// unsupported keyword (naming it and its JSON pointer), an unresolvable $ref, or a schema
// that admits no value.
std::string json_schema_to_gbnf(std::string_view schema_json);

}  // namespace xent
