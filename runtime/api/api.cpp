// The C API of include/xent.h over the C++ runtime. Every entry point catches every
// exception and turns it into a status plus a thread-local message.
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "formats/atomic-file.h"
#include "formats/error.h"
#include "runtime/api/api-internal.h"
#include "runtime/chat/chat-template.h"
#include "runtime/inference/context.h"
#include "runtime/api/log.h"
#include "runtime/inference/model.h"
#include "runtime/sampling/sampler.h"
#include "xent.h"

namespace {

thread_local std::string g_last_error;

xent_status fail(xent_status s, const std::string& message) {
  g_last_error = message;
  xent::log_message(XENT_LOG_DEBUG, message);
  return s;
}

// Maps an exception to a status by its message's origin; the message is kept whole.
xent_status status_of_current_exception() {
  try {
    throw;
  } catch (const std::bad_alloc&) {
    return fail(XENT_ERROR_OUT_OF_MEMORY, "out of memory");
  } catch (const xent::Error& e) {
    const std::string m = e.what();
    xent_status s = XENT_ERROR_INVALID_FILE;
    if (m.find("unsupported") != std::string::npos) s = XENT_ERROR_UNSUPPORTED;
    else if (m.find("cannot open") != std::string::npos || m.find("cannot create") != std::string::npos ||
             m.find("No such file") != std::string::npos || m.find("is a directory") != std::string::npos)
      s = XENT_ERROR_IO;
    else if (m.find("exceed the context") != std::string::npos) s = XENT_ERROR_CONTEXT_FULL;
    else if (m.find("cancelled") != std::string::npos) s = XENT_ERROR_CANCELLED;
    else if (m.rfind("decode:", 0) == 0 || m.rfind("context:", 0) == 0) s = XENT_ERROR_INVALID_ARGUMENT;
    else if (m.rfind("vulkan", 0) == 0 || m.rfind("cuda", 0) == 0) s = XENT_ERROR_BACKEND;
    return fail(s, m);
  } catch (const std::exception& e) {
    return fail(XENT_ERROR_INTERNAL, e.what());
  } catch (...) {
    return fail(XENT_ERROR_INTERNAL, "unknown error");
  }
}

template <typename Fn>
xent_status guarded(Fn fn) {
  try {
    g_last_error.clear();
    return fn();
  } catch (...) {
    return status_of_current_exception();
  }
}

// snprintf-like copy: returns the full length, writes what fits, NUL-terminated.
size_t copy_out(const std::string& s, char* buf, size_t buf_size) {
  if (buf && buf_size > 0) {
    const size_t n = std::min(s.size(), buf_size - 1);
    std::memcpy(buf, s.data(), n);
    buf[n] = '\0';
  }
  return s.size();
}


constexpr char kStateMagic[8] = {'X', 'E', 'N', 'T', 'S', 'E', 'S', 'S'};
constexpr uint32_t kStateVersion = 2;  // 2: the cache's K and V types after the fingerprint

uint64_t fnv1a(const void* data, size_t n, uint64_t h = 1469598103934665603ull) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// tmpl: a built-in template's name, a template's source, or null for the model's own.
std::string chat_template_source(const xent_model* m, const char* tmpl) {
  if (tmpl && std::strpbrk(tmpl, "{%") == nullptr) return xent::builtin_chat_template(tmpl);
  if (tmpl) return tmpl;
  return m->chat_template;
}

// The texts of the model's BOS and EOS tokens, for templates that write them; empty without a model.
void special_texts(const xent_model* m, std::string* bos, std::string* eos) {
  if (!m) return;
  const xent::Tokenizer& tok = m->model->tokenizer();
  if (tok.bos() >= 0) *bos = tok.token_text(tok.bos());
  if (tok.eos() >= 0) *eos = tok.token_text(tok.eos());
}

}  // namespace

void xent_api_set_error(const std::string& message) { g_last_error = message; }

extern "C" {

const char* xent_version(void) { return "0.1.0"; }
const char* xent_last_error(void) { return g_last_error.c_str(); }

const char* xent_status_string(xent_status status) {
  // As an int: a C caller may pass any number, and loading one outside the enumerators'
  // range as the C++ enum would be undefined, so the bits are copied.
  static_assert(sizeof(xent_status) == sizeof(int));
  int code;
  std::memcpy(&code, &status, sizeof code);
  switch (code) {
    case XENT_OK: return "ok";
    case XENT_ERROR_INVALID_ARGUMENT: return "invalid argument";
    case XENT_ERROR_IO: return "i/o error";
    case XENT_ERROR_INVALID_FILE: return "invalid file";
    case XENT_ERROR_UNSUPPORTED: return "unsupported";
    case XENT_ERROR_CONTEXT_FULL: return "context full";
    case XENT_ERROR_BUFFER_TOO_SMALL: return "buffer too small";
    case XENT_ERROR_OUT_OF_MEMORY: return "out of memory";
    case XENT_ERROR_CANCELLED: return "cancelled";
    case XENT_ERROR_BACKEND: return "backend error";
    case XENT_ERROR_INTERNAL: return "internal error";
    case XENT_ERROR_GRAMMAR: return "grammar cannot continue";
  }
  return "unknown status";
}

void xent_set_log_callback(xent_log_callback callback, void* user_data) {
  xent::set_log_callback(callback, user_data);
}

size_t xent_backends(char* buf, size_t buf_size) {
  std::string s;
  for (const std::string& b : xent::available_backends()) s += (s.empty() ? "" : ",") + b;
  return copy_out(s, buf, buf_size);
}

size_t xent_devices(char* buf, size_t buf_size) {
  std::string s;
  for (const std::string& d : xent::list_devices()) s += d + "\n";
  return copy_out(s, buf, buf_size);
}

// ---- model ----

xent_model_params xent_model_default_params(void) {
  xent_model_params p{};
  p.use_mmap = true;
  p.use_mlock = false;
  return p;
}

xent_model* xent_model_load(const char* path, const xent_model_params* params) {
  xent_model* out = nullptr;
  guarded([&] {
    if (!path) return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_model_load: path is NULL");
    const xent_model_params p = params ? *params : xent_model_default_params();
    xent::ModelLoadParams lp;
    lp.use_mmap = p.use_mmap;
    lp.use_mlock = p.use_mlock;
    if (p.progress) {
      lp.progress = [cb = p.progress, ud = p.progress_user_data](float f) { return cb(f, ud); };
    }
    auto m = std::make_unique<xent_model>();
    m->model = xent::Model::load(path, lp);
    m->architecture = m->model->hparams().arch;
    m->description = m->model->description();
    m->chat_template = m->model->chat_template();
    out = m.release();
    return XENT_OK;
  });
  return out;
}

void xent_model_free(xent_model* model) { delete model; }

const char* xent_model_architecture(const xent_model* m) { return m ? m->architecture.c_str() : ""; }
const char* xent_model_description(const xent_model* m) { return m ? m->description.c_str() : ""; }
uint64_t xent_model_n_params(const xent_model* m) { return m ? m->model->n_params() : 0; }
uint64_t xent_model_size_bytes(const xent_model* m) { return m ? m->model->weight_bytes() : 0; }
int32_t xent_model_n_vocab(const xent_model* m) {
  return m ? static_cast<int32_t>(m->model->hparams().n_vocab) : 0;
}
int32_t xent_model_n_ctx_train(const xent_model* m) {
  return m ? static_cast<int32_t>(m->model->hparams().n_ctx_train) : 0;
}
int32_t xent_model_n_embd(const xent_model* m) {
  return m ? static_cast<int32_t>(m->model->hparams().n_embd) : 0;
}
int32_t xent_model_n_layer(const xent_model* m) {
  return m ? static_cast<int32_t>(m->model->hparams().n_layer) : 0;
}
const char* xent_model_chat_template(const xent_model* m) { return m ? m->chat_template.c_str() : ""; }

int32_t xent_model_meta(const xent_model* m, const char* key, char* buf, size_t buf_size) {
  int32_t result = -1;
  guarded([&] {
    if (!m || !key) return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_model_meta: NULL argument");
    const xent::gguf::KeyValue* kv = m->model->file().find(key);
    if (!kv) {
      copy_out("", buf, buf_size);
      return fail(XENT_ERROR_INVALID_ARGUMENT, std::string("no metadata key '") + key + "'");
    }
    std::string s;
    using VT = xent::gguf::ValueType;
    switch (kv->type) {
      case VT::STRING: s = std::string(kv->str); break;
      case VT::BOOL: s = kv->u ? "true" : "false"; break;
      case VT::F32:
      case VT::F64: s = std::to_string(kv->f); break;
      case VT::I8: case VT::I16: case VT::I32: case VT::I64: s = std::to_string(kv->i); break;
      case VT::ARRAY: s = "array[" + std::to_string(kv->array_count) + "]"; break;
      default: s = std::to_string(kv->u); break;
    }
    result = static_cast<int32_t>(copy_out(s, buf, buf_size));
    return XENT_OK;
  });
  return result;
}

// ---- tokens ----

xent_token xent_token_bos(const xent_model* m) { return m ? m->model->tokenizer().bos() : -1; }
xent_token xent_token_eos(const xent_model* m) { return m ? m->model->tokenizer().eos() : -1; }
xent_token xent_token_eot(const xent_model* m) { return m ? m->model->tokenizer().eot() : -1; }
bool xent_token_is_eog(const xent_model* m, xent_token t) {
  return m && m->model->tokenizer().is_end_of_generation(t);
}

int32_t xent_tokenize(const xent_model* m, const char* text, int32_t text_len, xent_token* tokens,
                      int32_t n_max, bool add_special, bool parse_special) {
  int32_t result = INT32_MIN;
  guarded([&] {
    if (!m || (!text && text_len > 0) || text_len < 0 || n_max < 0 || (!tokens && n_max > 0)) {
      return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_tokenize: invalid argument");
    }
    std::vector<int32_t> ids = m->model->tokenizer().encode(
        std::string_view(text ? text : "", static_cast<size_t>(text_len)), add_special, parse_special);
    if (static_cast<int64_t>(ids.size()) > n_max) {
      result = -static_cast<int32_t>(ids.size());
      return fail(XENT_ERROR_BUFFER_TOO_SMALL, "xent_tokenize: " + std::to_string(ids.size()) +
                                                   " tokens do not fit in " + std::to_string(n_max));
    }
    std::copy(ids.begin(), ids.end(), tokens);
    result = static_cast<int32_t>(ids.size());
    return XENT_OK;
  });
  return result;
}

static int32_t copy_bytes(const std::string& s, char* buf, int32_t buf_size, bool nul) {
  const int32_t n = static_cast<int32_t>(s.size());
  if (buf_size < n + (nul ? 1 : 0) || (!buf && n > 0)) {
    fail(XENT_ERROR_BUFFER_TOO_SMALL, "buffer of " + std::to_string(buf_size) + " bytes is too small for " +
                                          std::to_string(n + (nul ? 1 : 0)));
    return -n - (nul ? 1 : 0);
  }
  if (n) std::memcpy(buf, s.data(), static_cast<size_t>(n));
  if (nul) buf[n] = '\0';
  return n;
}

int32_t xent_token_to_piece(const xent_model* m, xent_token token, char* buf, int32_t buf_size,
                            bool render_special) {
  int32_t result = INT32_MIN;
  guarded([&] {
    if (!m || token < 0 || token >= m->model->tokenizer().n_vocab())
      return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_token_to_piece: invalid token " + std::to_string(token));
    result = copy_bytes(m->model->tokenizer().token_to_piece(token, render_special), buf, buf_size, false);
    return XENT_OK;
  });
  return result;
}

int32_t xent_detokenize(const xent_model* m, const xent_token* tokens, int32_t n_tokens, char* buf,
                        int32_t buf_size, bool render_special) {
  int32_t result = INT32_MIN;
  guarded([&] {
    if (!m || n_tokens < 0 || (!tokens && n_tokens > 0))
      return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_detokenize: invalid argument");
    const int32_t n_vocab = m->model->tokenizer().n_vocab();
    for (int32_t i = 0; i < n_tokens; ++i)
      if (tokens[i] < 0 || tokens[i] >= n_vocab)
        return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_detokenize: invalid token " + std::to_string(tokens[i]));
    const std::vector<int32_t> ids(tokens, tokens + n_tokens);
    result = copy_bytes(m->model->tokenizer().decode(ids, render_special), buf, buf_size, true);
    return XENT_OK;
  });
  return result;
}

// ---- context ----

xent_context_params xent_context_default_params(void) {
  xent_context_params p{};
  p.n_ctx = 0;
  p.n_batch = 512;
  p.n_seq_max = 1;
  p.n_threads = 0;
  p.backends = "cpu";
  p.n_gpu_layers = -1;
  p.type_k = XENT_CACHE_TYPE_F16;
  p.type_v = XENT_CACHE_TYPE_F16;
  return p;
}

xent_context* xent_context_create(const xent_model* model, const xent_context_params* params) {
  xent_context* out = nullptr;
  guarded([&] {
    if (!model) return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_context_create: model is NULL");
    const xent_context_params p = params ? *params : xent_context_default_params();
    if (p.n_ctx < 0 || p.n_batch < 0 || p.n_threads < 0)
      return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_context_create: negative size");
    xent::ContextParams cp;
    cp.n_ctx = p.n_ctx;
    cp.n_ubatch = p.n_batch > 0 ? p.n_batch : 512;
    cp.n_threads = p.n_threads;
    cp.backends = xent::parse_backend_list(p.backends ? p.backends : "cpu");
    cp.n_gpu_layers = p.n_gpu_layers;
    cp.n_seq_max = p.n_seq_max > 0 ? p.n_seq_max : 1;
    for (auto [in, out] : {std::pair{p.type_k, &cp.type_k}, std::pair{p.type_v, &cp.type_v}}) {
      if (in != XENT_CACHE_TYPE_F16 && in != XENT_CACHE_TYPE_Q8_0)
        return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_context_create: unknown cache type " + std::to_string(in));
      *out = in == XENT_CACHE_TYPE_Q8_0 ? xent::DType::Q8_0 : xent::DType::F16;
    }
    auto c = std::make_unique<xent_context>();
    c->model = model;
    std::vector<std::string> notes;
    c->ctx = std::make_unique<xent::Context>(*model->model, cp, &notes);
    for (const std::string& n : notes) xent::log_message(XENT_LOG_WARN, n);
    for (const auto& b : c->ctx->backends()) c->backend_names += (c->backend_names.empty() ? "" : ",") + b->name();
    out = c.release();
    return XENT_OK;
  });
  return out;
}

void xent_context_free(xent_context* ctx) { delete ctx; }
int32_t xent_context_n_ctx(const xent_context* c) { return c ? static_cast<int32_t>(c->ctx->n_ctx()) : 0; }
int32_t xent_context_n_past(const xent_context* c) { return c ? c->ctx->n_past() : 0; }
uint64_t xent_context_n_evaluated(const xent_context* c) { return c ? c->ctx->n_tokens_evaluated() : 0; }
const char* xent_context_backends(const xent_context* c) { return c ? c->backend_names.c_str() : ""; }
uint64_t xent_context_kv_bytes(const xent_context* c) { return c ? c->ctx->kv_cache().bytes() : 0; }
int32_t xent_context_n_ctx_seq(const xent_context* c) {
  return c ? static_cast<int32_t>(c->ctx->n_ctx() / c->ctx->n_seq_max()) : 0;
}

xent_status xent_context_truncate(xent_context* c, int32_t n_keep) {
  return guarded([&] {
    if (!c || n_keep < 0) return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_context_truncate: invalid argument");
    c->ctx->truncate(n_keep);
    c->tokens.resize(static_cast<size_t>(c->ctx->n_past()));
    return XENT_OK;
  });
}

xent_status xent_decode(xent_context* c, const xent_token* tokens, int32_t n_tokens, bool all_logits) {
  return guarded([&] {
    if (!c || !tokens || n_tokens <= 0) return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_decode: no tokens");
    c->ctx->decode(tokens, static_cast<size_t>(n_tokens), all_logits);
    c->tokens.insert(c->tokens.end(), tokens, tokens + n_tokens);
    return XENT_OK;
  });
}

xent_batch xent_batch_init(int32_t n_tokens_max) {
  xent_batch b{};
  if (n_tokens_max <= 0 || n_tokens_max > (1 << 24)) return b;
  const size_t n = static_cast<size_t>(n_tokens_max);
  b.token = static_cast<xent_token*>(std::calloc(n, sizeof(xent_token)));
  b.pos = static_cast<int32_t*>(std::calloc(n, sizeof(int32_t)));
  b.seq_id = static_cast<int32_t*>(std::calloc(n, sizeof(int32_t)));
  b.logits = static_cast<int8_t*>(std::calloc(n, sizeof(int8_t)));
  if (!b.token || !b.pos || !b.seq_id || !b.logits) {
    xent_batch_free(b);
    return xent_batch{};
  }
  return b;
}

void xent_batch_free(xent_batch b) {
  std::free(b.token);
  std::free(b.pos);
  std::free(b.seq_id);
  std::free(b.logits);
}

namespace {
std::vector<xent_token>& tokens_of(xent_context* c, int32_t seq) {
  if (seq == 0) return c->tokens;
  c->seq_tokens.resize(static_cast<size_t>(c->ctx->n_seq_max()));
  return c->seq_tokens[static_cast<size_t>(seq)];
}
}  // namespace

xent_status xent_decode_batch(xent_context* c, const xent_batch* batch) {
  return guarded([&] {
    if (!c || !batch || batch->n_tokens <= 0 || !batch->token || !batch->seq_id)
      return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_decode_batch: no tokens");
    const size_t n = static_cast<size_t>(batch->n_tokens);
    xent::Batch b;
    b.tokens.assign(batch->token, batch->token + n);
    b.seq_ids.assign(batch->seq_id, batch->seq_id + n);
    if (batch->pos) b.positions.assign(batch->pos, batch->pos + n);
    if (batch->logits)
      for (size_t i = 0; i < n; ++i) b.logits.push_back(batch->logits[i] != 0);
    c->ctx->decode_batch(b);
    for (size_t i = 0; i < n; ++i) tokens_of(c, b.seq_ids[i]).push_back(b.tokens[i]);
    return XENT_OK;
  });
}

int32_t xent_seq_n_past(const xent_context* c, int32_t seq) {
  if (!c || seq < 0 || seq >= c->ctx->n_seq_max()) return -1;
  return c->ctx->seq_n_past(seq);
}

xent_status xent_seq_truncate(xent_context* c, int32_t seq, int32_t n_keep) {
  return guarded([&] {
    if (!c || n_keep < 0) return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_seq_truncate: invalid argument");
    c->ctx->seq_truncate(seq, n_keep);
    tokens_of(c, seq).resize(static_cast<size_t>(c->ctx->seq_n_past(seq)));
    return XENT_OK;
  });
}

xent_status xent_seq_copy(xent_context* c, int32_t src, int32_t dst) {
  return guarded([&] {
    if (!c) return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_seq_copy: ctx is NULL");
    c->ctx->seq_copy(src, dst);
    if (src != dst) tokens_of(c, dst) = tokens_of(c, src);
    return XENT_OK;
  });
}

const float* xent_get_logits(xent_context* c) {
  const float* out = nullptr;
  guarded([&] {
    if (!c) return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_get_logits: ctx is NULL");
    out = c->ctx->logits();
    return XENT_OK;
  });
  return out;
}

const float* xent_get_logits_ith(xent_context* c, int32_t i) {
  const float* out = nullptr;
  guarded([&] {
    if (!c || i < 0) return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_get_logits_ith: invalid argument");
    out = c->ctx->logits_at(static_cast<size_t>(i));
    return XENT_OK;
  });
  return out;
}

// Session file: magic, version, a fingerprint of the model, the cache's K and V element
// types (u32 DType each), the cached tokens, their cache rows, the application blob, and a
// checksum of everything before it.
xent_status xent_state_save(xent_context* c, const char* path, const void* app_data, size_t app_bytes) {
  return guarded([&] {
    if (!c || !path || (!app_data && app_bytes > 0))
      return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_state_save: invalid argument");
    const int32_t n_pos = c->ctx->n_past();
    const std::vector<uint8_t> kv = c->ctx->kv_cache().save(n_pos);
    const uint64_t fingerprint = fnv1a(c->model->description.data(), c->model->description.size(),
                                       xent_model_size_bytes(c->model));
    std::vector<uint8_t> bytes;
    auto put = [&](const void* p, size_t n) {
      bytes.insert(bytes.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
    };
    const uint64_t app_size = app_bytes, kv_bytes = kv.size();
    put(kStateMagic, 8);
    put(&kStateVersion, 4);
    put(&fingerprint, 8);
    const uint32_t types[2] = {static_cast<uint32_t>(c->ctx->kv_cache().type_k()),
                               static_cast<uint32_t>(c->ctx->kv_cache().type_v())};
    put(types, 8);
    std::vector<xent_token> cached = c->tokens;
    cached.resize(static_cast<size_t>(n_pos), -1);  // -1: a row evaluated outside this API
    put(&n_pos, 4);
    put(cached.data(), sizeof(xent_token) * cached.size());
    put(&kv_bytes, 8);
    put(kv.data(), kv.size());
    put(&app_size, 8);
    put(app_data, app_bytes);
    const uint64_t sum = fnv1a(bytes.data(), bytes.size());
    put(&sum, 8);
    xent::write_file_atomic(path, [&](const auto& write) { write(bytes.data(), bytes.size()); });
    return XENT_OK;
  });
}

xent_status xent_state_load(xent_context* c, const char* path, void* app_data, size_t capacity, size_t* app_bytes) {
  return guarded([&] {
    if (!c || !path || (!app_data && capacity > 0))
      return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_state_load: invalid argument");
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail(XENT_ERROR_IO, std::string("cannot open '") + path + "'");
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string name = std::string("session file '") + path + "'";
    if (bytes.size() < 8 + 4 + 8 + 8 + 4 + 8 + 8 + 8) return fail(XENT_ERROR_INVALID_FILE, name + " is too short");
    uint64_t sum = 0;
    std::memcpy(&sum, bytes.data() + bytes.size() - 8, 8);
    if (fnv1a(bytes.data(), bytes.size() - 8) != sum)
      return fail(XENT_ERROR_INVALID_FILE, name + " is corrupt (checksum mismatch)");
    bytes.resize(bytes.size() - 8);
    size_t at = 0;
    auto get = [&](void* p, size_t n) {
      if (n > bytes.size() - at) throw xent::Error(name + " is truncated");
      std::memcpy(p, bytes.data() + at, n);
      at += n;
    };
    char magic[8];
    get(magic, 8);
    uint32_t version = 0;
    get(&version, 4);
    if (std::memcmp(magic, kStateMagic, 8) != 0) return fail(XENT_ERROR_INVALID_FILE, name + " is not a session file");
    if (version != kStateVersion)
      return fail(XENT_ERROR_UNSUPPORTED, name + " has version " + std::to_string(version) + ", this build reads " +
                                              std::to_string(kStateVersion));
    uint64_t fingerprint = 0;
    get(&fingerprint, 8);
    if (fingerprint != fnv1a(c->model->description.data(), c->model->description.size(),
                             xent_model_size_bytes(c->model)))
      return fail(XENT_ERROR_INVALID_FILE, name + " was saved with another model");
    uint32_t types[2] = {};
    get(types, 8);
    const xent::KvCache& cache = c->ctx->kv_cache();
    if (types[0] != static_cast<uint32_t>(cache.type_k()) || types[1] != static_cast<uint32_t>(cache.type_v())) {
      auto type_name = [](uint32_t t) {
        if (t == static_cast<uint32_t>(xent::DType::F16) || t == static_cast<uint32_t>(xent::DType::Q8_0))
          return std::string(xent::dtype_name(static_cast<xent::DType>(t)));
        return "type " + std::to_string(t);
      };
      return fail(XENT_ERROR_INVALID_FILE, name + " holds a " + type_name(types[0]) + " K / " + type_name(types[1]) +
                                               " V cache; this context's is " + xent::dtype_name(cache.type_k()) +
                                               " / " + xent::dtype_name(cache.type_v()) +
                                               " (--cache-type-k/-v must match the saving run)");
    }
    int32_t n_pos = 0;
    get(&n_pos, 4);
    if (n_pos < 0 || n_pos > c->ctx->n_ctx())
      return fail(XENT_ERROR_CONTEXT_FULL, name + " holds " + std::to_string(n_pos) +
                                               " positions; this context has " + std::to_string(c->ctx->n_ctx()));
    std::vector<xent_token> cached(static_cast<size_t>(n_pos));
    get(cached.data(), cached.size() * sizeof(xent_token));
    uint64_t kv_bytes = 0;
    get(&kv_bytes, 8);
    if (kv_bytes > bytes.size() - at) return fail(XENT_ERROR_INVALID_FILE, name + ": bad cache size");
    std::vector<uint8_t> kv(bytes.begin() + static_cast<std::ptrdiff_t>(at),
                            bytes.begin() + static_cast<std::ptrdiff_t>(at + kv_bytes));
    at += kv_bytes;
    uint64_t app_size = 0;
    get(&app_size, 8);
    if (app_size != bytes.size() - at) return fail(XENT_ERROR_INVALID_FILE, name + ": bad application data size");
    if (app_bytes) *app_bytes = app_size;
    if (app_size > capacity)
      return fail(XENT_ERROR_BUFFER_TOO_SMALL, name + " holds " + std::to_string(app_size) + " bytes of application data");
    c->ctx->kv_cache().load(kv, n_pos);
    c->ctx->restore_n_past(n_pos);
    c->tokens = cached;
    if (app_size) std::memcpy(app_data, bytes.data() + at, app_size);
    return XENT_OK;
  });
}

// ---- sampling ----

xent_sampler_params xent_sampler_default_params(void) {
  const xent::SamplerParams d;
  xent_sampler_params p{};
  p.temperature = d.temperature;
  p.top_k = d.top_k;
  p.top_p = d.top_p;
  p.min_p = d.min_p;
  p.repeat_penalty = d.repeat_penalty;
  p.frequency_penalty = d.frequency_penalty;
  p.presence_penalty = d.presence_penalty;
  p.repeat_last_n = d.repeat_last_n;
  p.seed = d.seed;
  return p;
}

xent_sampler* xent_sampler_create(const xent_sampler_params* params) {
  xent_sampler* out = nullptr;
  guarded([&] {
    const xent_sampler_params p = params ? *params : xent_sampler_default_params();
    xent::SamplerParams sp;
    sp.temperature = p.temperature;
    sp.top_k = p.top_k;
    sp.top_p = p.top_p;
    sp.min_p = p.min_p;
    sp.repeat_penalty = p.repeat_penalty;
    sp.frequency_penalty = p.frequency_penalty;
    sp.presence_penalty = p.presence_penalty;
    sp.repeat_last_n = p.repeat_last_n;
    sp.seed = p.seed;
    if (!(sp.repeat_penalty > 0.0f)) return fail(XENT_ERROR_INVALID_ARGUMENT, "repeat_penalty must be > 0");
    auto s = std::make_unique<xent_sampler>();
    s->sampler = std::make_unique<xent::Sampler>(sp);
    out = s.release();
    return XENT_OK;
  });
  return out;
}

void xent_sampler_free(xent_sampler* s) { delete s; }

xent_token xent_sampler_sample(xent_sampler* s, xent_context* c) {
  xent_token out = -1;
  guarded([&] {
    if (!s || !c) return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_sampler_sample: NULL argument");
    out = s->sampler->sample(c->ctx->logits(), static_cast<int32_t>(c->ctx->n_vocab()));
    if (out < 0) return fail(XENT_ERROR_GRAMMAR, s->sampler->grammar_error());
    s->sampler->accept(out);
    return XENT_OK;
  });
  return out;
}

xent_token xent_sampler_sample_ith(xent_sampler* s, xent_context* c, int32_t i) {
  xent_token out = -1;
  guarded([&] {
    if (!s || !c || i < 0) return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_sampler_sample_ith: invalid argument");
    const float* logits = c->ctx->logits_at(static_cast<size_t>(i));
    if (!logits) return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_sampler_sample_ith: token " + std::to_string(i) +
                                                              " of the last batch kept no logits");
    out = s->sampler->sample(logits, static_cast<int32_t>(c->ctx->n_vocab()));
    if (out < 0) return fail(XENT_ERROR_GRAMMAR, s->sampler->grammar_error());
    s->sampler->accept(out);
    return XENT_OK;
  });
  return out;
}

void xent_sampler_accept(xent_sampler* s, xent_token token) {
  if (s) s->sampler->accept(token);
}

void xent_sampler_reset(xent_sampler* s) {
  if (s) s->sampler->reset();
}

// ---- generation ----

namespace {

// The tokens for the text the sampler's grammar forces next (none without a grammar, or
// when the tokenizer's spelling of it is not exactly that text, as a SentencePiece leading
// space would make it).
std::vector<int32_t> grammar_forced_tokens(const xent::Tokenizer& tok, const xent::Sampler& sampler) {
  const xent::GrammarMatcher* g = sampler.grammar();
  if (!g) return {};
  const std::string text = g->forced_bytes(256);
  if (text.empty()) return {};
  std::vector<int32_t> ids = tok.encode(text, /*add_special=*/false, /*parse_special=*/false);
  std::string spelled;
  for (int32_t id : ids) spelled += tok.token_to_piece(id, false);
  if (spelled != text || !g->can_accept(text)) return {};
  return ids;
}

}  // namespace

xent_status xent_generate(xent_context* c, xent_sampler* s, const char* prompt, int32_t n_predict,
                          xent_token_callback on_token, void* user_data, xent_generate_stats* stats) {
  return guarded([&] {
    if (!c || !s || !prompt) return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_generate: NULL argument");
    using clock = std::chrono::steady_clock;
    xent_generate_stats st{};
    const xent::Tokenizer& tok = c->model->model->tokenizer();
    std::vector<int32_t> ids = tok.encode(prompt, /*add_special=*/true, /*parse_special=*/true);
    if (ids.empty()) return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_generate: the prompt has no tokens");
    if (static_cast<int64_t>(ids.size()) >= c->ctx->n_ctx())
      return fail(XENT_ERROR_CONTEXT_FULL, "prompt of " + std::to_string(ids.size()) +
                                               " tokens does not fit the context of " +
                                               std::to_string(c->ctx->n_ctx()) + " tokens");
    // Reuse the longest cached prefix; at least one token is evaluated for fresh logits.
    size_t common = 0;
    while (common < c->tokens.size() && common < ids.size() && c->tokens[common] == ids[common]) ++common;
    if (common == ids.size()) --common;
    c->ctx->truncate(static_cast<int32_t>(common));
    c->tokens.resize(common);

    const auto t0 = clock::now();
    c->ctx->decode(ids.data() + common, ids.size() - common, false);
    c->tokens.insert(c->tokens.end(), ids.begin() + static_cast<std::ptrdiff_t>(common), ids.end());
    st.n_prompt = static_cast<int32_t>(ids.size() - common);
    const auto t1 = clock::now();
    st.prompt_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();

    for (int32_t i = 0; n_predict < 0 || i < n_predict; ++i) {
      // Text the grammar forces (a JSON key, say) is emitted as the tokenizer spells it and
      // evaluated in one decode, without sampling.
      const std::vector<int32_t> forced = grammar_forced_tokens(tok, *s->sampler);
      if (!forced.empty() && (n_predict < 0 || i + static_cast<int32_t>(forced.size()) <= n_predict) &&
          c->ctx->n_past() + static_cast<int64_t>(forced.size()) < c->ctx->n_ctx()) {
        bool go_on = true;
        for (int32_t id : forced) {
          s->sampler->accept(id);
          const std::string piece = tok.token_to_piece(id, false);
          if (on_token && !on_token(id, piece.data(), static_cast<int32_t>(piece.size()), user_data)) go_on = false;
          if (!go_on) break;
        }
        const auto n = static_cast<int32_t>(forced.size());
        st.n_generated += n;
        st.n_forced += n;
        i += n - 1;
        if (!go_on) break;
        c->ctx->decode(forced.data(), forced.size(), false);
        c->tokens.insert(c->tokens.end(), forced.begin(), forced.end());
        continue;
      }
      const int32_t id = s->sampler->sample(c->ctx->logits(), tok.n_vocab());
      if (id < 0) {  // the grammar allows no token: stop with its reason, never spin
        st.generate_ms = std::chrono::duration<double, std::milli>(clock::now() - t1).count();
        if (stats) *stats = st;
        return fail(XENT_ERROR_GRAMMAR, s->sampler->grammar_error());
      }
      s->sampler->accept(id);
      if (tok.is_end_of_generation(id)) {
        st.stopped_by_eog = true;
        break;
      }
      ++st.n_generated;
      const std::string piece = tok.token_to_piece(id, false);
      if (on_token && !on_token(id, piece.data(), static_cast<int32_t>(piece.size()), user_data)) break;
      if (c->ctx->n_past() >= c->ctx->n_ctx()) break;  // context full: stop, never overflow
      c->ctx->decode(&id, 1, false);
      c->tokens.push_back(id);
    }
    st.generate_ms = std::chrono::duration<double, std::milli>(clock::now() - t1).count();
    if (stats) *stats = st;
    return XENT_OK;
  });
}

// ---- chat templates ----

int32_t xent_chat_apply_template(const xent_model* m, const char* tmpl, const xent_chat_message* messages,
                                 size_t n_messages, bool add_generation_prompt, char* buf, int32_t buf_size) {
  int32_t result = -1;
  guarded([&] {
    if ((!messages && n_messages > 0) || buf_size < 0 || (!m && !tmpl))
      return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_chat_apply_template: invalid argument");
    const std::string source = chat_template_source(m, tmpl);
    if (source.empty())
      return fail(XENT_ERROR_UNSUPPORTED, "the model has no chat template; choose one by name (e.g. chatml)");
    std::vector<xent::ChatMessage> msgs;
    for (size_t i = 0; i < n_messages; ++i) {
      if (!messages[i].role || !messages[i].content)
        return fail(XENT_ERROR_INVALID_ARGUMENT, "chat message " + std::to_string(i) + " has a NULL field");
      msgs.push_back({messages[i].role, messages[i].content});
    }
    std::string bos, eos;
    special_texts(m, &bos, &eos);
    const std::string text = xent::ChatTemplate::parse(source)->render(msgs, add_generation_prompt, bos, eos);
    result = static_cast<int32_t>(copy_out(text, buf, static_cast<size_t>(buf_size)));
    return XENT_OK;
  });
  return result;
}

int32_t xent_chat_apply_template_json(const xent_model* m, const char* tmpl, const char* messages_json,
                                      const char* variables_json, bool add_generation_prompt, char* buf,
                                      int32_t buf_size) {
  int32_t result = -1;
  guarded([&] {
    if (!messages_json || buf_size < 0 || (!m && !tmpl))
      return fail(XENT_ERROR_INVALID_ARGUMENT, "xent_chat_apply_template_json: invalid argument");
    const std::string source = chat_template_source(m, tmpl);
    if (source.empty())
      return fail(XENT_ERROR_UNSUPPORTED, "the model has no chat template; choose one by name (e.g. chatml)");
    nlohmann::ordered_json messages, variables;
    try {
      messages = nlohmann::ordered_json::parse(messages_json);
      if (variables_json) variables = nlohmann::ordered_json::parse(variables_json);
    } catch (const nlohmann::json::exception& e) {
      return fail(XENT_ERROR_INVALID_ARGUMENT, std::string("chat template: invalid JSON: ") + e.what());
    }
    std::string bos, eos;
    special_texts(m, &bos, &eos);
    const std::string text =
        xent::ChatTemplate::parse(source)->render_conversation(messages, variables, add_generation_prompt, bos, eos);
    result = static_cast<int32_t>(copy_out(text, buf, static_cast<size_t>(buf_size)));
    return XENT_OK;
  });
  return result;
}

}  // extern "C"
