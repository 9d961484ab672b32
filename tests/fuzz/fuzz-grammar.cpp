// GBNF source, a NUL byte, then output bytes: compile the grammar, then feed the bytes to
// a matcher in small pieces, asking before each piece what the sampler would ask (can it
// take these bytes, which tokens of a real vocabulary are allowed). Errors are expected;
// crashes, sanitizer reports, non-xent::Error exceptions and disagreements between
// can_accept and accept are findings.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "formats/error.h"
#include "formats/gguf.h"
#include "fuzz-common.h"
#include "runtime/sampling/grammar.h"
#include "runtime/tokenizer/tokenizer.h"

namespace {

constexpr size_t kMaxOutputBytes = 64;  // bytes of output matched per input
constexpr int kMaskSteps = 2;           // whole-vocabulary masks per input

std::unique_ptr<xent::GrammarVocab> g_vocab;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  auto file = xent::gguf::Reader::open(xent::fuzz::shared_path("models/tiny-gpt2-q8_0.gguf"));
  auto tok = xent::Tokenizer::from_gguf(*file);
  std::vector<std::string> pieces(static_cast<size_t>(tok->n_vocab()));
  std::vector<uint8_t> eog(pieces.size());
  for (int32_t id = 0; id < tok->n_vocab(); ++id) {
    pieces[static_cast<size_t>(id)] = tok->token_to_piece(id, false);
    eog[static_cast<size_t>(id)] = tok->is_end_of_generation(id);
  }
  g_vocab = std::make_unique<xent::GrammarVocab>(std::move(pieces), std::move(eog));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint8_t* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
  const size_t src_size = nul ? static_cast<size_t>(nul - data) : size;
  const std::string_view gbnf(reinterpret_cast<const char*>(data), src_size);
  std::string_view output;
  if (nul) output = std::string_view(reinterpret_cast<const char*>(nul + 1), std::min(size - src_size - 1, kMaxOutputBytes));

  std::shared_ptr<const xent::Grammar> g;
  try {
    g = xent::Grammar::parse(gbnf);
  } catch (const xent::Error&) {
    return 0;
  } catch (const std::exception& e) {
    xent::fuzz::unexpected_exception(e);
  }
  try {
    (void)g->accepts(output);
    xent::GrammarMatcher m(g);
    std::vector<uint8_t> allowed;
    size_t at = 0;
    for (int step = 0; at < output.size() && !m.is_dead(); ++step) {
      // Piece lengths 1, 2, 3, ... so that code points split across pieces are covered.
      const size_t n = std::min<size_t>(1 + step % 4, output.size() - at);
      const std::string_view piece = output.substr(at, n);
      if (step < kMaskSteps) (void)m.allowed_tokens(*g_vocab, allowed);
      const bool can = m.can_accept(piece);
      const bool did = m.accept(piece);
      if (can != did) xent::fuzz::finding("grammar", "can_accept and accept disagree at byte " + std::to_string(at));
      at += n;
    }
    (void)m.is_accepting();
    (void)m.is_done();
    m.reset();
    (void)m.allowed_tokens(*g_vocab, allowed);
  } catch (const xent::Error&) {
  } catch (const std::exception& e) {
    xent::fuzz::unexpected_exception(e);
  }
  return 0;
}
