// Pre-tokenizers for byte-level BPE: split text (as code points) into words before the
// merges run, one splitter sequence per tokenizer.ggml.pre value (gpt-2, llama-bpe, ...).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

namespace xent {

// One regex-like splitting step. Within each fragment it finds matches left to right;
// matches and the gaps between them both become fragments (as the reference does).
class PreSplitStep {
 public:
  virtual ~PreSplitStep() = default;
  // Appends the pieces of cps[begin, end) to out as [begin, end) pairs.
  virtual void split(const uint32_t* cps, size_t begin, size_t end,
                     std::vector<std::pair<size_t, size_t>>& out) const = 0;
};

class PreTokenizer {
 public:
  // nullptr when the name is not one we know.
  static std::unique_ptr<PreTokenizer> for_name(std::string_view pre);
  // Word boundaries of cps, as [begin, end) code point ranges covering all of it.
  std::vector<std::pair<size_t, size_t>> split(const std::vector<uint32_t>& cps) const;

 private:
  std::vector<std::unique_ptr<PreSplitStep>> steps_;
};

}  // namespace xent
