// The adapters part of the C API (include/xent.h) over runtime/inference/lora.h. Like api.cpp,
// every entry point catches every exception and returns a status.
#include <cmath>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "formats/error.h"
#include "runtime/api/api-internal.h"
#include "runtime/api/log.h"
#include "runtime/inference/lora.h"

struct xent_lora {
  const xent_model* model = nullptr;
  std::shared_ptr<const xent::LoraAdapter> adapter;
};

namespace {

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
    if (m.find("cannot open") != std::string::npos || m.find("No such file") != std::string::npos ||
        m.find("is a directory") != std::string::npos)
      return fail(XENT_ERROR_IO, m);
    if (m.rfind("context:", 0) == 0) return fail(XENT_ERROR_INVALID_ARGUMENT, m);
    return fail(XENT_ERROR_INVALID_FILE, m);
  } catch (const std::exception& e) {
    return fail(XENT_ERROR_INTERNAL, e.what());
  } catch (...) {
    return fail(XENT_ERROR_INTERNAL, "unknown error");
  }
}

// Installs the new adapter list and forgets every cached row, which the old list computed.
void set_adapters(xent_context* c, std::vector<xent::LoraBinding> list) {
  c->ctx->set_adapters(std::move(list));
  c->ctx->truncate(0);
  c->tokens.clear();
  for (int32_t s = 1; s < c->ctx->n_seq_max(); ++s) c->ctx->seq_truncate(s, 0);
  for (auto& t : c->seq_tokens) t.clear();
}

}  // namespace

extern "C" {

xent_lora* xent_lora_load(const xent_model* model, const char* path) {
  xent_lora* out = nullptr;
  guarded([&] {
    if (!model || !path) return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_lora_load: model or path is NULL");
    auto l = std::make_unique<xent_lora>();
    l->model = model;
    l->adapter = xent::LoraAdapter::load(*model->model, path);
    out = l.release();
    return XENT_OK;
  });
  return out;
}

void xent_lora_free(xent_lora* lora) { delete lora; }

int32_t xent_lora_n_targets(const xent_lora* l) {
  return l ? static_cast<int32_t>(l->adapter->targets().size()) : 0;
}

float xent_lora_alpha(const xent_lora* l) { return l ? l->adapter->alpha() : 0.0f; }

xent_status xent_context_lora_attach(xent_context* c, const xent_lora* l, float scale) {
  return guarded([&] {
    if (!c || !l) return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_context_lora_attach: NULL argument");
    if (!std::isfinite(scale)) return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_context_lora_attach: scale is not finite");
    if (l->model != c->model)
      return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_context_lora_attach: the adapter was loaded for another model");
    std::vector<xent::LoraBinding> list = c->ctx->adapters();
    bool found = false;
    for (auto& [ad, s] : list) {
      if (ad != l->adapter) continue;
      if (s == scale) return XENT_OK;
      s = scale;
      found = true;
    }
    if (!found) list.emplace_back(l->adapter, scale);
    set_adapters(c, std::move(list));
    return XENT_OK;
  });
}

xent_status xent_context_lora_detach(xent_context* c, const xent_lora* l) {
  return guarded([&] {
    if (!c || !l) return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_context_lora_detach: NULL argument");
    std::vector<xent::LoraBinding> list;
    for (const auto& b : c->ctx->adapters())
      if (b.first != l->adapter) list.push_back(b);
    if (list.size() == c->ctx->adapters().size())
      return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_context_lora_detach: the adapter is not attached");
    set_adapters(c, std::move(list));
    return XENT_OK;
  });
}

xent_status xent_context_lora_clear(xent_context* c) {
  return guarded([&] {
    if (!c) return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_context_lora_clear: context is NULL");
    if (!c->ctx->adapters().empty()) set_adapters(c, {});
    return XENT_OK;
  });
}

xent_status xent_context_lora_set(xent_context* c, const xent_lora* const* loras, const float* scales, int32_t n) {
  return guarded([&] {
    if (!c || n < 0 || (n > 0 && (!loras || !scales)))
      return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_context_lora_set: NULL context or arrays, or n < 0");
    std::vector<xent::LoraBinding> list;
    for (int32_t i = 0; i < n; ++i) {
      if (!loras[i]) return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_context_lora_set: a NULL adapter");
      if (loras[i]->model != c->model)
        return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_context_lora_set: an adapter was loaded for another model");
      if (!std::isfinite(scales[i])) return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_context_lora_set: a scale is not finite");
      list.emplace_back(loras[i]->adapter, scales[i]);
    }
    c->ctx->set_adapters(std::move(list));  // the cells stay
    return XENT_OK;
  });
}

int32_t xent_context_lora_count(const xent_context* c) {
  return c ? static_cast<int32_t>(c->ctx->adapters().size()) : 0;
}

}  // extern "C"
