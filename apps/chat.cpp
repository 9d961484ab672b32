// `xent chat`: talk to a model with its own chat template. Each turn evaluates only the
// new text (the earlier turns stay in the KV cache); when the context would overflow,
// the oldest turns are dropped (the system prompt stays) and the rest re-evaluated.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "common.h"

namespace xent::app {
namespace {

struct ChatOptions {
  ModelOptions model;
  SamplingOptions sampling;
  GrammarOptions grammar;
  std::string gbnf;  // from the grammar options: every reply follows it
  std::string system;
  std::string prompt_file;
  std::string chat_template;
  std::string messages_file;
  bool print_prompt = false;
  int n_predict = 512;
};

struct Message {
  std::string role, content;
};

std::atomic<bool> g_interrupted{false};
void on_sigint(int) { g_interrupted = true; }

class ChatSession {
 public:
  ChatSession(xent_model* model, xent_context* ctx, xent_sampler* sampler, const ChatOptions& o)
      : model_(model), ctx_(ctx), sampler_(sampler), o_(o) {
    if (!o.system.empty()) messages_.push_back({"system", o.system});
  }

  // Renders messages_ with the template; false (and a message) on error.
  bool render(bool add_generation_prompt, std::string* out) const {
    std::vector<xent_chat_message> msgs;
    for (const Message& m : messages_) msgs.push_back({m.role.c_str(), m.content.c_str()});
    const char* tmpl = o_.chat_template.empty() ? nullptr : o_.chat_template.c_str();
    int32_t n = xent_chat_apply_template(model_, tmpl, msgs.data(), msgs.size(), add_generation_prompt, nullptr, 0);
    if (n < 0) {
      print_error("chat", std::string("cannot render the chat template: ") + xent_last_error());
      return false;
    }
    std::string s(static_cast<size_t>(n) + 1, '\0');
    xent_chat_apply_template(model_, tmpl, msgs.data(), msgs.size(), add_generation_prompt, s.data(),
                             static_cast<int32_t>(s.size()));
    s.resize(static_cast<size_t>(n));
    *out = s;
    return true;
  }

  std::vector<xent_token> tokenize(const std::string& text, bool add_special) const {
    int32_t n = xent_tokenize(model_, text.data(), static_cast<int32_t>(text.size()), nullptr, 0, add_special, true);
    std::vector<xent_token> ids(static_cast<size_t>(n < 0 ? -n : n));
    xent_tokenize(model_, text.data(), static_cast<int32_t>(text.size()), ids.data(),
                  static_cast<int32_t>(ids.size()), add_special, true);
    return ids;
  }

  // Adds a user message and streams the reply to stdout. Returns false on a fatal error.
  bool turn(const std::string& user_text) {
    messages_.push_back({"user", user_text});
    std::string full;
    if (!render(true, &full)) {
      messages_.pop_back();
      return false;
    }
    // What the cache holds is evaluated_text_; only the rest is new.
    std::vector<xent_token> new_tokens;
    if (!evaluated_text_.empty() && full.compare(0, evaluated_text_.size(), evaluated_text_) == 0) {
      new_tokens = tokenize(full.substr(evaluated_text_.size()), false);
    } else {
      xent_context_truncate(ctx_, 0);
      new_tokens = tokenize(full, true);
    }
    const int32_t reserve = std::min<int32_t>(o_.n_predict, xent_context_n_ctx(ctx_) / 4);
    while (xent_context_n_past(ctx_) + static_cast<int32_t>(new_tokens.size()) + reserve > xent_context_n_ctx(ctx_)) {
      if (!drop_oldest_turn()) {
        print_error("chat", "the message does not fit the context of " + std::to_string(xent_context_n_ctx(ctx_)) +
                                " tokens even without earlier turns; use a larger --ctx-size");
        messages_.pop_back();
        return true;
      }
      if (!render(true, &full)) return false;
      xent_context_truncate(ctx_, 0);
      new_tokens = tokenize(full, true);
      std::fprintf(stderr, "[context full: dropped the oldest turn, re-evaluating %zu tokens]\n", new_tokens.size());
    }
    last_prompt_tokens_ = static_cast<int32_t>(new_tokens.size());
    if (xent_decode(ctx_, new_tokens.data(), static_cast<int32_t>(new_tokens.size()), false) != XENT_OK) {
      print_error("chat", xent_last_error());
      return false;
    }
    evaluated_text_ = full;

    std::string reply, pending;
    g_interrupted = false;
    // Each reply is one sentence of the grammar, from its start.
    if (!o_.gbnf.empty() && !set_grammar("chat", sampler_, model_, o_.gbnf)) return false;
    for (int i = 0; i < o_.n_predict && !g_interrupted; ++i) {
      const xent_token t = xent_sampler_sample(sampler_, ctx_);
      if (t < 0 && xent_sampler_grammar_state(sampler_) != XENT_GRAMMAR_NONE) {
        // The grammar cannot go on: the reply ends here, the conversation does not.
        std::fflush(stdout);
        std::fprintf(stderr, "\n[reply ended: %s]", xent_last_error());
        break;
      }
      if (t < 0) {
        print_error("chat", xent_last_error());
        return false;
      }
      if (xent_token_is_eog(model_, t)) break;
      char buf[256];
      const int32_t n = xent_token_to_piece(model_, t, buf, sizeof buf, false);
      if (n > 0) {
        reply.append(buf, static_cast<size_t>(n));
        std::fwrite(buf, 1, static_cast<size_t>(n), stdout);
        std::fflush(stdout);
      }
      if (xent_context_n_past(ctx_) >= xent_context_n_ctx(ctx_)) break;
      if (xent_decode(ctx_, &t, 1, false) != XENT_OK) {
        print_error("chat", xent_last_error());
        return false;
      }
      evaluated_text_ += std::string(buf, static_cast<size_t>(std::max(n, 0)));
    }
    std::printf("\n");
    if (g_interrupted) std::fprintf(stderr, "[stopped]\n");
    else if (xent_sampler_grammar_state(sampler_) == XENT_GRAMMAR_OPEN)
      std::fprintf(stderr, "[reply incomplete under the grammar: -n %d tokens reached]\n", o_.n_predict);
    messages_.push_back({"assistant", reply});
    return true;
  }

  void reset() {
    messages_.erase(std::remove_if(messages_.begin(), messages_.end(),
                                   [](const Message& m) { return m.role != "system"; }),
                    messages_.end());
    xent_context_truncate(ctx_, 0);
    evaluated_text_.clear();
  }

  void set_system(const std::string& text) {
    if (!messages_.empty() && messages_[0].role == "system") messages_[0].content = text;
    else messages_.insert(messages_.begin(), {"system", text});
    xent_context_truncate(ctx_, 0);
    evaluated_text_.clear();
  }

  bool save(const std::string& path) {
    nlohmann::json j;
    j["format"] = "xent-chat";
    j["version"] = 1;
    j["evaluated_text"] = evaluated_text_;
    for (const Message& m : messages_) j["messages"].push_back({{"role", m.role}, {"content", m.content}});
    const std::string blob = j.dump();
    if (xent_state_save(ctx_, path.c_str(), blob.data(), blob.size()) != XENT_OK) {
      print_error("chat", xent_last_error());
      return false;
    }
    return true;
  }

  bool load(const std::string& path) {
    size_t n = 0;
    xent_state_load(ctx_, path.c_str(), nullptr, 0, &n);  // size query
    std::string blob(n, '\0');
    if (xent_state_load(ctx_, path.c_str(), blob.data(), blob.size(), &n) != XENT_OK) {
      print_error("chat", xent_last_error());
      return false;
    }
    try {
      const nlohmann::json j = nlohmann::json::parse(blob);
      if (j.value("format", "") != "xent-chat") throw std::runtime_error("not a chat session");
      std::vector<Message> msgs;
      for (const auto& m : j.at("messages")) msgs.push_back({m.at("role"), m.at("content")});
      messages_ = msgs;
      evaluated_text_ = j.at("evaluated_text").get<std::string>();
    } catch (const std::exception& e) {
      print_error("chat", "'" + path + "' holds no chat conversation: " + e.what());
      reset();
      return false;
    }
    return true;
  }

  void set_messages(std::vector<Message> m) { messages_ = std::move(m); }
  const std::vector<Message>& messages() const { return messages_; }
  int32_t last_prompt_tokens() const { return last_prompt_tokens_; }

 private:
  // Drops the first user/assistant exchange after the system prompt.
  bool drop_oldest_turn() {
    size_t first = (!messages_.empty() && messages_[0].role == "system") ? 1 : 0;
    if (messages_.size() - first <= 1) return false;  // only the new user message is left
    size_t end = first + 1;
    if (end < messages_.size() - 1 && messages_[end].role == "assistant") ++end;
    messages_.erase(messages_.begin() + static_cast<std::ptrdiff_t>(first),
                    messages_.begin() + static_cast<std::ptrdiff_t>(end));
    evaluated_text_.clear();
    return true;
  }

  xent_model* model_;
  xent_context* ctx_;
  xent_sampler* sampler_;
  const ChatOptions& o_;
  std::vector<Message> messages_;
  std::string evaluated_text_;
  int32_t last_prompt_tokens_ = 0;
};

bool read_messages(const std::string& path, std::vector<Message>* out) {
  std::string text;
  if (!read_file(path, &text)) return false;
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    const nlohmann::json& arr = j.is_object() ? j.at("messages") : j;
    for (const auto& m : arr) out->push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
  } catch (const std::exception& e) {
    print_error("chat", "'" + path + "' is not an OpenAI-style message list: " + e.what());
    return false;
  }
  return true;
}

// Reads one message from the terminal: lines ending in '\' continue it.
bool read_user_message(std::string* out) {
  out->clear();
  std::string line;
  std::printf("> ");
  std::fflush(stdout);
  while (true) {
    if (!std::getline(std::cin, line)) return !out->empty();
    if (!line.empty() && line.back() == '\\') {
      line.pop_back();
      *out += line + "\n";
      std::printf(". ");
      std::fflush(stdout);
      continue;
    }
    *out += line;
    return true;
  }
}

int run(const ChatOptions& o) {
  if (!o.prompt_file.empty() && !o.messages_file.empty()) {
    print_error("chat", "give either -f or --messages, not both");
    return 1;
  }
  std::vector<Message> given;
  if (!o.messages_file.empty() && !read_messages(o.messages_file, &given)) return 1;

  ChatOptions opts = o;
  if (!grammar_text("chat", o.grammar, &opts.gbnf)) return 1;

  xent_model* model = load_model(o.model);
  if (!model) return 1;
  std::unique_ptr<xent_model, decltype(&xent_model_free)> model_guard(model, xent_model_free);

  if (o.print_prompt) {
    // No context needed: render and print what the model would receive.
    std::vector<xent_chat_message> msgs;
    std::vector<Message> all;
    if (!o.system.empty()) all.push_back({"system", o.system});
    all.insert(all.end(), given.begin(), given.end());
    for (const Message& m : all) msgs.push_back({m.role.c_str(), m.content.c_str()});
    const char* tmpl = o.chat_template.empty() ? nullptr : o.chat_template.c_str();
    const int32_t n = xent_chat_apply_template(model, tmpl, msgs.data(), msgs.size(), true, nullptr, 0);
    if (n < 0) {
      print_error("chat", std::string("cannot render the chat template: ") + xent_last_error());
      return 1;
    }
    std::string s(static_cast<size_t>(n) + 1, '\0');
    xent_chat_apply_template(model, tmpl, msgs.data(), msgs.size(), true, s.data(), static_cast<int32_t>(s.size()));
    std::fwrite(s.data(), 1, static_cast<size_t>(n), stdout);
    return 0;
  }

  xent_context* ctx = create_context(model, o.model);
  if (!ctx) return 1;
  std::unique_ptr<xent_context, decltype(&xent_context_free)> ctx_guard(ctx, xent_context_free);
  xent_sampler* sampler = create_sampler(o.sampling);
  if (!sampler) return 1;
  std::unique_ptr<xent_sampler, decltype(&xent_sampler_free)> sampler_guard(sampler, xent_sampler_free);

  if (!opts.gbnf.empty() && !set_grammar("chat", sampler, model, opts.gbnf)) return 1;  // a bad grammar fails now
  ChatSession chat(model, ctx, sampler, opts);
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigaction(SIGINT, &sa, nullptr);

  // Non-interactive: one conversation in, one reply out.
  if (!isatty(STDIN_FILENO) || !o.prompt_file.empty() || !given.empty()) {
    std::string user;
    if (!given.empty()) {
      if (given.back().role != "user") {
        print_error("chat", "the last message must be from the user");
        return 1;
      }
      user = given.back().content;
      given.pop_back();
      std::vector<Message> history = chat.messages();
      history.insert(history.end(), given.begin(), given.end());
      chat.set_messages(history);
    } else if (!o.prompt_file.empty()) {
      if (!read_file(o.prompt_file, &user)) return 1;
    } else {
      user.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    }
    return chat.turn(user) ? 0 : 1;
  }

  std::fprintf(stderr, "xent chat: %s. /reset /save FILE /load FILE /system TEXT /exit; end a line with \\ to continue.\n",
               xent_model_description(model));
  std::string input;
  while (true) {
    g_interrupted = false;
    if (!read_user_message(&input)) break;
    if (g_interrupted && input.empty()) continue;
    if (input.empty()) continue;
    if (input == "/exit" || input == "/quit") break;
    if (input == "/reset") {
      chat.reset();
      std::fprintf(stderr, "[conversation cleared]\n");
      continue;
    }
    if (input.rfind("/save ", 0) == 0) {
      if (chat.save(input.substr(6))) std::fprintf(stderr, "[saved to %s]\n", input.substr(6).c_str());
      continue;
    }
    if (input.rfind("/load ", 0) == 0) {
      if (chat.load(input.substr(6)))
        std::fprintf(stderr, "[loaded %zu messages from %s]\n", chat.messages().size(), input.substr(6).c_str());
      continue;
    }
    if (input.rfind("/system ", 0) == 0) {
      chat.set_system(input.substr(8));
      std::fprintf(stderr, "[system prompt set]\n");
      continue;
    }
    if (!chat.turn(input)) return 1;
    std::fprintf(stderr, "[%d new tokens evaluated, %d in context]\n", chat.last_prompt_tokens(),
                 xent_context_n_past(ctx));
  }
  return 0;
}

}  // namespace

void add_chat_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<ChatOptions>();
  CLI::App* cmd = app.add_subcommand("chat", "chat with a model using its chat template");
  add_model_options(*cmd, o->model);
  add_sampling_options(*cmd, o->sampling);
  add_grammar_options(*cmd, o->grammar);
  cmd->add_option("--system", o->system, "system prompt");
  cmd->add_option("-f,--file", o->prompt_file, "one user message from a file; print the reply and exit");
  cmd->add_option("--messages", o->messages_file, "a conversation (OpenAI message list, JSON)");
  cmd->add_option("--chat-template", o->chat_template, "template name (chatml, llama3, ...) or Jinja source");
  cmd->add_flag("--print-prompt", o->print_prompt, "print the rendered conversation and exit");
  cmd->add_option("-n,--n-predict", o->n_predict, "most tokens per reply")->check(CLI::Range(1, 1 << 20));
  cmd->callback([o, &exit_code] { exit_code = run(*o); });
}

}  // namespace xent::app
