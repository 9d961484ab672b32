// Unicode lookups over the generated tables and UTF-8 conversion for the tokenizer.
// Category lookup is a binary search over ~3,300 runs, with an ASCII table in front.
#include "runtime/tokenizer/tokenizer-unicode.h"

#include <algorithm>
#include <array>

namespace xent::unicode {

namespace {

UnicodeClass class_slow(uint32_t cp) {
  const CategoryRange* end = kCategoryRanges + kCategoryRangeCount;
  const CategoryRange* it = std::upper_bound(
      kCategoryRanges, end, cp, [](uint32_t v, const CategoryRange& r) { return v < r.first; });
  if (it == kCategoryRanges) return UnicodeClass::kUndefined;
  return (it - 1)->cls;
}

// Most text is ASCII; a table avoids the search for it.
const std::array<UnicodeClass, 128>& ascii_classes() {
  static const std::array<UnicodeClass, 128> table = [] {
    std::array<UnicodeClass, 128> t{};
    for (uint32_t c = 0; c < 128; ++c) t[c] = class_slow(c);
    return t;
  }();
  return table;
}

}  // namespace

UnicodeClass class_of(uint32_t cp) {
  if (cp < 128) return ascii_classes()[cp];
  if (cp > 0x10FFFF) return UnicodeClass::kUndefined;
  return class_slow(cp);
}

bool is_whitespace(uint32_t cp) {
  if (cp < 128) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
  for (size_t i = 0; i < kWhitespaceRangeCount; ++i) {
    if (cp < kWhitespaceRanges[i].first) return false;
    if (cp <= kWhitespaceRanges[i].last) return true;
  }
  return false;
}

size_t utf8_len(uint8_t lead) {
  static const uint8_t lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return lookup[lead >> 4];
}

std::vector<uint32_t> decode_utf8(std::string_view text) {
  std::vector<uint32_t> out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  auto cont = [&](size_t k) { return i + k < n && (s[i + k] & 0xC0) == 0x80; };
  while (i < n) {
    const uint8_t c = s[i];
    if (c < 0x80) {
      out.push_back(c);
      i += 1;
    } else if ((c & 0xE0) == 0xC0 && cont(1)) {
      out.push_back((uint32_t(c & 0x1F) << 6) | (s[i + 1] & 0x3F));
      i += 2;
    } else if ((c & 0xF0) == 0xE0 && cont(1) && cont(2)) {
      out.push_back((uint32_t(c & 0x0F) << 12) | (uint32_t(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F));
      i += 3;
    } else if ((c & 0xF8) == 0xF0 && cont(1) && cont(2) && cont(3)) {
      out.push_back((uint32_t(c & 0x07) << 18) | (uint32_t(s[i + 1] & 0x3F) << 12) |
                    (uint32_t(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F));
      i += 4;
    } else {
      out.push_back(0xFFFD);
      i += 1;
    }
  }
  return out;
}

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | ((cp >> 18) & 0x07)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace xent::unicode
