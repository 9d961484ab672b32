// `xent serve`, shared between its files: serve.cpp (HTTP routes, auth, limits),
// serve-openai.cpp (request validation, response JSON), serve-engine.cpp (the batching
// scheduler), serve-slots.cpp (autocomplete contexts).
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common.h"

namespace xent::app::serve {

// Ordered: a client's key order survives into what the model sees (tool schemas in the
// chat template, properties in a schema's grammar), as Python's dicts keep it.
using json = nlohmann::ordered_json;

struct Options {
  ModelOptions model;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string api_key;
  int parallel = 1;               // slots: requests evaluated at the same time
  int max_queue = 16;             // requests waiting for a slot beyond that: 503
  int max_connections = 0;        // open client connections beyond that: 503 (0: parallel + max_queue + 64)
  size_t max_body_bytes = 1 << 20;
  int max_tokens_limit = 2048;    // the largest max_tokens a request may ask for
  int queue_timeout_s = 120;      // a request waits this long for a slot at most
  int io_timeout_s = 30;          // a client that sends or reads nothing for this long is dropped
  double max_request_s = 600;     // a generation ends ("length") after this much time in a slot
  std::string alias;              // the model id in /v1/models (default: the file name)
  std::string chat_template;      // a built-in's name or Jinja source (default: the model's)
  std::string chat_template_file;
};

// A client mistake or a refusal, reported as {"error": {"message", "type", "code"}}.
struct ApiError : std::runtime_error {
  int status;
  std::string type, code;
  ApiError(int status_, std::string type_, const std::string& message, std::string code_ = "")
      : std::runtime_error(message), status(status_), type(std::move(type_)), code(std::move(code_)) {}
};
json error_body(const std::string& message, const std::string& type, const std::string& code = "");
ApiError bad_request(const std::string& message, const std::string& code = "");

// ---- requests (serve-openai.cpp) ----------------------------------------------------

struct ServerInfo {
  xent_model* model = nullptr;
  std::string model_id;
  int32_t n_ctx = 0;
  int max_tokens_limit = 2048;
  std::string chat_template;  // --chat-template(-file); empty: the model's own
  int n_lora = 0;             // adapters loaded with --lora / --lora-scaled (ids 0..n_lora-1)
};

// ---- tools and structured output (serve-tools.cpp) --------------------------------

// How a chat template's model writes a tool call:
//   hermes   <tool_call>{"name": ..., "arguments": {...}}</tool_call> (Qwen2.5, Qwen3, ChatML)
//   llama3   {"name": ..., "parameters": {...}}, maybe after <|python_tag|> (Llama 3.1-3.3)
//   mistral  [TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]
enum class ToolSyntax { hermes, llama3, mistral };
// From the template's marker tokens; a template that names none (plain ChatML) gets hermes.
ToolSyntax tool_syntax_of(const std::string& template_source);
const char* tool_syntax_name(ToolSyntax s);

struct ToolCall {
  std::string id;         // "call_..."
  std::string name;
  std::string arguments;  // a JSON object's text
};

// What a chat reply holds once tool calls are taken out of its text.
struct ChatReply {
  bool has_content = false;  // false: content is null (only calls, or nothing but whitespace)
  std::string content;       // the text before the first call (all of it when there is none)
  std::vector<ToolCall> calls;
};

// Finds the calls `syntax` writes in text; only calls of a tool in `names` with a JSON
// object for arguments count. Text that is not a complete, well-formed call is content.
ChatReply parse_tool_calls(ToolSyntax syntax, const std::string& text, const std::vector<std::string>& names);

// For streaming: hands on the text that is surely content and holds back what may be the
// start of a call, until parse_tool_calls decides at the end.
class ToolCallGate {
 public:
  explicit ToolCallGate(ToolSyntax syntax) : syntax_(syntax) {}
  std::string push(const std::string& delta);  // content that may be sent now
  const std::string& text() const { return text_; }
  size_t n_sent() const { return sent_; }

 private:
  ToolSyntax syntax_;
  std::string text_;   // everything generated
  size_t sent_ = 0;    // bytes of it sent as content
  bool held_ = false;  // a call has (maybe) begun: nothing more is sent
};

// A tool the request offers: its name and the JSON schema of its parameters.
struct Tool {
  std::string name;
  json parameters;
};

// GBNF (xent_json_schema_to_grammar for each tool's parameters) for output that is one call
// (or, parallel, one or more) of `tools` in `syntax`'s form. Throws ApiError 400 naming the
// tool whose schema cannot be converted.
std::string tool_call_grammar(ToolSyntax syntax, const std::vector<Tool>& tools, bool parallel);
// The calls as the model writes them, for assistant messages in the history and templates
// that do not read `tools` (then the system message describes the tools: tools_system_text).
std::string tool_calls_text(ToolSyntax syntax, const json& tool_calls);
std::string tools_system_text(ToolSyntax syntax, const json& tools);

// GBNF from a JSON schema (xent_json_schema_to_grammar); throws ApiError 400 with the
// converter's reason, prefixed by `what` ("response_format.json_schema.schema").
std::string schema_grammar(const json& schema, const std::string& what);
// Renames every rule of a GBNF grammar to prefix + name, so several grammars can share one.
std::string prefix_grammar_rules(const std::string& gbnf, const std::string& prefix);
std::string new_tool_call_id();

struct GenerationRequest {
  std::string prompt;       // the full text given to the model (the chat template applied)
  int32_t n_prompt = 0;     // its tokens
  int max_tokens = 0;
  xent_sampler_params sampling{};
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool chat = false;
  // Structured output: GBNF the output must follow (empty: none), set on the job's sampler
  // when it gets a slot, and where it came from, for errors and the log.
  std::string grammar;
  std::string grammar_source;
  // Tools: when parse_tools, the reply's text is searched for calls of tool_names.
  bool parse_tools = false;
  ToolSyntax tool_syntax = ToolSyntax::hermes;
  std::vector<std::string> tool_names;
  bool render_special = false;  // control tokens in the text (<|python_tag|>, [TOOL_CALLS])
  // llama-server's "lora": [{"id", "scale"}]: a scale per loaded adapter, those not named 0.
  // Empty: the scales given on the command line.
  std::vector<float> lora;
};

struct AutocompleteRequest {
  std::string text;
  std::string session;  // requests of one session cancel that session's older ones
  xent_autocomplete_params params{};
  std::string blocklist;  // params.blocklist points here
};

// Throw ApiError on wrong types, out-of-range values, an unknown model, a prompt that
// does not fit the context.
GenerationRequest parse_completion_request(const json& body, const ServerInfo& info);
GenerationRequest parse_chat_request(const json& body, const ServerInfo& info);
AutocompleteRequest parse_autocomplete_request(const json& body);

// ---- what a generation produced (serve-engine.cpp) --------------------------------

struct GenerationResult {
  std::string text;
  // "stop" (end token, stop string, a grammar completed or unable to go on) or "length"
  std::string finish_reason = "stop";
  int32_t n_prompt = 0, n_completion = 0;
  int32_t n_cached = 0;  // prompt tokens found in the cache
  double prompt_ms = 0, generate_ms = 0;
};

// ---- responses (serve-openai.cpp) --------------------------------------------------

json completion_response(const GenerationRequest& req, const GenerationResult& r, const ServerInfo& info,
                         const std::string& id);
// One streamed chunk: delta text, or the last one (finish_reason set, text empty).
json stream_chunk(const GenerationRequest& req, const std::string& delta, const std::string* finish_reason,
                  const ServerInfo& info, const std::string& id, bool first);
// The chunk with a reply's tool calls, all of each call in one delta.
json tool_calls_chunk(const std::vector<ToolCall>& calls, const ServerInfo& info, const std::string& id, bool first);
json tool_calls_json(const std::vector<ToolCall>& calls, bool with_index);
json usage_json(const GenerationResult& r);
json timings_json(const GenerationResult& r);
std::string new_request_id(bool chat);

// ---- the batching engine (serve-engine.cpp) ---------------------------------------

// One generation request in the engine. The HTTP thread creates it and reads its text;
// the engine's scheduler thread fills it.
struct Job {
  std::shared_ptr<const GenerationRequest> req;
  std::vector<xent_token> prompt;          // req->prompt tokenized
  std::atomic<bool> cancelled{false};      // set by the HTTP thread: the client is gone

  // Blocks until the job has a slot (returns) or failed before it got one (throws the
  // ApiError: queue timeout, a prompt that cannot fit).
  void wait_started();
  // Blocks until there is final text (appended to *out, true) or the job is over (false).
  // Throws the job's ApiError if it failed.
  bool next_text(std::string* out);
  // Blocks until the job is over; throws its ApiError if it failed.
  GenerationResult wait_result();

  // ---- scheduler side ----
  void start();
  void emit(const std::string& text);
  void finish(GenerationResult r);
  void fail(const ApiError& e);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false, done_ = false;
  std::string text_;
  GenerationResult result_;
  std::unique_ptr<ApiError> error_;
};

// Continuous batching on one context: n_slots sequences share one KV cache (each gets
// n_ctx / n_slots cells) and every step evaluates one batch that holds the next token of
// every generating slot and a chunk of at most the remaining batch of the prompts being
// read. New requests are admitted between steps; a slot keeps its cells after a request
// so that the next one with the same prefix (note, system prompt) skips it, and a prefix
// held by another slot is copied instead of recomputed.
class Engine {
 public:
  // Throws std::runtime_error when the context cannot be created.
  Engine(xent_model* model, const ModelOptions& o, int n_slots, int max_queue, int queue_timeout_s,
         double max_request_s);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Tokenizes and queues a request. Throws ApiError 503 when the queue is full, 400 when
  // the prompt does not fit a slot.
  std::shared_ptr<Job> submit(std::shared_ptr<const GenerationRequest> req);

  int n_slots() const { return n_slots_; }
  int32_t n_ctx_slot() const { return n_ctx_slot_; }
  uint64_t kv_bytes() const;
  int n_busy() const { return n_busy_.load(); }
  int n_waiting();
  uint64_t n_steps() const { return n_steps_.load(); }
  // The adapters loaded with --lora / --lora-scaled: path and the scale requests get by default.
  const std::vector<std::pair<std::string, float>>& loras() const { return lora_list_; }

 private:
  struct Slot;
  void loop();
  void admit(const std::shared_ptr<Job>& job, Slot& slot);
  void end_slot(Slot& slot, bool keep_cells);
  bool use_lora(const std::vector<float>& scales);
  std::vector<float> lora_of(const Job& job) const;

  xent_model* model_;
  xent_context* ctx_ = nullptr;
  int n_slots_ = 0, max_queue_ = 0, queue_timeout_s_ = 0;
  double max_request_s_ = 0;
  int32_t n_ctx_slot_ = 0, n_batch_ = 512;
  std::vector<std::unique_ptr<Slot>> slots_;
  // Adapters are attached to the one context per step: a step serves the slots of one set of
  // scales, and a sequence's cells are reused only by requests with the same scales.
  std::vector<std::pair<std::string, float>> lora_list_;
  std::vector<xent_lora*> loras_;
  std::vector<float> lora_active_;

  std::mutex mu_;
  std::condition_variable wake_;
  struct Waiting {
    std::shared_ptr<Job> job;
    std::chrono::steady_clock::time_point since;
  };
  std::vector<Waiting> queue_;
  bool stop_ = false;
  std::atomic<int> n_busy_{0};
  std::atomic<uint64_t> n_steps_{0};
  std::thread thread_;
};

// ---- autocomplete contexts (serve-slots.cpp) --------------------------------------

// Autocomplete evaluates a tree of candidate tokens per step on a context of its own;
// these are made when the first autocomplete request needs one.
struct Slot {
  int id = 0;
  xent_context* ctx = nullptr;
  xent_autocomplete* ac = nullptr;
  std::string cached_text;     // the text the cache was last filled from
  bool busy = false;
  std::string session;         // the autocomplete session running here, if any
};

class SlotPool {
 public:
  SlotPool(xent_model* model, const ModelOptions& o, int n_slots, int max_queue);
  ~SlotPool();
  SlotPool(const SlotPool&) = delete;
  SlotPool& operator=(const SlotPool&) = delete;

  // A slot held until the lease is destroyed.
  class Lease {
   public:
    Lease(SlotPool* pool, Slot* slot) : pool_(pool), slot_(slot) {}
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Slot& slot() { return *slot_; }

   private:
    SlotPool* pool_;
    Slot* slot_;
  };
  // Waits for a free slot, preferring the one whose cache holds the longest prefix of
  // `text`, and creates its context on first use. Throws ApiError 503 when the queue is
  // full or the wait times out, 500 when a context cannot be created.
  std::unique_ptr<Lease> acquire(const std::string& text, std::chrono::milliseconds timeout);

  // Autocomplete sessions: begin() returns this request's number and cancels the
  // session's run in flight; current() says whether a newer request came since.
  uint64_t session_begin(const std::string& session);
  bool session_current(const std::string& session, uint64_t seq);
  void session_running(Slot& slot, const std::string& session);

  int n_slots() const { return static_cast<int>(slots_.size()); }
  int n_busy();
  int n_waiting();

 private:
  void release(Slot* slot);
  xent_model* model_;
  ModelOptions options_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::mutex mutex_;
  std::condition_variable freed_;
  int waiting_ = 0;
  int max_queue_ = 0;
  std::map<std::string, uint64_t> sessions_;
  uint64_t session_seq_ = 0;
};

}  // namespace xent::app::serve
