// `xent serve`'s structured output: response_format / grammar / json_schema / format replies
// judged by Python's jsonschema (an independent validator), bad schemas and grammars as 400s,
// tool calls forced by tool_choice through three template families, and the tool-call parser
// (apps/serve-tools.cpp) on text written out by hand for each family.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "common/serve-client.h"
#include "serve.h"

namespace srv = xent::app::serve;
using xent::test::http;
using xent::test::kModels;
using xent::test::post;
using xent::test::Response;
using xent::test::ServerProcess;
using xent::test::sse_events;
using json = nlohmann::json;

namespace {

const std::vector<std::string> kWeather = {"get_weather", "lookup_drug"};

std::string args_of(const srv::ToolCall& c) { return c.arguments; }

// Python's json + jsonschema (tests/runtime/sampling/validate-json-schema.py) on each text;
// returns its report, *ok when every text is JSON that the schema admits.
std::string validate(const json& schema, const std::vector<std::string>& texts, bool* ok) {
  static int counter = 0;
  const std::string stem = std::string(XENT_BINARY_DIR) + "/serve-structured-" + std::to_string(getpid()) + "-" +
                           std::to_string(counter++);
  std::ofstream(stem + ".schema.json") << schema.dump();
  {
    std::ofstream out(stem + ".jsonl");
    for (const std::string& t : texts) out << json(t).dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  }
  const std::string cmd = "python3 " + std::string(XENT_SOURCE_DIR) + "/tests/runtime/sampling/validate-json-schema.py " +
                          stem + ".schema.json " + stem + ".jsonl 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string report;
  if (!p) {
    *ok = false;
    return "cannot run python3";
  }
  char buf[512];
  while (fgets(buf, sizeof buf, p)) report += buf;
  *ok = pclose(p) == 0;
  return report;
}

const json kPatientSchema = json::parse(R"({
  "type": "object",
  "properties": {
    "drug": {"type": "string", "maxLength": 12},
    "dose_mg": {"type": "integer"},
    "route": {"enum": ["oral", "iv", "topical"]},
    "prn": {"type": "boolean"},
    "times": {"type": "array", "items": {"type": "string", "format": "time"}, "maxItems": 2}
  },
  "required": ["drug", "dose_mg", "route"],
  "additionalProperties": false
})");

const json kTools = json::parse(R"([
  {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12},
      "unit": {"enum": ["c", "f"]}}, "required": ["city", "unit"], "additionalProperties": false}}},
  {"type": "function", "function": {"name": "lookup_drug", "description": "A drug's monograph",
    "parameters": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 10},
      "strength_mg": {"type": "integer"}}, "required": ["name"], "additionalProperties": false}}}
])");

const json& tool_schema(const std::string& name) {
  for (const json& t : kTools)
    if (t["function"]["name"] == name) return t["function"]["parameters"];
  FAIL("no tool " << name);
  return kTools;
}

json chat(const std::string& user) { return json::array({{{"role", "user"}, {"content", user}}}); }

// The streamed reply put back together: content, tool calls (OpenAI's delta shape), the
// finish reason; false when the stream is not well formed.
struct Streamed {
  std::string content;
  json tool_calls = json::array();
  std::string finish_reason;
};
bool collect_stream(const Response& r, Streamed* s) {
  bool done = false;
  const std::vector<json> events = sse_events(r.body, &done);
  if (!done || events.empty()) return false;
  for (const json& e : events) {
    if (!e.contains("choices") || e["choices"].empty()) continue;
    const json& c = e["choices"][0];
    if (!c["finish_reason"].is_null()) s->finish_reason = c["finish_reason"];
    const json& d = c["delta"];
    if (d.contains("content")) s->content += d["content"].get<std::string>();
    if (d.contains("tool_calls"))
      for (const json& tc : d["tool_calls"]) s->tool_calls.push_back(tc);
  }
  return true;
}

}  // namespace

// ---- the parser, on text written out for each family ---------------------------------

TEST_CASE("tool calls: Hermes <tool_call> (Qwen2.5, Qwen3, ChatML)", "[apps][serve][tools]") {
  using srv::ToolSyntax;
  srv::ChatReply r = srv::parse_tool_calls(
      ToolSyntax::hermes, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"unit\": \"c\"}}\n</tool_call>",
      kWeather);
  REQUIRE(r.calls.size() == 1);
  CHECK(r.calls[0].name == "get_weather");
  CHECK(json::parse(args_of(r.calls[0])) == json{{"city", "Oslo"}, {"unit", "c"}});
  CHECK(r.calls[0].id.rfind("call_", 0) == 0);
  CHECK_FALSE(r.has_content);

  // Text before, two calls, the last closing tag cut off by the end token, arguments as a string.
  r = srv::parse_tool_calls(ToolSyntax::hermes,
                            "<think>\nTwo lookups.\n</think>\n\nChecking.\n<tool_call>\n{\"name\": \"lookup_drug\", "
                            "\"arguments\": {\"name\": \"metformin\"}}\n</tool_call>\n<tool_call>\n{\"name\": "
                            "\"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Rome\\\", \\\"unit\\\": \\\"f\\\"}\"}\n",
                            kWeather);
  REQUIRE(r.calls.size() == 2);
  CHECK(r.calls[0].name == "lookup_drug");
  CHECK(r.calls[1].name == "get_weather");
  CHECK(json::parse(args_of(r.calls[1]))["city"] == "Rome");
  CHECK(r.calls[0].id != r.calls[1].id);
  CHECK(r.has_content);
  CHECK(r.content == "<think>\nTwo lookups.\n</think>\n\nChecking.\n");

  // Not calls: an unknown tool, broken JSON, arguments that are no object, plain prose.
  for (const char* text : {"<tool_call>\n{\"name\": \"rm_rf\", \"arguments\": {}}\n</tool_call>",
                           "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \n</tool_call>",
                           "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": [1]}\n</tool_call>",
                           "<tool_call>{\"name\": \"get_weather\", \"arguments\": {}} garbage </tool_call>",
                           "The weather is fine."}) {
    INFO(text);
    r = srv::parse_tool_calls(ToolSyntax::hermes, text, kWeather);
    CHECK(r.calls.empty());
    CHECK(r.has_content);
    CHECK(r.content == text);
  }
}

TEST_CASE("tool calls: Llama 3.x JSON with parameters, <|python_tag|>", "[apps][serve][tools]") {
  using srv::ToolSyntax;
  srv::ChatReply r = srv::parse_tool_calls(
      ToolSyntax::llama3, " {\"name\": \"get_weather\", \"parameters\": {\"city\": \"Lima\", \"unit\": \"c\"}}", kWeather);
  REQUIRE(r.calls.size() == 1);
  CHECK(r.calls[0].name == "get_weather");
  CHECK(json::parse(args_of(r.calls[0])) == json{{"city", "Lima"}, {"unit", "c"}});
  CHECK_FALSE(r.has_content);

  r = srv::parse_tool_calls(ToolSyntax::llama3,
                            "<|python_tag|>{\"name\": \"lookup_drug\", \"parameters\": {\"name\": \"aspirin\"}}; "
                            "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Bern\", \"unit\": \"f\"}}",
                            kWeather);
  REQUIRE(r.calls.size() == 2);
  CHECK(r.calls[0].name == "lookup_drug");
  CHECK(r.calls[1].name == "get_weather");

  // A JSON answer that names no tool is content (a response_format reply looks like this).
  for (const char* text : {"{\"drug\": \"aspirin\", \"parameters\": {}}", "{\"name\": \"get_weather\"}",
                           "Call get_weather with {\"name\": \"get_weather\", \"parameters\": {}}",
                           "<|python_tag|>brave_search.call(query=\"x\")"}) {
    INFO(text);
    r = srv::parse_tool_calls(ToolSyntax::llama3, text, kWeather);
    CHECK(r.calls.empty());
    CHECK(r.content == text);
  }
}

TEST_CASE("tool calls: Mistral [TOOL_CALLS], list and name[ARGS] forms", "[apps][serve][tools]") {
  using srv::ToolSyntax;
  srv::ChatReply r = srv::parse_tool_calls(
      ToolSyntax::mistral,
      "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"unit\": \"c\"}}, "
      "{\"name\": \"lookup_drug\", \"arguments\": {\"name\": \"heparin\"}}]",
      kWeather);
  REQUIRE(r.calls.size() == 2);
  CHECK(r.calls[1].name == "lookup_drug");
  CHECK(json::parse(args_of(r.calls[1])) == json{{"name", "heparin"}});

  // The bare list (the control token not rendered; what the forcing grammar writes).
  r = srv::parse_tool_calls(ToolSyntax::mistral, "[{\"name\": \"lookup_drug\", \"arguments\": {\"name\": \"x\"}}]", kWeather);
  REQUIRE(r.calls.size() == 1);
  CHECK_FALSE(r.has_content);

  // Newer tokenizers: [TOOL_CALLS]name[ARGS]{...}, one marker per call.
  r = srv::parse_tool_calls(ToolSyntax::mistral,
                            "Sure.[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Kyiv\", \"unit\": \"c\"}[TOOL_CALLS]"
                            "lookup_drug[ARGS]{\"name\": \"insulin\"}",
                            kWeather);
  REQUIRE(r.calls.size() == 2);
  CHECK(r.calls[0].name == "get_weather");
  CHECK(r.calls[1].name == "lookup_drug");
  CHECK(r.content == "Sure.");

  for (const char* text : {"[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {}}", "[1, 2, 3]",
                           "[TOOL_CALLS]nobody[ARGS]{}", "[TOOL_CALLS][]"}) {
    INFO(text);
    r = srv::parse_tool_calls(ToolSyntax::mistral, text, kWeather);
    CHECK(r.calls.empty());
    CHECK(r.content == text);
  }
}

TEST_CASE("tool calls: what a stream may send before the reply is complete", "[apps][serve][tools]") {
  using srv::ToolSyntax;
  // Hermes: prose goes out as it comes, a tail that may begin <tool_call> waits, the call never.
  srv::ToolCallGate g(ToolSyntax::hermes);
  std::string sent;
  for (const char* piece : {"Let me", " check.", "\n<tool", "_call>\n{\"name\": \"get_weather\", ", "\"arguments\": {}}"})
    sent += g.push(piece);
  CHECK(sent == "Let me check.\n");
  CHECK(g.n_sent() == sent.size());
  // A '<' that turns out to be prose is sent when it is clear.
  srv::ToolCallGate h(ToolSyntax::hermes);
  CHECK(h.push("a <tool") == "a ");
  CHECK(h.push("bar>") == "<toolbar>");
  // Leading whitespace waits: a reply that is only a call has null content.
  srv::ToolCallGate w(ToolSyntax::hermes);
  CHECK(w.push("\n\n").empty());
  CHECK(w.push("<tool_call>").empty());
  // Llama 3: a reply that opens with '{' may be a call: all of it waits.
  srv::ToolCallGate l(ToolSyntax::llama3);
  CHECK(l.push(" {\"name\"").empty());
  CHECK(l.push(": 1}").empty());
  srv::ToolCallGate p(ToolSyntax::llama3);
  CHECK(p.push("It is {warm}") == "It is {warm}");
  // Mistral: the marker, or a '[' first.
  srv::ToolCallGate m(ToolSyntax::mistral);
  CHECK(m.push("[{").empty());
  srv::ToolCallGate n(ToolSyntax::mistral);
  CHECK(n.push("ok [TOOL_") == "ok ");
  CHECK(n.push("CALLS][").empty());
}

TEST_CASE("tool calls: grammar rule renaming and the forcing grammar's sentences", "[apps][serve][tools]") {
  // Rule names get the prefix; literals, classes, counts and comments do not.
  CHECK(srv::prefix_grammar_rules("root ::= item{2,3} \"root x\" [a-z\\]] # root\nitem ::= [0-9]+ | root", "t0-") ==
        "t0-root ::= t0-item{2,3} \"root x\" [a-z\\]] # root\nt0-item ::= [0-9]+ | t0-root");

  xent_model* model = xent_model_load((kModels + "tiny-qwen2-q8_0.gguf").c_str(), nullptr);
  REQUIRE(model);
  std::vector<srv::Tool> tools;
  for (const json& t : kTools) tools.push_back({t["function"]["name"], t["function"]["parameters"]});
  // Feeds text token by token to a sampler holding the grammar; the state it ends in.
  auto state_after = [&](const std::string& gbnf, const std::string& text) {
    const xent_sampler_params sp = xent_sampler_default_params();
    xent_sampler* s = xent_sampler_create(&sp);
    REQUIRE(xent_sampler_set_grammar(s, model, gbnf.c_str(), nullptr) == XENT_OK);
    std::vector<xent_token> ids(text.size() + 8);
    const int32_t n = xent_tokenize(model, text.data(), static_cast<int32_t>(text.size()), ids.data(),
                                    static_cast<int32_t>(ids.size()), false, false);
    REQUIRE(n > 0);
    for (int32_t i = 0; i < n; ++i) xent_sampler_accept(s, ids[static_cast<size_t>(i)]);
    const xent_grammar_state st = xent_sampler_grammar_state(s);
    xent_sampler_free(s);
    return st;
  };
  const std::string hermes = srv::tool_call_grammar(srv::ToolSyntax::hermes, tools, true);
  const std::string call1 = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"unit\": \"c\"}}\n</tool_call>";
  const std::string call2 = "<tool_call>\n{\"name\": \"lookup_drug\", \"arguments\": {\"name\": \"x\"}}\n</tool_call>";
  CHECK(state_after(hermes, call1) == XENT_GRAMMAR_COMPLETE);  // parallel: another may follow
  CHECK(state_after(hermes, call1 + "\n" + call2) == XENT_GRAMMAR_COMPLETE);
  CHECK(state_after(hermes, call1.substr(0, 40)) == XENT_GRAMMAR_OPEN);
  CHECK(state_after(srv::tool_call_grammar(srv::ToolSyntax::hermes, tools, false), call2) == XENT_GRAMMAR_DONE);
  CHECK(state_after(hermes, "<tool_call>\n{\"name\": \"rm\"") == XENT_GRAMMAR_DEAD);
  CHECK(state_after(hermes, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"town\"") == XENT_GRAMMAR_DEAD);
  CHECK(state_after(hermes, "Sure! <tool_call>") == XENT_GRAMMAR_DEAD);
  const std::string llama = srv::tool_call_grammar(srv::ToolSyntax::llama3, {tools[1]}, true);
  CHECK(state_after(llama, "{\"name\": \"lookup_drug\", \"parameters\": {\"name\": \"x\"}}") == XENT_GRAMMAR_DONE);
  CHECK(state_after(llama, "{\"name\": \"get_weather\"") == XENT_GRAMMAR_DEAD);  // only the named one
  const std::string mistral = srv::tool_call_grammar(srv::ToolSyntax::mistral, tools, true);
  CHECK(state_after(mistral, "[{\"name\": \"lookup_drug\", \"arguments\": {\"name\": \"x\"}}, {\"name\": "
                             "\"get_weather\", \"arguments\": {\"city\": \"a\", \"unit\": \"f\"}}]") == XENT_GRAMMAR_DONE);

  // A tool whose schema the converter refuses is a 400 naming the tool.
  std::vector<srv::Tool> bad = {{"f", json{{"type", "string"}, {"pattern", "^a"}}}};
  CHECK_THROWS_WITH(srv::tool_call_grammar(srv::ToolSyntax::hermes, bad, false), Catch::Contains("tools[f]") && Catch::Contains("pattern"));
  xent_model_free(model);
}

// ---- the server ----------------------------------------------------------------------

TEST_CASE("xent serve: response_format, grammar, json_schema and format replies", "[apps][serve]") {
  ServerProcess server({"-m", kModels + "tiny-qwen2-q8_0.gguf", "--parallel", "2", "--max-tokens", "256"});
  INFO(server.log());
  REQUIRE(server.port > 0);
  const int port = server.port;
  const json rf = {{"type", "json_schema"}, {"json_schema", {{"name", "dose"}, {"strict", true}, {"schema", kPatientSchema}}}};

  SECTION("json_schema replies validate, plain and streamed, at temperature 1") {
    std::vector<std::string> texts;
    for (int i = 0; i < 8; ++i) {
      const json body = {{"messages", chat("Give the dose as JSON.")}, {"response_format", rf}, {"temperature", 1.0},
                         {"top_k", 0}, {"top_p", 1.0}, {"min_p", 0.0}, {"seed", 100 + i}, {"stream", i % 2 == 1}};
      const Response r = post(port, "/v1/chat/completions", body);
      REQUIRE(r.status == 200);
      if (i % 2 == 0) {
        const json j = r.j();
        CHECK(j["choices"][0]["finish_reason"] == "stop");
        texts.push_back(j["choices"][0]["message"]["content"]);
      } else {
        Streamed s;
        REQUIRE(collect_stream(r, &s));
        CHECK(s.finish_reason == "stop");
        texts.push_back(s.content);
      }
    }
    bool ok = false;
    const std::string report = validate(kPatientSchema, texts, &ok);
    INFO(report);
    CHECK(ok);
  }

  SECTION("json_object, llama-server's grammar and json_schema, Ollama's format, /v1/completions") {
    // Any object: random weights may write a string until max_tokens ("length", a prefix);
    // every reply that ends by itself is an object, and most do.
    int n_stopped = 0;
    for (int i = 0; i < 6; ++i) {
      const json body = {{"messages", chat("JSON please")}, {"response_format", {{"type", "json_object"}}},
                         {"seed", 10 + i}, {"max_tokens", 128}};
      const Response r = post(port, "/v1/chat/completions", body);
      REQUIRE(r.status == 200);
      const json j = r.j();
      const std::string text = j["choices"][0]["message"]["content"];
      INFO(text);
      CHECK(text.rfind("{", 0) == 0);
      if (j["choices"][0]["finish_reason"] == "stop") {
        ++n_stopped;
        CHECK(json::parse(text, nullptr, false).is_object());
      }
    }
    CHECK(n_stopped >= 3);
    json body;
    Response r;

    body = {{"messages", chat("yes or no?")}, {"grammar", "root ::= \"yes\" | \"no\""}, {"temperature", 1.0}};
    for (int i = 0; i < 4; ++i) {
      body["seed"] = i;
      r = post(port, "/v1/chat/completions", body);
      REQUIRE(r.status == 200);
      const std::string c = r.j()["choices"][0]["message"]["content"];
      CHECK((c == "yes" || c == "no"));
      CHECK(r.j()["choices"][0]["finish_reason"] == "stop");
    }

    std::vector<std::string> texts;
    for (const char* key : {"json_schema", "format"}) {
      body = {{"messages", chat("dose")}, {key, kPatientSchema}, {"seed", 5}};
      r = post(port, "/v1/chat/completions", body);
      REQUIRE(r.status == 200);
      texts.push_back(r.j()["choices"][0]["message"]["content"]);
    }
    r = post(port, "/v1/completions", {{"prompt", "Dose:"}, {"response_format", rf}, {"seed", 6}});
    REQUIRE(r.status == 200);
    texts.push_back(r.j()["choices"][0]["text"]);
    bool ok = false;
    const std::string report = validate(kPatientSchema, texts, &ok);
    INFO(report);
    CHECK(ok);
    r = post(port, "/v1/chat/completions", {{"messages", chat("x")}, {"format", "json"}, {"seed", 7}, {"max_tokens", 128}});
    REQUIRE(r.status == 200);
    CHECK(r.j()["choices"][0]["message"]["content"].get<std::string>().rfind("{", 0) == 0);
    // type text constrains nothing.
    r = post(port, "/v1/chat/completions", {{"messages", chat("x")}, {"response_format", {{"type", "text"}}}, {"max_tokens", 4}});
    CHECK(r.status == 200);
  }

  SECTION("bad schemas, grammars and combinations are 400s naming the problem") {
    auto error = [&](const json& extra) {
      json body = {{"messages", chat("x")}, {"max_tokens", 4}};
      body.update(extra);
      const Response r = post(port, "/v1/chat/completions", body);
      INFO(r.body);
      CHECK(r.status == 400);
      CHECK(r.is_json_error());
      return r.j()["error"]["message"].get<std::string>() + " / " + r.j()["error"]["code"].dump();
    };
    json bad = rf;
    bad["json_schema"]["schema"]["properties"]["drug"]["pattern"] = "^[a-z]+$";
    std::string e = error({{"response_format", bad}});
    CHECK_THAT(e, Catch::Contains("response_format.json_schema.schema") && Catch::Contains("pattern") &&
                      Catch::Contains("invalid_schema"));
    e = error({{"response_format", {{"type", "json_schema"}, {"json_schema", {{"schema", {{"$ref", "#/$defs/nope"}}}}}}}});
    CHECK_THAT(e, Catch::Contains("nope"));
    e = error({{"grammar", "root ::= missing"}});
    CHECK_THAT(e, Catch::Contains("grammar") && Catch::Contains("missing") && Catch::Contains("invalid_grammar"));
    e = error({{"grammar", "root ::= \"unterminated"}});
    CHECK_THAT(e, Catch::Contains("grammar"));
    CHECK_THAT(error({{"response_format", {{"type", "xml"}}}}), Catch::Contains("text, json_object or json_schema"));
    CHECK_THAT(error({{"response_format", "json"}}), Catch::Contains("must be an object"));
    CHECK_THAT(error({{"response_format", {{"type", "json_schema"}}}}), Catch::Contains("json_schema' is required"));
    CHECK_THAT(error({{"response_format", {{"type", "json_schema"}, {"json_schema", {{"schema", 5}}}}}}),
               Catch::Contains("must be an object"));
    CHECK_THAT(error({{"response_format", rf}, {"grammar", "root ::= \"a\""}}), Catch::Contains("only one"));
    CHECK_THAT(error({{"format", "yaml"}}), Catch::Contains("'format'"));
    CHECK_THAT(error({{"json_schema", "{}"}}), Catch::Contains("must be an object"));
    CHECK(http(port, "GET", "/health").status == 200);  // the server is still fine
  }

  SECTION("a grammar no token can continue ends the reply as stop, and the log says why") {
    // After "ab" the grammar wants a character of an empty class.
    const Response r = post(port, "/v1/chat/completions",
                            {{"messages", chat("x")}, {"grammar", "root ::= \"ab\" [^\\x00-\\U0010FFFF]"}, {"max_tokens", 20}});
    REQUIRE(r.status == 200);
    CHECK(r.j()["choices"][0]["finish_reason"] == "stop");
    CHECK(r.j()["choices"][0]["message"]["content"] == "ab");
    CHECK(server.log().find("the grammar (from grammar) cannot go on") != std::string::npos);
  }

  SECTION("constrained and plain requests share batch steps") {
    // A long constrained reply, and a plain one sent while it runs: alone they would take
    // a step per token (prompts aside); together, fewer. (A plain reply can end before
    // the other starts on a loaded machine: three tries.)
    bool shared = false;
    for (int attempt = 0; attempt < 3 && !shared; ++attempt) {
      const uint64_t steps0 = http(port, "GET", "/health").j()["batch_steps"];
      std::vector<Response> got(2);
      std::thread a([&] {
        got[0] = post(port, "/v1/chat/completions",
                      {{"messages", chat("a")}, {"grammar", "root ::= [a-z]{200}"}, {"seed", 1}});
      });
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      std::thread b([&] { got[1] = post(port, "/v1/completions", {{"prompt", "b"}, {"max_tokens", 100}, {"seed", 2}}); });
      a.join();
      b.join();
      REQUIRE(got[0].status == 200);
      REQUIRE(got[1].status == 200);
      const std::string c = got[0].j()["choices"][0]["message"]["content"];
      CHECK(c.size() == 200);
      CHECK(c.find_first_not_of("abcdefghijklmnopqrstuvwxyz") == std::string::npos);
      const int tokens =
          got[0].j()["usage"]["completion_tokens"].get<int>() + got[1].j()["usage"]["completion_tokens"].get<int>();
      const uint64_t steps = http(port, "GET", "/health").j()["batch_steps"].get<uint64_t>() - steps0;
      UNSCOPED_INFO("try " << attempt << ": " << tokens << " tokens in " << steps << " steps");
      shared = steps < static_cast<uint64_t>(tokens);
    }
    CHECK(shared);
  }
  CHECK(server.stop());
}

namespace {

// A Mistral-style template of our own (no model ships it): tools before the last user turn,
// calls as [TOOL_CALLS] and a list, results as [TOOL_RESULTS].
const char* kMistralTools = R"JINJA({{- bos_token -}}
{%- for message in messages -%}
{%- if message['role'] == 'user' -%}
{%- if loop.last and tools -%}[AVAILABLE_TOOLS]{{ tools | tojson }}[/AVAILABLE_TOOLS]{%- endif -%}
[INST]{{ message['content'] }}[/INST]
{%- elif message['role'] == 'assistant' and message.tool_calls -%}
[TOOL_CALLS][{%- for c in message.tool_calls -%}{{ ', ' if not loop.first else '' }}{"name": "{{ c.function.name }}", "arguments": {{ c.function.arguments | tojson }}}{%- endfor -%}]{{ eos_token }}
{%- elif message['role'] == 'assistant' -%}
{{ message['content'] }}{{ eos_token }}
{%- elif message['role'] == 'tool' -%}
[TOOL_RESULTS]{{ message['content'] }}[/TOOL_RESULTS]
{%- endif -%}
{%- endfor -%}
)JINJA";

}  // namespace

TEST_CASE("xent serve: tool_choice forces calls in each template family; tool history", "[apps][serve]") {
  const std::string mistral_file = std::string(XENT_BINARY_DIR) + "/serve-structured-mistral-" + std::to_string(getpid()) + ".jinja";
  std::ofstream(mistral_file) << kMistralTools;
  const std::string templates = std::string(XENT_SOURCE_DIR) + "/tests/runtime/chat/templates/";
  struct Case {
    const char* name;
    std::vector<std::string> args;
  };
  const std::vector<Case> cases = {
      {"ChatML without tools (hermes, described in the system message)", {"-m", kModels + "tiny-qwen2-q8_0.gguf"}},
      {"Qwen3 (hermes)", {"-m", kModels + "tiny-qwen2-q8_0.gguf", "--chat-template-file", templates + "Qwen-Qwen3-0.6B.jinja"}},
      {"Llama 3.2 (JSON with parameters)",
       {"-m", kModels + "tiny-llama-bpe-q8_0.gguf", "--chat-template-file", templates + "meta-llama-Llama-3.2-3B-Instruct.jinja"}},
      {"Mistral-style ([TOOL_CALLS])", {"-m", kModels + "tiny-llama-bpe-q8_0.gguf", "--chat-template-file", mistral_file}},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    std::vector<std::string> args = c.args;
    args.insert(args.end(), {"--max-tokens", "200"});
    ServerProcess server(args);
    INFO(server.log());
    REQUIRE(server.port > 0);
    const int port = server.port;
    std::vector<std::string> weather_args, drug_args;
    for (int i = 0; i < 4; ++i) {
      json body = {{"messages", chat("What is the weather in Oslo?")}, {"tools", kTools}, {"tool_choice", "required"},
                   {"parallel_tool_calls", false}, {"temperature", 1.0}, {"seed", 40 + i}, {"stream", i % 2 == 1}};
      if (i >= 2) body["tool_choice"] = {{"type", "function"}, {"function", {{"name", "lookup_drug"}}}};
      const Response r = post(port, "/v1/chat/completions", body);
      INFO(r.body);
      REQUIRE(r.status == 200);
      json calls;
      std::string finish;
      if (i % 2 == 0) {
        const json j = r.j();
        const json& m = j["choices"][0]["message"];
        CHECK(m["content"].is_null());
        calls = m["tool_calls"];
        finish = j["choices"][0]["finish_reason"];
      } else {
        Streamed s;
        REQUIRE(collect_stream(r, &s));
        CHECK(s.content.empty());
        calls = s.tool_calls;
        finish = s.finish_reason;
        REQUIRE(calls.size() == 1);
        CHECK(calls[0]["index"] == 0);
      }
      CHECK(finish == "tool_calls");
      REQUIRE(calls.is_array());
      REQUIRE(calls.size() == 1);  // parallel_tool_calls false: exactly one
      const json& call = calls[0];
      CHECK(call["type"] == "function");
      CHECK(call["id"].get<std::string>().rfind("call_", 0) == 0);
      const std::string name = call["function"]["name"];
      if (i >= 2) CHECK(name == "lookup_drug");
      REQUIRE(call["function"]["arguments"].is_string());
      (name == "get_weather" ? weather_args : drug_args).push_back(call["function"]["arguments"]);
    }
    // The arguments are schema-valid JSON, judged by jsonschema.
    for (const auto& [name, list] : {std::pair{"get_weather", &weather_args}, std::pair{"lookup_drug", &drug_args}}) {
      if (list->empty()) continue;
      bool ok = false;
      const std::string report = validate(tool_schema(name), *list, &ok);
      INFO(name << ": " << report);
      CHECK(ok);
    }
    CHECK(drug_args.size() >= 2);

    // A conversation that carries a call and its result renders and runs; "none" and "auto"
    // run too (random weights write no call: the reply is content).
    const json history = json::parse(R"([
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
          "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\", \"unit\": \"c\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "12 C, rain"},
        {"role": "user", "content": "And tomorrow?"}])");
    for (const char* choice : {"auto", "none", "required"}) {
      INFO(choice);
      const Response r = post(port, "/v1/chat/completions",
                              {{"messages", history}, {"tools", kTools}, {"tool_choice", choice}, {"max_tokens", 150},
                               {"seed", 9}, {"parallel_tool_calls", false}});
      INFO(r.body);
      REQUIRE(r.status == 200);
      const json j = r.j();
      const json& choice0 = j["choices"][0];
      if (std::string(choice) == "required") CHECK(choice0["finish_reason"] == "tool_calls");
      else CHECK((choice0["message"]["content"].is_string() || choice0["message"].contains("tool_calls")));
    }
    CHECK(server.stop());
  }
}

TEST_CASE("xent serve: tools and tool_choice errors", "[apps][serve]") {
  ServerProcess server({"-m", kModels + "tiny-qwen2-q8_0.gguf"});
  INFO(server.log());
  REQUIRE(server.port > 0);
  auto error = [&](const json& extra) {
    json body = {{"messages", chat("x")}, {"max_tokens", 4}};
    body.update(extra);
    const Response r = post(server.port, "/v1/chat/completions", body);
    INFO(r.body);
    CHECK(r.status == 400);
    CHECK(r.is_json_error());
    return r.j()["error"]["message"].get<std::string>();
  };
  CHECK_THAT(error({{"tools", kTools}, {"tool_choice", {{"type", "function"}, {"function", {{"name", "nope"}}}}}}),
             Catch::Contains("'nope'"));
  CHECK_THAT(error({{"tool_choice", "required"}}), Catch::Contains("needs 'tools'"));
  CHECK_THAT(error({{"tools", kTools}, {"tool_choice", "sometimes"}}), Catch::Contains("tool_choice"));
  CHECK_THAT(error({{"tools", "get_weather"}}), Catch::Contains("'tools' must be an array"));
  CHECK_THAT(error({{"tools", json::array({{{"type", "function"}, {"function", {{"name", "bad name!"}}}}})}}),
             Catch::Contains("tools[0].function.name"));
  CHECK_THAT(error({{"tools", json::array({{{"type", "retrieval"}}})}}), Catch::Contains("tools[0]"));
  json dup = kTools;
  dup.push_back(kTools[0]);
  CHECK_THAT(error({{"tools", dup}}), Catch::Contains("a second tool named 'get_weather'"));
  json bad_params = kTools;
  bad_params[0]["function"]["parameters"]["properties"]["city"]["pattern"] = "^[A-Z]";
  CHECK_THAT(error({{"tools", bad_params}, {"tool_choice", "required"}}), Catch::Contains("tools[get_weather]") && Catch::Contains("pattern"));
  CHECK_THAT(error({{"tools", kTools}, {"tool_choice", "required"}, {"response_format", {{"type", "json_object"}}}}),
             Catch::Contains("only one"));
  const json bad_history = json::array({{{"role", "user"}, {"content", "x"}},
                                        {{"role", "assistant"}, {"tool_calls", json::array({{{"type", "function"},
                                          {"function", {{"name", "get_weather"}, {"arguments", "{not json"}}}}})}}});
  CHECK_THAT(error({{"messages", bad_history}}), Catch::Contains("messages[1].tool_calls[0].function.arguments"));
  CHECK_THAT(error({{"messages", json::array({{{"role", "robot"}, {"content", "x"}}})}}), Catch::Contains("tool"));
  CHECK(server.stop());
}
