// `xent serve`: an OpenAI-compatible HTTP server (completions, chat, models, health), the
// autocomplete endpoint and its web page. This file: routes, auth, limits, start/stop.
#include <httplib.h>
#include <signal.h>

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "commands.h"
#include "serve-http.h"
#include "serve.h"
#include "web-index.h"

namespace xent::app::serve {
namespace {

const char* kJson = "application/json";

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_error(httplib::Response& res, int status, const std::string& message, const std::string& type,
                const std::string& code = "") {
  res.status = status;
  res.set_content(dump(error_body(message, type, code)), kJson);
}

// Compares without an early exit, so the time taken does not reveal the key.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
  return diff == 0 && !b.empty();
}

std::string file_stem(const std::string& path) {
  std::string name = path.substr(path.find_last_of('/') + 1);
  if (name.size() > 5 && name.compare(name.size() - 5, 5, ".gguf") == 0) name.resize(name.size() - 5);
  return name;
}

// Raises the soft limit on open files to hold max_connections sockets and a margin for the
// model files and the listening socket; false (with an error) when the hard limit is lower.
bool reserve_descriptors(int max_connections) {
  const rlim_t need = static_cast<rlim_t>(max_connections) + 64;
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= need) return true;
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < need) {
    print_error("serve", "--max-connections " + std::to_string(max_connections) + " needs " + std::to_string(need) +
                             " open files; the limit is " + std::to_string(lim.rlim_max) + " (ulimit -n)");
    return false;
  }
  lim.rlim_cur = need;
  if (setrlimit(RLIMIT_NOFILE, &lim) == 0) return true;
  print_error("serve", std::string("cannot raise the open-file limit for --max-connections: ") + std::strerror(errno));
  return false;
}

class Server {
 public:
  Server(const Options& o, xent_model* model, Engine& engine, SlotPool& pool) : o_(o), engine_(engine), pool_(pool) {
    info_.model = model;
    info_.model_id = o.alias.empty() ? file_stem(o.model.model_path) : o.alias;
    info_.max_tokens_limit = o.max_tokens_limit;
    info_.chat_template = o.chat_template;
  }
  void set_n_ctx(int32_t n) { info_.n_ctx = n; }
  void set_n_lora(int n) { info_.n_lora = n; }
  HttpServer& http() { return http_; }
  void install();

 private:
  // Parses the body as a JSON object; throws ApiError 400 otherwise.
  static json body_object(const httplib::Request& req) {
    json body;
    try {
      body = json::parse(req.body);
    } catch (const json::exception& e) {
      throw bad_request(std::string("the body is not valid JSON: ") + e.what());
    }
    if (!body.is_object()) throw bad_request("the body must be a JSON object");
    return body;
  }
  // Runs a handler, turning every failure into a JSON error response.
  template <typename Fn>
  static void guarded(httplib::Response& res, Fn fn) {
    try {
      fn();
    } catch (const ApiError& e) {
      send_error(res, e.status, e.what(), e.type, e.code);
    } catch (const std::exception& e) {
      send_error(res, 500, std::string("internal error: ") + e.what(), "server_error");
    }
  }
  void generation(const httplib::Request& req, httplib::Response& res, bool chat);
  void autocomplete(const httplib::Request& req, httplib::Response& res);

  const Options& o_;
  Engine& engine_;
  SlotPool& pool_;
  ServerInfo info_;
  HttpServer http_;
};

void Server::install() {
  http_.set_payload_max_length(o_.max_body_bytes);
  http_.set_read_timeout(o_.io_timeout_s, 0);
  http_.set_write_timeout(o_.io_timeout_s, 0);
  http_.set_header_timeout(o_.io_timeout_s);
  http_.set_keep_alive_timeout(10);
  // A thread per open connection, so one under the cap is never queued behind idle ones;
  // the cap bounds the descriptors and threads a flood of idle sockets can hold.
  http_.set_max_connections(static_cast<size_t>(o_.max_connections),
                            dump(error_body("too many open connections (--max-connections " +
                                                std::to_string(o_.max_connections) + "); try again later",
                                            "server_busy", "too_many_connections")));

  // Every endpoint needs the key, except the page itself: a browser cannot send a header
  // when it opens a URL, and the page holds no data (it asks for the key).
  http_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (o_.api_key.empty() || (req.method == "GET" && (req.path == "/" || req.path == "/index.html")))
      return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    if (auth.compare(0, prefix.size(), prefix) == 0 && same_secret(auth.substr(prefix.size()), o_.api_key))
      return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, 401, "invalid or missing API key (send 'Authorization: Bearer <key>')",
               "authentication_error", "invalid_api_key");
    return httplib::Server::HandlerResponse::Handled;
  });
  // Statuses httplib sets by itself (unknown path, body too large, bad request line)
  // still get a JSON body.
  http_.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404) send_error(res, 404, "no endpoint " + req.method + " " + req.path, "not_found_error");
    else if (res.status == 413) send_error(res, 413, "the request body is too large", "invalid_request_error");
    else send_error(res, res.status, "HTTP error " + std::to_string(res.status), "invalid_request_error");
  });
  http_.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    send_error(res, 500, "internal error", "server_error");
  });

  http_.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kWebIndexHtml, "text/html; charset=utf-8");
  });
  http_.Get("/index.html", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kWebIndexHtml, "text/html; charset=utf-8");
  });
  http_.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    const json j = {{"status", "ok"},
                    {"slots", engine_.n_slots()},
                    {"slots_busy", engine_.n_busy()},
                    {"requests_waiting", engine_.n_waiting()},
                    {"n_ctx_slot", engine_.n_ctx_slot()},
                    {"batch_steps", engine_.n_steps()},
                    {"autocomplete_busy", pool_.n_busy()},
                    {"autocomplete_waiting", pool_.n_waiting()},
                    {"connections", http_.n_connections()}};
    res.set_content(dump(j), kJson);
  });
  // As llama-server: the adapters loaded at start, by id, with the scale a request gets
  // when it names none ("lora": [{"id": 0, "scale": 0.5}] picks per request).
  http_.Get("/lora-adapters", [this](const httplib::Request&, httplib::Response& res) {
    json list = json::array();
    const auto& loras = engine_.loras();
    for (size_t i = 0; i < loras.size(); ++i)
      list.push_back({{"id", i}, {"path", loras[i].first}, {"scale", loras[i].second}});
    res.set_content(dump(list), kJson);
  });
  http_.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    const json model = {{"id", info_.model_id},
                        {"object", "model"},
                        {"created", 0},
                        {"owned_by", "local"},
                        {"meta",
                         {{"description", xent_model_description(info_.model)},
                          {"n_params", xent_model_n_params(info_.model)},
                          {"n_ctx", info_.n_ctx},
                          {"n_ctx_train", xent_model_n_ctx_train(info_.model)}}}};
    res.set_content(dump(json{{"object", "list"}, {"data", json::array({model})}}), kJson);
  });
  http_.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] { generation(req, res, false); });
  });
  http_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] { generation(req, res, true); });
  });
  http_.Post("/v1/autocomplete", [this](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] { autocomplete(req, res); });
  });
}

void Server::generation(const httplib::Request& http_req, httplib::Response& res, bool chat) {
  const json body = body_object(http_req);
  auto req = std::make_shared<GenerationRequest>(chat ? parse_chat_request(body, info_)
                                                      : parse_completion_request(body, info_));
  const std::string id = new_request_id(chat);
  // The request waits for its slot before the answer starts, so a full queue or a queue
  // timeout is a plain 503 and not an error in the middle of a stream.
  std::shared_ptr<Job> job = engine_.submit(req);
  struct CancelOnExit {  // a handler that ends early (an exception) releases the slot
    std::shared_ptr<Job> job;
    ~CancelOnExit() { job->cancelled = true; }
  };
  try {
    job->wait_started();
  } catch (...) {
    job->cancelled = true;
    throw;
  }
  if (!req->stream) {
    CancelOnExit guard{job};
    const GenerationResult r = job->wait_result();
    res.set_content(dump(completion_response(*req, r, info_, id)), kJson);
    return;
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, req, job, id](size_t, httplib::DataSink& sink) {
        auto send = [&sink](const json& j) {
          const std::string line = "data: " + dump(j) + "\n\n";
          return sink.write(line.data(), line.size());
        };
        bool first = true;
        auto send_text = [&](const std::string& text) {
          if (text.empty()) return true;
          if (!send(stream_chunk(*req, text, nullptr, info_, id, first))) return false;
          first = false;
          return true;
        };
        // With tools, text that may be a call waits until the reply is complete.
        std::unique_ptr<ToolCallGate> tools;
        if (req->parse_tools) tools = std::make_unique<ToolCallGate>(req->tool_syntax);
        try {
          std::string delta;
          while (job->next_text(&delta)) {
            if (!send_text(tools ? tools->push(delta) : delta)) {
              job->cancelled = true;  // the client went away: the engine frees the slot
              sink.done();
              return false;
            }
            delta.clear();
          }
          GenerationResult r = job->wait_result();
          if (tools) {
            const ChatReply reply = parse_tool_calls(req->tool_syntax, tools->text(), req->tool_names);
            if (reply.has_content && tools->n_sent() < reply.content.size())
              send_text(reply.content.substr(tools->n_sent()));
            if (!reply.calls.empty()) {
              send(tool_calls_chunk(reply.calls, info_, id, first));
              first = false;
              r.finish_reason = "tool_calls";
            }
          }
          json last = stream_chunk(*req, "", &r.finish_reason, info_, id, first);
          last["timings"] = timings_json(r);
          send(last);
          if (req->include_usage) {
            json u = stream_chunk(*req, "", nullptr, info_, id, false);
            u["choices"] = json::array();
            u["usage"] = usage_json(r);
            send(u);
          }
        } catch (const ApiError& e) {
          send(error_body(e.what(), e.type, e.code));
        } catch (const std::exception& e) {
          send(error_body(std::string("internal error: ") + e.what(), "server_error"));
        }
        const std::string done = "data: [DONE]\n\n";
        sink.write(done.data(), done.size());
        sink.done();
        return true;
      },
      [job](bool) { job->cancelled = true; });  // done or dropped: nothing more to send
}

void Server::autocomplete(const httplib::Request& http_req, httplib::Response& res) {
  const auto t0 = std::chrono::steady_clock::now();
  AutocompleteRequest req = parse_autocomplete_request(body_object(http_req));
  if (!req.blocklist.empty()) req.params.blocklist = req.blocklist.c_str();
  const uint64_t seq = pool_.session_begin(req.session);
  auto cancelled = [&] {
    res.set_content(dump(json{{"cancelled", true}, {"suggestions", json::array()}}), kJson);
  };
  std::unique_ptr<SlotPool::Lease> lease = pool_.acquire(req.text, std::chrono::seconds(o_.queue_timeout_s));
  if (!pool_.session_current(req.session, seq)) return cancelled();
  pool_.session_running(lease->slot(), req.session);
  const double queue_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  lease->slot().cached_text = req.text;
  xent_autocomplete_result* r = nullptr;
  const xent_status s = xent_autocomplete_run(lease->slot().ac, req.text.data(), static_cast<int32_t>(req.text.size()),
                                              &req.params, &r);
  if (s == XENT_ERROR_CANCELLED) return cancelled();
  if (s != XENT_OK) {
    if (s == XENT_ERROR_INVALID_ARGUMENT) throw bad_request(xent_last_error());
    throw ApiError(500, "server_error", std::string("autocomplete failed: ") + xent_last_error());
  }
  std::unique_ptr<xent_autocomplete_result, decltype(&xent_autocomplete_result_free)> guard(
      r, xent_autocomplete_result_free);
  json list = json::array();
  for (int32_t i = 0; i < r->n_suggestions; ++i)
    list.push_back({{"text", r->suggestions[i].text},
                    {"insert", r->suggestions[i].insert},
                    {"p", static_cast<double>(r->suggestions[i].probability)}});
  const json j = {{"cancelled", false},
                  {"suggestions", list},
                  {"timing",
                   {{"ms", r->ms},
                    {"queue_ms", queue_ms},
                    {"n_prefix_evaluated", r->n_prefix_evaluated},
                    {"n_prefix_reused", r->n_prefix_reused},
                    {"n_tree_evaluated", r->n_tree_evaluated},
                    {"n_steps", r->n_steps},
                    {"n_tree_reused", r->n_tree_reused}}}};
  res.set_content(dump(j), kJson);
}

int run_server(const Options& o) {
  if (o.parallel < 1 || o.max_queue < 0) {
    print_error("serve", "--parallel must be at least 1");
    return 1;
  }
  // SIGINT/SIGTERM stop the server from a thread of its own (httplib's stop() is not
  // async-signal-safe); block them before any other thread
  // starts (the engine's scheduler, the compute threads).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  Options opts = o;
  if (opts.max_connections == 0) opts.max_connections = o.parallel + o.max_queue + 64;
  if (!reserve_descriptors(opts.max_connections)) return 1;
  if (!o.chat_template_file.empty() && !read_file(o.chat_template_file, &opts.chat_template)) return 1;
  xent_model* model = load_model(o.model);
  if (!model) return 1;
  std::unique_ptr<xent_model, decltype(&xent_model_free)> model_guard(model, xent_model_free);
  std::unique_ptr<Engine> engine;
  std::unique_ptr<SlotPool> pool;
  try {
    engine = std::make_unique<Engine>(model, o.model, o.parallel, o.max_queue, o.queue_timeout_s, o.max_request_s);
    pool = std::make_unique<SlotPool>(model, o.model, o.parallel, o.max_queue);
  } catch (const std::exception& e) {
    print_error("serve", e.what());
    return 1;
  }
  // A template that cannot render a plain turn is refused now, not at the first request.
  if (!opts.chat_template.empty()) {
    const xent_chat_message probe = {"user", "hi"};
    if (xent_chat_apply_template(model, opts.chat_template.c_str(), &probe, 1, true, nullptr, 0) < 0) {
      print_error("serve", std::string("--chat-template: ") + xent_last_error());
      return 1;
    }
  }
  Server server(opts, model, *engine, *pool);
  server.set_n_ctx(engine->n_ctx_slot());
  server.set_n_lora(static_cast<int>(engine->loras().size()));
  std::fprintf(stderr, "xent serve: KV cache %d cells = %d slot(s) x %d, %.1f MiB\n",
               engine->n_ctx_slot() * o.parallel, o.parallel, engine->n_ctx_slot(),
               static_cast<double>(engine->kv_bytes()) / (1024.0 * 1024.0));
  server.install();

  const int port = o.port == 0 ? server.http().bind_to_any_port(o.host)
                               : (server.http().bind_to_port(o.host, o.port) ? o.port : -1);
  if (port <= 0) {
    print_error("serve", "cannot listen on " + o.host + ":" + std::to_string(o.port) + " (in use, or not an address here)");
    return 1;
  }
  if (!server.http().widen_backlog()) {
    print_error("serve", std::string("cannot widen the listen backlog: ") + std::strerror(errno));
    return 1;
  }
  std::atomic<bool> signalled{false};
  std::thread stopper([&server, &signalled, stop_signals] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    signalled = true;
    server.http().stop();
  });
  if (o.host != "127.0.0.1" && o.host != "::1" && o.host != "localhost" && o.api_key.empty())
    std::fprintf(stderr, "xent serve: warning: listening on %s without --api-key\n", o.host.c_str());
  std::fprintf(stderr, "xent serve: %s, %d slot(s), listening on http://%s:%d\n", xent_model_description(model),
               o.parallel, o.host.c_str(), port);
  std::fflush(stderr);
  const bool ok = server.http().listen_after_bind();
  if (!signalled) kill(getpid(), SIGTERM);  // listening ended by itself: release the stopper
  stopper.join();
  std::fprintf(stderr, "xent serve: stopped\n");
  return ok || signalled ? 0 : 1;
}

}  // namespace
}  // namespace xent::app::serve

namespace xent::app {

void add_serve_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<serve::Options>();
  CLI::App* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server with autocomplete and a web page");
  add_model_options(*cmd, o->model);
  cmd->add_option("--host", o->host, "address to listen on (default: loopback only)");
  cmd->add_option("--port", o->port, "port (0: any free port)")->check(CLI::Range(0, 65535));
  cmd->add_option("--api-key", o->api_key, "require 'Authorization: Bearer KEY' on every request");
  cmd->add_option("--parallel,--np", o->parallel,
                  "slots: requests decoded together in one batch per step; --ctx-size is shared among them "
                  "(-np works too)")->check(CLI::Range(1, 64));
  cmd->add_option("--max-queue", o->max_queue, "requests that may wait for a slot")->check(CLI::Range(0, 4096));
  cmd->add_option("--max-connections", o->max_connections,
                  "open client connections at once, a thread each; one more is answered 503 at once "
                  "(default: parallel + max-queue + 64)")
      ->check(CLI::Range(1, 8192));
  cmd->add_option("--max-body", o->max_body_bytes, "largest request body in bytes")->check(CLI::Range(1024, 1 << 28));
  cmd->add_option("--max-tokens", o->max_tokens_limit, "largest max_tokens a request may ask for")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--timeout,--to", o->io_timeout_s, "seconds a client may stay silent while sending or reading (-to works too)")
      ->check(CLI::Range(1, 3600));
  cmd->add_option("--queue-timeout", o->queue_timeout_s, "seconds a request may wait for a slot (then 503)")
      ->check(CLI::Range(0, 3600));
  cmd->add_option("--max-request-time", o->max_request_s,
                  "seconds of generation a request may take; then it ends with finish_reason \"length\"")
      ->check(CLI::Range(0.001, 86400.0));
  cmd->add_option("--alias", o->alias, "model id shown in /v1/models (default: the file name)");
  cmd->add_option("--chat-template", o->chat_template,
                  "chat template: a built-in's name (chatml, llama3, ...) or Jinja source (default: the model's)");
  cmd->add_option("--chat-template-file", o->chat_template_file, "chat template: a Jinja file")
      ->excludes(cmd->get_option("--chat-template"));
  cmd->callback([o, &exit_code] { exit_code = serve::run_server(*o); });
}

}  // namespace xent::app
