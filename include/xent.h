/* xent — on-device inference for quantized language models. The public C API.
 * Plain C99 (usable from C++), opaque handles, no exception or abort crosses it.
 *
 * Conventions
 * - Functions return an xent_status (XENT_OK == 0) or a pointer (NULL on failure);
 *   xent_last_error() then gives a message for the calling thread.
 * - Thread safety, stated for each function below as one of:
 *   "Thread-safe": any number of threads may call it at once, on the same handle too.
 *   "One thread per handle": calls on the same handle must not overlap (the caller
 *   serialises them); different handles may be used from different threads at once,
 *   also when they share one model. xent_model is immutable after loading: any number
 *   of threads may use one model (tokenize, create contexts, run their own contexts)
 *   at the same time. An xent_context and an xent_sampler belong to one thread at a time.
 * - A *_free function must not overlap any other call on that handle; NULL is a no-op.
 *   Free every context (and its autocomplete) before the model it was created from.
 * - Sizes are in tokens (n_*) or bytes (*_bytes).
 */
#ifndef XENT_H
#define XENT_H

#include <stddef.h>
#include <stdint.h>
#ifndef __cplusplus
#include <stdbool.h> /* bool in C99; C++ has it built in */
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The library is compiled with hidden visibility; XENT_API marks what it exports. For
 * consumers the attribute on a declaration is harmless. Define XENT_API yourself to
 * override (e.g. empty, or for a Windows static build define XENT_STATIC). */
#ifndef XENT_API
#if defined(_WIN32)
#if defined(XENT_BUILDING_LIBRARY)
#define XENT_API __declspec(dllexport)
#elif defined(XENT_STATIC)
#define XENT_API
#else
#define XENT_API __declspec(dllimport)
#endif
#elif defined(__GNUC__) || defined(__clang__)
#define XENT_API __attribute__((visibility("default")))
#else
#define XENT_API
#endif
#endif

#define XENT_VERSION_MAJOR 0
#define XENT_VERSION_MINOR 1
#define XENT_VERSION_PATCH 0

typedef int32_t xent_token;

typedef enum xent_status {
  XENT_OK = 0,
  XENT_ERROR_INVALID_ARGUMENT = 1, /* a NULL handle, a bad parameter value */
  XENT_ERROR_IO = 2,               /* file missing, unreadable, not writable */
  XENT_ERROR_INVALID_FILE = 3,     /* malformed or hostile GGUF/session file */
  XENT_ERROR_UNSUPPORTED = 4,      /* unknown architecture, tokenizer, type */
  XENT_ERROR_CONTEXT_FULL = 5,     /* tokens would not fit the context */
  XENT_ERROR_BUFFER_TOO_SMALL = 6, /* the output buffer is short; the needed size is returned */
  XENT_ERROR_OUT_OF_MEMORY = 7,
  XENT_ERROR_CANCELLED = 8,        /* a callback asked to stop */
  XENT_ERROR_BACKEND = 9,          /* device lost, driver error */
  XENT_ERROR_INTERNAL = 10,
  XENT_ERROR_GRAMMAR = 11          /* the sampler's grammar cannot be continued by any token */
} xent_status;

typedef struct xent_model xent_model;
typedef struct xent_context xent_context;
typedef struct xent_sampler xent_sampler;

/* ---- library ---------------------------------------------------------------- */

/* "0.1.0". Thread-safe. */
XENT_API const char* xent_version(void);
/* The message of the last failed call on this thread ("" if none). Thread-safe. */
XENT_API const char* xent_last_error(void);
/* A readable name for a status. Thread-safe. */
XENT_API const char* xent_status_string(xent_status status);

typedef enum xent_log_level {
  XENT_LOG_DEBUG = 0,
  XENT_LOG_INFO = 1,
  XENT_LOG_WARN = 2,
  XENT_LOG_ERROR = 3
} xent_log_level;
typedef void (*xent_log_callback)(xent_log_level level, const char* message, void* user_data);
/* Where library messages go (default: warnings and errors to stderr). NULL restores the
 * default. Thread-safe: the callback is called from whichever thread logs, one call at a
 * time (never concurrently), and never after this function returned with another one;
 * it must not call xent_set_log_callback itself. */
XENT_API void xent_set_log_callback(xent_log_callback callback, void* user_data);

/* Backends compiled into this build ("cpu", "vulkan", "cuda"), comma-separated, and the
 * devices present, one per line. Return the length; write at most buf_size bytes
 * (NUL-terminated). Thread-safe. */
XENT_API size_t xent_backends(char* buf, size_t buf_size);
XENT_API size_t xent_devices(char* buf, size_t buf_size);

/* ---- model ------------------------------------------------------------------ */

/* Return false to cancel loading. progress is in [0, 1]. */
typedef bool (*xent_progress_callback)(float progress, void* user_data);

typedef struct xent_model_params {
  bool use_mmap;  /* default true: weights stay in the file mapping */
  bool use_mlock; /* default false: lock the mapping in memory */
  xent_progress_callback progress;
  void* progress_user_data;
} xent_model_params;

/* Thread-safe. */
XENT_API xent_model_params xent_model_default_params(void);
/* NULL on failure (see xent_last_error). Thread-safe (several models may load at once);
 * the progress callback runs on the calling thread. */
XENT_API xent_model* xent_model_load(const char* path, const xent_model_params* params);
/* After every context made from it is freed; no other call on the model may overlap. */
XENT_API void xent_model_free(xent_model* model);

/* Model facts. Thread-safe. Strings live as long as the model. */
XENT_API const char* xent_model_architecture(const xent_model* model);
XENT_API const char* xent_model_description(const xent_model* model);
XENT_API uint64_t xent_model_n_params(const xent_model* model);
XENT_API uint64_t xent_model_size_bytes(const xent_model* model);
XENT_API int32_t xent_model_n_vocab(const xent_model* model);
XENT_API int32_t xent_model_n_ctx_train(const xent_model* model);
XENT_API int32_t xent_model_n_embd(const xent_model* model);
XENT_API int32_t xent_model_n_layer(const xent_model* model);
/* "" when the file has no template. Thread-safe. */
XENT_API const char* xent_model_chat_template(const xent_model* model);
/* A metadata value rendered as text ("" and XENT_ERROR_INVALID_ARGUMENT if absent);
 * returns the needed length like snprintf. Thread-safe. */
XENT_API int32_t xent_model_meta(const xent_model* model, const char* key, char* buf, size_t buf_size);

/* ---- tokens ----------------------------------------------------------------- */

/* Special tokens, -1 if none. Thread-safe. */
XENT_API xent_token xent_token_bos(const xent_model* model);
XENT_API xent_token xent_token_eos(const xent_model* model);
XENT_API xent_token xent_token_eot(const xent_model* model);
/* EOS, end-of-turn, or another end-of-generation token. Thread-safe. */
XENT_API bool xent_token_is_eog(const xent_model* model, xent_token token);

/* Tokenizes text (text_len bytes). add_special: BOS/EOS as the model says;
 * parse_special: "<|im_start|>"-style text becomes control tokens.
 * Returns the number of tokens written; if more than n_max are needed, returns the
 * negated count and writes nothing (n_max 0 asks for the count); INT32_MIN on other
 * errors. Thread-safe. */
XENT_API int32_t xent_tokenize(const xent_model* model, const char* text, int32_t text_len,
                               xent_token* tokens, int32_t n_max, bool add_special,
                               bool parse_special);
/* The bytes of one token (not NUL-terminated). Returns the length, or its negation if
 * buf_size is too small; INT32_MIN for an invalid token. Thread-safe. */
XENT_API int32_t xent_token_to_piece(const xent_model* model, xent_token token, char* buf,
                                     int32_t buf_size, bool render_special);
/* Detokenizes a sequence, NUL-terminated: returns the length (without the NUL), or the
 * negated size needed (with the NUL) if buf_size is too small. Thread-safe. */
XENT_API int32_t xent_detokenize(const xent_model* model, const xent_token* tokens,
                                 int32_t n_tokens, char* buf, int32_t buf_size,
                                 bool render_special);

/* ---- context ---------------------------------------------------------------- */

/* Element type of the cached keys or values (llama.cpp's --cache-type-k / -v). Q8_0 takes
 * 34 bytes per 32 values instead of 64 (0.53x) and needs a head_dim that is a multiple of
 * 32 (else xent_context_create fails naming it); only the CPU reads it, so with a GPU
 * backend those layers keep their cache and attention on the CPU. */
typedef enum xent_cache_type {
  XENT_CACHE_TYPE_F16 = 0, /* the default */
  XENT_CACHE_TYPE_Q8_0 = 1
} xent_cache_type;

typedef struct xent_context_params {
  int32_t n_ctx;        /* 0: the model's training context, at most 4096 */
  int32_t n_batch;      /* most tokens per evaluation step; default 512 */
  int32_t n_threads;    /* 0: all hardware threads */
  const char* backends; /* "cpu" (default), "vulkan", "cuda,cpu", ... in preference order */
  int32_t n_gpu_layers; /* -1: all */
  int32_t n_seq_max;    /* sequences decoded together (xent_decode_batch); each gets
                           n_ctx / n_seq_max cells of the cache; default 1 */
  xent_cache_type type_k; /* keys in the cache; default XENT_CACHE_TYPE_F16 */
  xent_cache_type type_v; /* values in the cache; default XENT_CACHE_TYPE_F16 */
} xent_context_params;

/* Thread-safe. */
XENT_API xent_context_params xent_context_default_params(void);
/* NULL on failure. A requested GPU backend that is absent is skipped with one log line.
 * n_ctx beyond what the model's positions allow fails with a message. Thread-safe:
 * any number of contexts may be created from, and run on, one model at once. */
XENT_API xent_context* xent_context_create(const xent_model* model, const xent_context_params* params);
/* Free its autocomplete first. One thread per handle. */
XENT_API void xent_context_free(xent_context* ctx);
/* The functions from here to xent_state_load are one thread per handle: a context is
 * used by one thread at a time (two contexts on two threads run concurrently). */
XENT_API int32_t xent_context_n_ctx(const xent_context* ctx);
/* Tokens currently in the KV cache. */
XENT_API int32_t xent_context_n_past(const xent_context* ctx);
/* Keeps the first n_keep tokens of the cache, forgets the rest. */
XENT_API xent_status xent_context_truncate(xent_context* ctx, int32_t n_keep);
/* Bytes of the KV cache (every sequence's cells). */
XENT_API uint64_t xent_context_kv_bytes(const xent_context* ctx);
/* Cells of one sequence: n_ctx / n_seq_max. */
XENT_API int32_t xent_context_n_ctx_seq(const xent_context* ctx);
/* Tokens evaluated since creation (for reuse statistics). */
XENT_API uint64_t xent_context_n_evaluated(const xent_context* ctx);
/* "cpu" or "vulkan0,cpu": the backends actually in use. */
XENT_API const char* xent_context_backends(const xent_context* ctx);

/* Evaluates tokens after the cached ones. all_logits: keep every token's logits
 * (xent_get_logits_ith), else only the last one's. */
XENT_API xent_status xent_decode(xent_context* ctx, const xent_token* tokens, int32_t n_tokens,
                                 bool all_logits);
/* Logits [n_vocab] of the last evaluated token; valid until the next decode. */
XENT_API const float* xent_get_logits(xent_context* ctx);
XENT_API const float* xent_get_logits_ith(xent_context* ctx, int32_t i);

/* Several sequences in one evaluation, as llama.cpp's llama_batch: token i belongs to
 * sequence seq_id[i] (0 .. n_seq_max - 1) at position pos[i], which must be that
 * sequence's next position (its tokens in order); logits[i] != 0 keeps its logits for
 * xent_get_logits_ith(ctx, i). The matmuls run once for all tokens; each sequence
 * attends only to its own cells. Sequence 0 is the one xent_decode continues. */
typedef struct xent_batch {
  int32_t n_tokens;
  xent_token* token;
  int32_t* pos;
  int32_t* seq_id;
  int8_t* logits;
} xent_batch;
/* Room for n_tokens_max tokens, n_tokens 0; all pointers NULL on failure. Thread-safe. */
XENT_API xent_batch xent_batch_init(int32_t n_tokens_max);
XENT_API void xent_batch_free(xent_batch batch);
/* On an error (bad sequence id, token or position, a sequence out of cells) nothing
 * is evaluated and the cache is unchanged. */
XENT_API xent_status xent_decode_batch(xent_context* ctx, const xent_batch* batch);
/* Tokens in sequence seq's cells; -1 for a sequence id out of range. */
XENT_API int32_t xent_seq_n_past(const xent_context* ctx, int32_t seq);
/* Keeps a sequence's first n_keep tokens (0: removes it, freeing its cells). */
XENT_API xent_status xent_seq_truncate(xent_context* ctx, int32_t seq, int32_t n_keep);
/* dst becomes a copy of src (a shared prefix evaluated once, forked). */
XENT_API xent_status xent_seq_copy(xent_context* ctx, int32_t src, int32_t dst);

/* Session state: the cache and the tokens it holds, plus an application blob (e.g. the
 * conversation), in one file written atomically (temp file, fsync, rename), versioned
 * and checksummed; loading checks it was saved with the same model. */
XENT_API xent_status xent_state_save(xent_context* ctx, const char* path, const void* app_data,
                                     size_t app_bytes);
/* Restores the cache and copies the application blob into app_data (capacity bytes);
 * *app_bytes receives its size. With a short buffer, returns
 * XENT_ERROR_BUFFER_TOO_SMALL, sets *app_bytes and changes nothing (call with
 * capacity 0 to ask for the size). */
XENT_API xent_status xent_state_load(xent_context* ctx, const char* path, void* app_data,
                                     size_t capacity, size_t* app_bytes);

/* ---- adapters (LoRA) ------------------------------------------------------- */

/* A LoRA adapter: a GGUF file in the layout llama.cpp reads (general.type = adapter,
 * adapter.type = lora, adapter.lora.alpha, "<weight>.lora_a" / ".lora_b" tensors), checked
 * against one model when loaded: the architecture, every target weight and its shapes, and
 * nothing in the file left unapplied. A context it is attached to computes, for each target,
 * W·x + s·B·(A·x) with s = scale · alpha / rank (scale alone when the file has no alpha);
 * the model is not changed, so contexts with different adapters share one model. */
typedef struct xent_lora xent_lora;

/* NULL on failure (see xent_last_error): unreadable file, an adapter for another
 * architecture or base model, unknown tensors or keys. Thread-safe. Free it before the model. */
XENT_API xent_lora* xent_lora_load(const xent_model* model, const char* path);
/* Contexts it is attached to keep what they use: freeing it detaches nothing. */
XENT_API void xent_lora_free(xent_lora* lora);
/* Weights the adapter changes; alpha (0 when the file has none). Thread-safe. */
XENT_API int32_t xent_lora_n_targets(const xent_lora* lora);
XENT_API float xent_lora_alpha(const xent_lora* lora);

/* Applies lora with scale (1: as trained, 0: adds nothing) from the next evaluation on,
 * after those attached before; attaching one that is attached changes its scale. When the
 * set or a scale changes, every sequence's cache is cleared: its rows were computed with
 * the old weights. One thread per handle (the context's). */
XENT_API xent_status xent_context_lora_attach(xent_context* ctx, const xent_lora* lora, float scale);
/* XENT_ERROR_INVALID_ARGUMENT when lora is not attached; clears the cache otherwise. */
XENT_API xent_status xent_context_lora_detach(xent_context* ctx, const xent_lora* lora);
/* Detaches every adapter (clears the cache if there was one). */
XENT_API xent_status xent_context_lora_clear(xent_context* ctx);
/* Adapters attached now. */
XENT_API int32_t xent_context_lora_count(const xent_context* ctx);
/* Makes the attached adapters exactly loras[i] with scales[i] (n of them; n 0: none), and,
 * unlike attach/detach/clear, keeps every sequence's KV cells: the caller answers for
 * evaluating each sequence only under the adapters its cells were computed with (a server
 * whose batch steps each serve the requests of one adapter set). */
XENT_API xent_status xent_context_lora_set(xent_context* ctx, const xent_lora* const* loras, const float* scales,
                                           int32_t n);

/* ---- sampling --------------------------------------------------------------- */

typedef struct xent_sampler_params {
  float temperature; /* default 0.8; <= 0 is greedy */
  int32_t top_k;     /* default 40; <= 0 off */
  float top_p;       /* default 0.95; 1 off */
  float min_p;       /* default 0.05; 0 off */
  float repeat_penalty;    /* default 1.0 (off) */
  float frequency_penalty; /* default 0 */
  float presence_penalty;  /* default 0 */
  int32_t repeat_last_n;   /* default 64 */
  uint64_t seed;
} xent_sampler_params;

/* Thread-safe. */
XENT_API xent_sampler_params xent_sampler_default_params(void);
/* NULL on failure (a bad parameter). Thread-safe. */
XENT_API xent_sampler* xent_sampler_create(const xent_sampler_params* params);
/* Samplers are one thread per handle (the history and the random state change). */
XENT_API void xent_sampler_free(xent_sampler* sampler);
/* Samples from the context's last logits and records the token in the history; -1 on
 * failure. One thread per handle, for the sampler and for the context. */
XENT_API xent_token xent_sampler_sample(xent_sampler* sampler, xent_context* ctx);
/* As xent_sampler_sample, from the logits of batch token i (xent_get_logits_ith): one
 * sampler per sequence of a xent_decode_batch step. */
XENT_API xent_token xent_sampler_sample_ith(xent_sampler* sampler, xent_context* ctx, int32_t i);
XENT_API void xent_sampler_accept(xent_sampler* sampler, xent_token token);
/* Forgets the history and restarts the grammar, if any, from its first rule. */
XENT_API void xent_sampler_reset(xent_sampler* sampler);

/* Structured output. Constrains what the sampler draws to the sentences of a grammar in
 * GBNF, the syntax llama.cpp reads (rules "name ::= ...", alternatives |, groups ( ),
 * repetitions * + ? {m,n}, "literals", [character classes] with ranges and ^, escapes,
 * # comments), starting at rule root ("root" when NULL), over model's vocabulary. The
 * drawn token is checked against the grammar and a rejected one drawn again (for greedy
 * sampling: the next best), which keeps the masked distribution; only after 32 rejections is
 * the whole vocabulary masked (one walk of a token trie). End-of-generation tokens are allowed only
 * when the output is a complete sentence. When no token can continue it,
 * xent_sampler_sample returns -1 and xent_generate returns XENT_ERROR_GRAMMAR, each with
 * xent_last_error() saying why. gbnf NULL removes the grammar. A syntax error, an
 * undefined rule or left recursion is XENT_ERROR_INVALID_ARGUMENT naming the line.
 * One thread per sampler; the model is only read. */
XENT_API xent_status xent_sampler_set_grammar(xent_sampler* sampler, const xent_model* model,
                                              const char* gbnf, const char* root);

typedef enum xent_grammar_state {
  XENT_GRAMMAR_NONE = 0,     /* no grammar set */
  XENT_GRAMMAR_OPEN = 1,     /* the output so far is an unfinished sentence */
  XENT_GRAMMAR_COMPLETE = 2, /* a complete sentence, which may still go on */
  XENT_GRAMMAR_DONE = 3,     /* complete, and nothing may follow */
  XENT_GRAMMAR_DEAD = 4      /* cannot be continued (a rejected token was accepted) */
} xent_grammar_state;
/* Where the accepted tokens leave the sampler's grammar. */
XENT_API xent_grammar_state xent_sampler_grammar_state(const xent_sampler* sampler);

/* GBNF (root rule "root") for the JSON values a JSON Schema admits; NULL with xent_last_error() on an
   unsupported keyword or malformed schema. Free with xent_string_free.
 * The subset: type (one or a list: object, array, string, number, integer, boolean, null),
 * properties, required, additionalProperties (false, true or a schema; without it an object
 * with properties gets only those), items, minItems, maxItems, enum, const, anyOf, oneOf
 * (alternatives that overlap may give a value that matches more than one), allOf of object
 * schemas (merged), $ref to "#", "#/$defs/..." and "#/definitions/...", minLength, maxLength,
 * format date, time, date-time and uuid. Annotations (title, description, default, examples,
 * $schema, $id, $comment, deprecated, readOnly, writeOnly) are ignored; any other keyword
 * (pattern, minimum, ...) is an error naming it and its JSON pointer. Properties come in the
 * schema's order; whitespace between tokens is optional and bounded (one space, or a newline
 * and at most 16 spaces or tabs), so a model cannot loop on it. Thread-safe. */
XENT_API char* xent_json_schema_to_grammar(const char* schema_json);
/* Frees a string the library returned (NULL is fine). */
XENT_API void xent_string_free(char* s);

/* ---- generation ------------------------------------------------------------- */

/* Called for each generated token with its text; return false to stop. */
typedef bool (*xent_token_callback)(xent_token token, const char* piece, int32_t piece_len,
                                    void* user_data);

typedef struct xent_generate_stats {
  int32_t n_prompt;   /* prompt tokens evaluated (not already cached) */
  int32_t n_generated;
  double prompt_ms;
  double generate_ms;
  bool stopped_by_eog;
  int32_t n_forced; /* of n_generated, tokens a grammar forced: emitted without sampling and
                       evaluated in one decode per run of them */
} xent_generate_stats;

/* Tokenizes prompt (add_special, parse_special), evaluates what is not already in the
 * cache, then samples up to n_predict tokens, calling on_token for each, stopping at
 * end-of-generation. stats may be NULL. Where the sampler's grammar admits only one
 * continuation (a JSON key after its first characters, say), that text is emitted as the
 * tokenizer spells it, without sampling, and evaluated in one decode (stats->n_forced).
 * One thread per handle, for the context and for the sampler; the callback runs on the
 * calling thread. */
XENT_API xent_status xent_generate(xent_context* ctx, xent_sampler* sampler, const char* prompt,
                                   int32_t n_predict, xent_token_callback on_token,
                                   void* user_data, xent_generate_stats* stats);

/* ---- chat templates --------------------------------------------------------- */

typedef struct xent_chat_message {
  const char* role; /* "system", "user", "assistant" */
  const char* content;
} xent_chat_message;

/* Renders messages with tmpl (Jinja source; NULL: the model's own template; a name such
 * as "chatml" or "llama3": that built-in). Returns the length needed (excluding NUL)
 * or a negative value on error; writes at most buf_size bytes, NUL-terminated.
 * Thread-safe. */
XENT_API int32_t xent_chat_apply_template(const xent_model* model, const char* tmpl,
                                          const xent_chat_message* messages, size_t n_messages,
                                          bool add_generation_prompt, char* buf, int32_t buf_size);
/* As xent_chat_apply_template, for conversations with tools: messages_json is a JSON array
 * of messages as OpenAI's API writes them ({"role", "content"} plus what the template reads:
 * "tool_calls" on assistant messages, "tool_call_id" and "name" on "tool" messages);
 * variables_json (NULL: none) a JSON object whose members become template variables, e.g.
 * {"tools": [{"type": "function", "function": {...}}]}, in the client's key order. tools
 * and documents are none unless given. Returns the length needed (excluding NUL) or a
 * negative value on error (bad JSON, a template error), xent_last_error() saying why.
 * Thread-safe. */
XENT_API int32_t xent_chat_apply_template_json(const xent_model* model, const char* tmpl,
                                               const char* messages_json, const char* variables_json,
                                               bool add_generation_prompt, char* buf, int32_t buf_size);

/* ---- autocomplete ----------------------------------------------------------- */

/* Word and phrase suggestions while someone types. The text before the last word stays
 * in the context's KV cache between calls, so a keystroke costs only the changed tail;
 * the candidates are expanded together as one token tree per step. */
typedef struct xent_autocomplete xent_autocomplete;

typedef struct xent_autocomplete_params {
  int32_t n_suggestions; /* default 3 */
  int32_t max_words;     /* default 1: finish the word (or give the next one); 2-3: a phrase */
  float min_probability; /* default 0.02: less likely suggestions are dropped */
  int32_t beam_width;    /* default 16: candidates kept per expansion step */
  int32_t max_tokens;    /* default 8: tokens per suggestion, from the start of the last word */
  const char* blocklist; /* words never suggested, separated by commas or newlines; NULL: none */
} xent_autocomplete_params;

typedef struct xent_suggestion {
  const char* text;   /* as shown: "daily", "twice" (the typed part of the word included) */
  const char* insert; /* the bytes to append to the text: " daily", "ce" */
  float probability;
} xent_suggestion;

typedef struct xent_autocomplete_result {
  const xent_suggestion* suggestions; /* most likely first */
  int32_t n_suggestions;
  double ms;                  /* wall time of the call */
  int32_t n_prefix_evaluated; /* context tokens evaluated (not found in the cache) */
  int32_t n_prefix_reused;    /* context tokens found in the cache */
  int32_t n_tree_evaluated;   /* candidate-tree tokens evaluated */
  int32_t n_steps;            /* tree evaluations */
  int32_t n_tree_reused;      /* tree nodes expanded from an earlier keystroke's evaluation */
} xent_autocomplete_result;

/* Thread-safe. */
XENT_API xent_autocomplete_params xent_autocomplete_default_params(void);
/* Uses ctx (borrowed: free the autocomplete first) for its cache; ctx may still be used
 * for other calls in between, at the cost of re-evaluating what they changed, but not
 * while a xent_autocomplete_run on it is in flight. One thread per context. */
XENT_API xent_autocomplete* xent_autocomplete_create(xent_context* ctx);
/* No call on the handle may be in flight. */
XENT_API void xent_autocomplete_free(xent_autocomplete* ac);
/* Suggestions for what follows text (text_len bytes). *result must be freed with
 * xent_autocomplete_result_free. Calls on one handle from several threads are serialised;
 * a call still waiting or running when a newer one starts returns XENT_ERROR_CANCELLED
 * (and *result NULL), so a stale keystroke never delays the current one. */
XENT_API xent_status xent_autocomplete_run(xent_autocomplete* ac, const char* text, int32_t text_len,
                                           const xent_autocomplete_params* params,
                                           xent_autocomplete_result** result);
/* Makes the call in flight, if any, return XENT_ERROR_CANCELLED. Thread-safe. */
XENT_API void xent_autocomplete_cancel(xent_autocomplete* ac);
/* Thread-safe (each result is owned by its caller). */
XENT_API void xent_autocomplete_result_free(xent_autocomplete_result* result);

#ifdef __cplusplus
}
#endif

#endif /* XENT_H */
