// `xent complete`: word suggestions while you type (raw terminal, Tab accepts), or once for
// --text as JSON lines. A thin shell over the xent_autocomplete_* API.
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "commands.h"
#include "common.h"

namespace xent::app {
namespace {

struct CompleteOptions {
  ModelOptions model;
  std::string text;
  bool text_given = false;
  int n_suggestions = 3;
  int max_words = 1;
  float min_probability = 0.02f;
  int beam_width = 16;
  int max_tokens = 8;
  std::string blocklist;
};

xent_autocomplete_params to_params(const CompleteOptions& o) {
  xent_autocomplete_params p = xent_autocomplete_default_params();
  p.n_suggestions = o.n_suggestions;
  p.max_words = o.max_words;
  p.min_probability = o.min_probability;
  p.beam_width = o.beam_width;
  p.max_tokens = o.max_tokens;
  p.blocklist = o.blocklist.empty() ? nullptr : o.blocklist.c_str();
  return p;
}

int one_shot(xent_autocomplete* ac, const CompleteOptions& o) {
  const xent_autocomplete_params p = to_params(o);
  xent_autocomplete_result* r = nullptr;
  if (xent_autocomplete_run(ac, o.text.data(), static_cast<int32_t>(o.text.size()), &p, &r) != XENT_OK) {
    print_error("complete", xent_last_error());
    return 1;
  }
  for (int32_t i = 0; i < r->n_suggestions; ++i) {
    nlohmann::json line = {{"text", r->suggestions[i].text},
                           {"insert", r->suggestions[i].insert},
                           {"p", static_cast<double>(r->suggestions[i].probability)}};
    std::printf("%s\n", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  }
  std::fprintf(stderr, "%.2f ms, %d context tokens evaluated (%d reused), %d tree tokens in %d steps\n", r->ms,
               r->n_prefix_evaluated, r->n_prefix_reused, r->n_tree_evaluated, r->n_steps);
  xent_autocomplete_result_free(r);
  return 0;
}

// ---- interactive ----------------------------------------------------------------

class RawTerminal {
 public:
  bool enter() {
    if (tcgetattr(STDIN_FILENO, &saved_) != 0) return false;
    termios raw = saved_;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO | ISIG | IEXTEN);
    raw.c_iflag &= ~static_cast<tcflag_t>(IXON | ICRNL);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) != 0) return false;
    active_ = true;
    return true;
  }
  ~RawTerminal() {
    if (active_) tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_);
  }

 private:
  termios saved_{};
  bool active_ = false;
};

bool input_pending() {
  pollfd fd{STDIN_FILENO, POLLIN, 0};
  return poll(&fd, 1, 0) > 0;
}

// Removes the last UTF-8 character.
void pop_char(std::string& s) {
  while (!s.empty()) {
    const unsigned char c = static_cast<unsigned char>(s.back());
    s.pop_back();
    if ((c & 0xC0) != 0x80) break;
  }
}

// Redraws the current line with the top suggestion as dim ghost text, and a status line
// below (the other suggestions, the latency) that the cursor never enters.
void draw(const std::string& text, const xent_autocomplete_result* r) {
  const size_t nl = text.rfind('\n');
  const std::string line = nl == std::string::npos ? text : text.substr(nl + 1);
  std::string ghost, status;
  if (r && r->n_suggestions > 0) {
    ghost = r->suggestions[0].insert;
    char buf[64];
    for (int32_t i = 0; i < r->n_suggestions; ++i) {
      std::snprintf(buf, sizeof buf, " %.2f", static_cast<double>(r->suggestions[i].probability));
      status += std::string(i ? " | " : "") + r->suggestions[i].text + buf;
    }
    std::snprintf(buf, sizeof buf, "   [%.1f ms, %d+%d tokens]", r->ms, r->n_prefix_evaluated, r->n_tree_evaluated);
    status += buf;
  }
  std::string out = "\r\x1b[K" + line + "\x1b[2m" + ghost + "\x1b[0m";
  out += "\x1b" "7";  // save the cursor after the ghost; come back before it below
  out += "\n\r\x1b[K\x1b[2m" + status + "\x1b[0m\x1b" "8";
  if (!ghost.empty()) out += "\x1b[" + std::to_string(ghost.size()) + "D";
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
}

int interactive(xent_autocomplete* ac, const CompleteOptions& o) {
  if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
    print_error("complete", "interactive mode needs a terminal; use --text \"...\" for one-shot JSON output");
    return 1;
  }
  RawTerminal term;
  if (!term.enter()) {
    print_error("complete", "cannot switch the terminal to raw mode");
    return 1;
  }
  std::printf("Type; Tab accepts the suggestion, Esc hides it, Ctrl-D or Ctrl-C quits.\n\n\x1b[A");
  const xent_autocomplete_params p = to_params(o);
  std::string text;
  xent_autocomplete_result* shown = nullptr;
  auto refresh = [&] {
    xent_autocomplete_result_free(shown);
    shown = nullptr;
    if (xent_autocomplete_run(ac, text.data(), static_cast<int32_t>(text.size()), &p, &shown) != XENT_OK)
      shown = nullptr;
    draw(text, shown);
  };
  draw(text, nullptr);
  for (;;) {
    unsigned char c = 0;
    if (read(STDIN_FILENO, &c, 1) != 1) break;
    if (c == 3 || c == 4) break;  // Ctrl-C, Ctrl-D
    if (c == '\t') {
      if (shown && shown->n_suggestions > 0) text += shown->suggestions[0].insert;
    } else if (c == 27) {  // Esc, or the start of an arrow-key sequence: hide the ghost
      while (input_pending() && read(STDIN_FILENO, &c, 1) == 1 && !(c >= 0x40 && c <= 0x7e && c != '[')) {
      }
      xent_autocomplete_result_free(shown);
      shown = nullptr;
      draw(text, nullptr);
      continue;
    } else if (c == 127 || c == 8) {
      pop_char(text);
      if (!text.empty() && text.back() == '\n') text.pop_back();  // no going back across lines
    } else if (c == '\r' || c == '\n') {
      std::printf("\r\x1b[K%s\n\x1b[K\n\x1b[A", text.substr(text.rfind('\n') + 1).c_str());
      text += '\n';
    } else if (c >= 32) {
      text += static_cast<char>(c);
    }
    // Keystrokes already typed make this suggestion stale: catch up first.
    if (input_pending()) {
      draw(text, nullptr);
      continue;
    }
    refresh();
  }
  xent_autocomplete_result_free(shown);
  std::printf("\r\n\x1b[K");
  return 0;
}

int complete(const CompleteOptions& o) {
  xent_model* model = load_model(o.model);
  if (!model) return 1;
  std::unique_ptr<xent_model, decltype(&xent_model_free)> model_guard(model, xent_model_free);
  xent_context* ctx = create_context(model, o.model);
  if (!ctx) return 1;
  std::unique_ptr<xent_context, decltype(&xent_context_free)> ctx_guard(ctx, xent_context_free);
  xent_autocomplete* ac = xent_autocomplete_create(ctx);
  if (!ac) {
    print_error("complete", xent_last_error());
    return 1;
  }
  std::unique_ptr<xent_autocomplete, decltype(&xent_autocomplete_free)> ac_guard(ac, xent_autocomplete_free);
  return o.text_given ? one_shot(ac, o) : interactive(ac, o);
}

}  // namespace

void add_complete_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<CompleteOptions>();
  CLI::App* cmd = app.add_subcommand("complete", "suggest the next words while you type (Tab accepts)");
  add_model_options(*cmd, o->model);
  auto* text = cmd->add_option("--text", o->text, "suggest once for this text and print JSON lines");
  cmd->add_option("-n,--n-suggestions", o->n_suggestions, "suggestions to show")->check(CLI::Range(1, 64));
  cmd->add_option("--words", o->max_words, "words per suggestion")->check(CLI::Range(1, 8));
  cmd->add_option("--min-p", o->min_probability, "drop less likely suggestions")->check(CLI::Range(0.0f, 1.0f));
  cmd->add_option("--beam", o->beam_width, "candidates kept per step")->check(CLI::Range(1, 256));
  cmd->add_option("--max-tokens", o->max_tokens, "tokens per suggestion")->check(CLI::Range(1, 32));
  cmd->add_option("--blocklist", o->blocklist, "words never suggested (comma-separated)");
  cmd->callback([o, text, &exit_code] {
    o->text_given = text->count() > 0;
    exit_code = complete(*o);
  });
}

}  // namespace xent::app
