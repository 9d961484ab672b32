// Unicode helpers for the tokenizer: UTF-8 decoding/encoding and the coarse general
// category (\p{L}, \p{N}, ...) and White_Space lookups the pre-tokenizers need.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace xent::unicode {

// General category collapsed to its first letter; kUndefined is Cn (unassigned).
enum class UnicodeClass : uint8_t {
  kUndefined, kLetter, kNumber, kPunctuation, kSymbol, kMark, kSeparator, kControl,
};

struct CategoryRange {
  uint32_t first;
  UnicodeClass cls;
};
struct CodepointRange {
  uint32_t first, last;
};

// Generated tables (tokenizer-unicode-data.cpp).
extern const CategoryRange kCategoryRanges[];
extern const size_t kCategoryRangeCount;
extern const CodepointRange kWhitespaceRanges[];
extern const size_t kWhitespaceRangeCount;

UnicodeClass class_of(uint32_t cp);
bool is_whitespace(uint32_t cp);
inline bool is_letter(uint32_t cp) { return class_of(cp) == UnicodeClass::kLetter; }
inline bool is_number(uint32_t cp) { return class_of(cp) == UnicodeClass::kNumber; }
inline bool is_punctuation(uint32_t cp) { return class_of(cp) == UnicodeClass::kPunctuation; }

// Bytes of the UTF-8 sequence a lead byte announces (1 for stray continuation bytes).
size_t utf8_len(uint8_t lead);
// Decodes UTF-8; every malformed byte becomes U+FFFD (as the reference runtime does).
std::vector<uint32_t> decode_utf8(std::string_view text);
void append_utf8(uint32_t cp, std::string& out);

}  // namespace xent::unicode
