// The structured-output part of include/xent.h: grammars on samplers, over the model's
// vocabulary as runtime/sampling/grammar.h sees it (built once per model).
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "formats/error.h"
#include "runtime/api/api-internal.h"
#include "runtime/sampling/grammar.h"
#include "runtime/sampling/json-schema.h"
#include "xent.h"

namespace {

std::shared_ptr<const xent::GrammarVocab> grammar_vocab(const xent_model* m) {
  std::call_once(m->grammar_vocab_once, [m] {
    const xent::Tokenizer& tok = m->model->tokenizer();
    std::vector<std::string> pieces(static_cast<size_t>(tok.n_vocab()));
    std::vector<uint8_t> eog(pieces.size(), 0);
    for (int32_t id = 0; id < tok.n_vocab(); ++id) {
      eog[static_cast<size_t>(id)] = tok.is_end_of_generation(id) ? 1 : 0;
      // Control tokens render as "" (never allowed by a grammar), as xent_generate emits them.
      pieces[static_cast<size_t>(id)] = tok.token_to_piece(id, false);
    }
    m->grammar_vocab = std::make_shared<const xent::GrammarVocab>(std::move(pieces), std::move(eog));
  });
  return m->grammar_vocab;
}

}  // namespace

extern "C" {

xent_status xent_sampler_set_grammar(xent_sampler* s, const xent_model* m, const char* gbnf, const char* root) {
  try {
    xent_api_set_error("");
    if (!s) {
      xent_api_set_error("xent_sampler_set_grammar: NULL sampler");
      return XENT_ERROR_INVALID_ARGUMENT;
    }
    if (!gbnf) {
      s->sampler->set_grammar(nullptr, nullptr);
      return XENT_OK;
    }
    if (!m) {
      xent_api_set_error("xent_sampler_set_grammar: NULL model");
      return XENT_ERROR_INVALID_ARGUMENT;
    }
    std::shared_ptr<const xent::Grammar> g;
    try {
      g = xent::Grammar::parse(gbnf, root ? root : "root");
    } catch (const xent::Error& e) {
      xent_api_set_error(e.what());
      return XENT_ERROR_INVALID_ARGUMENT;
    }
    s->sampler->set_grammar(std::move(g), grammar_vocab(m));
    return XENT_OK;
  } catch (const std::bad_alloc&) {
    xent_api_set_error("out of memory");
    return XENT_ERROR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    xent_api_set_error(e.what());
    return XENT_ERROR_INTERNAL;
  }
}

xent_grammar_state xent_sampler_grammar_state(const xent_sampler* s) {
  const xent::GrammarMatcher* g = s ? s->sampler->grammar() : nullptr;
  if (!g) return XENT_GRAMMAR_NONE;
  if (g->is_dead()) return XENT_GRAMMAR_DEAD;
  if (g->is_done()) return XENT_GRAMMAR_DONE;
  return g->is_accepting() ? XENT_GRAMMAR_COMPLETE : XENT_GRAMMAR_OPEN;
}

char* xent_json_schema_to_grammar(const char* schema_json) {
  try {
    xent_api_set_error("");
    if (!schema_json) {
      xent_api_set_error("xent_json_schema_to_grammar: NULL schema");
      return nullptr;
    }
    std::string gbnf;
    try {
      gbnf = xent::json_schema_to_gbnf(schema_json);
      // The grammar parser finds what the schema walk does not: a $ref cycle that reads
      // nothing before it comes round (left recursion).
      xent::Grammar::parse(gbnf);
    } catch (const xent::Error& e) {
      const std::string what = e.what();
      xent_api_set_error(what.rfind("json schema:", 0) == 0
                             ? what
                             : "json schema: a $ref cycle that reads nothing before it repeats (" + what + ")");
      return nullptr;
    }
    char* out = static_cast<char*>(std::malloc(gbnf.size() + 1));
    if (!out) {
      xent_api_set_error("out of memory");
      return nullptr;
    }
    std::memcpy(out, gbnf.c_str(), gbnf.size() + 1);
    return out;
  } catch (const std::bad_alloc&) {
    xent_api_set_error("out of memory");
  } catch (const std::exception& e) {
    xent_api_set_error(e.what());
  }
  return nullptr;
}

void xent_string_free(char* s) { std::free(s); }

}  // extern "C"
