// The tokens of a chat template and the lexer that makes them (runtime/chat/jinja-lex.cpp);
// the parser (jinja-parse.cpp) is their only reader.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace xent::jinja {

enum class Tok {
  text, var_begin, var_end, block_begin, block_end, comment, name, string, integer, number, op,
  eof
};

struct Token {
  Tok kind;
  std::string s;  // text, name, string value or operator
  int64_t i = 0;
  double f = 0.0;
  int line = 0, column = 0;
  bool strip = false;  // `{%-` / `-%}` (for a comment: either side, see strip_after)
  bool plus = false;   // `{%+` / `+%}`
  bool strip_after = false;  // comment only
  bool plus_after = false;   // comment only
};

// Splits `source` into text and tag tokens, with the whitespace rules (trim_blocks,
// lstrip_blocks, `-` / `+`) already applied to the text tokens; ends with Tok::eof.
std::vector<Token> lex(std::string_view source);

}  // namespace xent::jinja
