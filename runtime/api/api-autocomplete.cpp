// The autocomplete part of the C API (include/xent.h) over runtime/autocomplete/autocomplete.h. Like
// api.cpp, every entry point catches every exception and returns a status.
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "formats/error.h"
#include "runtime/api/api-internal.h"
#include "runtime/autocomplete/autocomplete.h"
#include "runtime/api/log.h"

struct xent_autocomplete {
  xent_context* ctx = nullptr;
  std::unique_ptr<xent::Autocompleter> engine;
};

namespace {

// The strings and array a result points to.
struct ResultData {
  std::vector<std::string> texts, inserts;
  std::vector<xent_suggestion> suggestions;
};
// Standard layout, so a pointer to `result` (its first member) converts back to it.
struct ResultStorage {
  xent_autocomplete_result result;
  ResultData* data;
};

xent_status fail(xent_status s, const std::string& message) {
  xent_api_set_error(message);
  xent::log_message(XENT_LOG_DEBUG, message);
  return s;
}

template <typename Fn>
xent_status guarded(Fn fn) {
  try {
    xent_api_set_error("");
    return fn();
  } catch (const std::bad_alloc&) {
    return fail(XENT_ERROR_OUT_OF_MEMORY, "out of memory");
  } catch (const xent::Error& e) {
    const std::string m = e.what();
    if (m.find("exceed the context") != std::string::npos) return fail(XENT_ERROR_CONTEXT_FULL, m);
    if (m.rfind("vulkan", 0) == 0 || m.rfind("cuda", 0) == 0) return fail(XENT_ERROR_BACKEND, m);
    return fail(XENT_ERROR_INVALID_ARGUMENT, m);
  } catch (const std::exception& e) {
    return fail(XENT_ERROR_INTERNAL, e.what());
  } catch (...) {
    return fail(XENT_ERROR_INTERNAL, "unknown error");
  }
}

std::vector<std::string> split_words(const char* s) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    while (!cur.empty() && (cur.back() == ' ' || cur.back() == '\t' || cur.back() == '\r')) cur.pop_back();
    if (!cur.empty()) out.push_back(cur);
    cur.clear();
  };
  for (const char* p = s; p && *p; ++p) {
    if (*p == ',' || *p == '\n') flush();
    else if (!(cur.empty() && (*p == ' ' || *p == '\t'))) cur += *p;
  }
  flush();
  return out;
}

}  // namespace

extern "C" {

xent_autocomplete_params xent_autocomplete_default_params(void) {
  const xent::AutocompleteParams d;
  xent_autocomplete_params p{};
  p.n_suggestions = d.n_suggestions;
  p.max_words = d.max_words;
  p.min_probability = d.min_probability;
  p.beam_width = d.beam_width;
  p.max_tokens = d.max_tokens;
  p.blocklist = nullptr;
  return p;
}

xent_autocomplete* xent_autocomplete_create(xent_context* ctx) {
  xent_autocomplete* out = nullptr;
  guarded([&] {
    if (!ctx) return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_autocomplete_create: ctx is NULL");
    auto ac = std::make_unique<xent_autocomplete>();
    ac->ctx = ctx;
    ac->engine = std::make_unique<xent::Autocompleter>(*ctx->model->model, *ctx->ctx);
    ctx->tokens.clear();  // the engine starts from an empty cache
    out = ac.release();
    return XENT_OK;
  });
  return out;
}

void xent_autocomplete_free(xent_autocomplete* ac) { delete ac; }

void xent_autocomplete_cancel(xent_autocomplete* ac) {
  if (ac) ac->engine->cancel();
}

void xent_autocomplete_result_free(xent_autocomplete_result* result) {
  if (!result) return;
  auto* st = reinterpret_cast<ResultStorage*>(result);
  delete st->data;
  delete st;
}

xent_status xent_autocomplete_run(xent_autocomplete* ac, const char* text, int32_t text_len,
                                  const xent_autocomplete_params* params, xent_autocomplete_result** result) {
  if (result) *result = nullptr;
  return guarded([&] {
    if (!ac || !result || text_len < 0 || (!text && text_len > 0))
      return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_autocomplete_run: invalid argument");
    const xent_autocomplete_params cp = params ? *params : xent_autocomplete_default_params();
    xent::AutocompleteParams p;
    p.n_suggestions = cp.n_suggestions;
    p.max_words = cp.max_words;
    p.min_probability = cp.min_probability;
    p.beam_width = cp.beam_width;
    p.max_tokens = cp.max_tokens;
    p.blocklist = split_words(cp.blocklist);
    if (p.n_suggestions < 0 || p.max_words < 1 || p.beam_width < 1 || p.max_tokens < 1 ||
        !(p.min_probability >= 0.0f && p.min_probability <= 1.0f))
      return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_autocomplete_run: a parameter is out of range");

    // Other calls (xent_generate, xent_decode) may change the cache between runs; the
    // context's token list says what it holds, and the engine keeps it up to date.
    const xent::AutocompleteResult r =
        ac->engine->complete(std::string_view(text ? text : "", static_cast<size_t>(text_len)), p, &ac->ctx->tokens);
    if (r.cancelled) return fail(XENT_ERROR_CANCELLED, "autocomplete: cancelled by a newer request");

    auto data = std::make_unique<ResultData>();
    data->texts.reserve(r.suggestions.size());
    data->inserts.reserve(r.suggestions.size());
    for (const xent::Suggestion& s : r.suggestions) {
      data->texts.push_back(s.text);
      data->inserts.push_back(s.insert);
    }
    for (size_t i = 0; i < r.suggestions.size(); ++i)
      data->suggestions.push_back({data->texts[i].c_str(), data->inserts[i].c_str(),
                                   static_cast<float>(r.suggestions[i].probability)});
    auto st = std::make_unique<ResultStorage>();
    st->result = xent_autocomplete_result{};
    st->result.suggestions = data->suggestions.data();
    st->result.n_suggestions = static_cast<int32_t>(data->suggestions.size());
    st->result.ms = r.ms;
    st->result.n_prefix_evaluated = r.n_prefix_evaluated;
    st->result.n_prefix_reused = r.n_prefix_reused;
    st->result.n_tree_evaluated = r.n_tree_evaluated;
    st->result.n_tree_reused = r.n_tree_reused;
    st->result.n_steps = r.n_steps;
    st->data = data.release();
    *result = &st.release()->result;
    return XENT_OK;
  });
}

}  // extern "C"
