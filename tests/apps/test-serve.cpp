// `xent serve` over real loopback HTTP: OpenAI endpoints (plain and streamed), the 4xx
// cases, concurrent clients, the API key, autocomplete with the clinical model. The server
// runs as a child process on a port the OS picks; every request is bounded in time.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/serve-client.h"

namespace {

using namespace xent::test;

}  // namespace

TEST_CASE("xent serve: OpenAI endpoints with the tiny ChatML model", "[apps][serve]") {
  ServerProcess server({"-m", kModels + "tiny-llama-bpe-q8_0.gguf", "--parallel", "2", "--max-body", "65536",
                        "--max-tokens", "64"});
  INFO(server.log());
  REQUIRE(server.port > 0);
  const int port = server.port;

  SECTION("health and models") {
    Response r = http(port, "GET", "/health");
    CHECK(r.status == 200);
    CHECK(r.j()["status"] == "ok");
    r = http(port, "GET", "/v1/models");
    REQUIRE(r.status == 200);
    CHECK(r.j()["object"] == "list");
    CHECK(r.j()["data"][0]["id"] == "tiny-llama-bpe-q8_0");
    r = http(port, "GET", "/");
    CHECK(r.status == 200);
    CHECK(r.body.find("<textarea") != std::string::npos);
    CHECK(r.body.find("http://") == std::string::npos);  // nothing loaded from elsewhere
    CHECK(r.body.find("https://") == std::string::npos);
  }

  SECTION("completions, plain and streamed, agree") {
    const json req = {{"prompt", "Once upon a time"}, {"max_tokens", 12}, {"temperature", 0}};
    Response r = post(port, "/v1/completions", req);
    REQUIRE(r.status == 200);
    const json j = r.j();
    CHECK(j["object"] == "text_completion");
    REQUIRE(j["choices"][0]["text"].is_string());
    const std::string text = j["choices"][0]["text"];
    CHECK(j["usage"]["completion_tokens"].get<int>() <= 12);
    CHECK(j["usage"]["prompt_tokens"].get<int>() > 0);
    const std::string finish = j["choices"][0]["finish_reason"];
    CHECK((finish == "stop" || finish == "length"));
    // Greedy is deterministic; a second run reuses the cache and gives the same text.
    CHECK(post(port, "/v1/completions", req).j()["choices"][0]["text"] == text);

    json sreq = req;
    sreq["stream"] = true;
    r = post(port, "/v1/completions", sreq);
    REQUIRE(r.status == 200);
    CHECK(r.headers.find("text/event-stream") != std::string::npos);
    bool done = false;
    const auto events = sse_events(r.body, &done);
    CHECK(done);
    REQUIRE(events.size() >= 2);
    std::string streamed;
    for (const json& e : events) {
      REQUIRE(e.is_object());
      CHECK(e["object"] == "text_completion");
      streamed += e["choices"][0]["text"].get<std::string>();
    }
    CHECK(streamed == text);
    CHECK(events.back()["choices"][0]["finish_reason"] == finish);

    // A stop string taken from the middle of the text cuts it there.
    if (text.size() >= 6) {
      json stop_req = req;
      stop_req["stop"] = text.substr(3, 3);
      const json s = post(port, "/v1/completions", stop_req).j();
      CHECK(s["choices"][0]["text"] == text.substr(0, text.find(text.substr(3, 3))));
      CHECK(s["choices"][0]["finish_reason"] == "stop");
    }
  }

  SECTION("chat, plain and streamed") {
    const json req = {{"model", "tiny-llama-bpe-q8_0"},
                      {"messages", {{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "Hi!"}}}},
                      {"max_tokens", 10},
                      {"temperature", 0}};
    Response r = post(port, "/v1/chat/completions", req);
    REQUIRE(r.status == 200);
    const json j = r.j();
    CHECK(j["object"] == "chat.completion");
    CHECK(j["choices"][0]["message"]["role"] == "assistant");
    const std::string content = j["choices"][0]["message"]["content"];

    json sreq = req;
    sreq["stream"] = true;
    sreq["stream_options"] = {{"include_usage", true}};
    r = post(port, "/v1/chat/completions", sreq);
    REQUIRE(r.status == 200);
    bool done = false;
    const auto events = sse_events(r.body, &done);
    CHECK(done);
    REQUIRE(events.size() >= 3);
    CHECK(events.front()["choices"][0]["delta"]["role"] == "assistant");
    std::string streamed;
    for (const json& e : events) {
      if (e["choices"].empty()) continue;
      const json& d = e["choices"][0]["delta"];
      if (d.contains("content")) streamed += d["content"].get<std::string>();
    }
    CHECK(streamed == content);
    CHECK(events.back()["usage"]["completion_tokens"] == j["usage"]["completion_tokens"]);
  }

  SECTION("bad requests get 4xx JSON errors") {
    auto expect = [&](const Response& r, int status) {
      INFO("body: " << r.body);
      CHECK(r.status == status);
      CHECK(r.is_json_error());
    };
    expect(http(port, "POST", "/v1/completions", "{\"prompt\": \"hi\", "), 400);
    expect(http(port, "POST", "/v1/completions", "[1, 2]"), 400);
    expect(http(port, "POST", "/v1/completions", ""), 400);
    expect(post(port, "/v1/completions", {{"prompt", 5}}), 400);
    expect(post(port, "/v1/completions", {{"prompt", "hi"}, {"max_tokens", "ten"}}), 400);
    expect(post(port, "/v1/completions", {{"prompt", "hi"}, {"max_tokens", -3}}), 400);
    expect(post(port, "/v1/completions", {{"prompt", "hi"}, {"max_tokens", 100000}}), 400);
    expect(post(port, "/v1/completions", {{"prompt", "hi"}, {"temperature", "hot"}}), 400);
    expect(post(port, "/v1/completions", {{"prompt", "hi"}, {"stream", "yes"}}), 400);
    expect(post(port, "/v1/completions", {{"prompt", "hi"}, {"stop", {1, 2}}}), 400);
    expect(post(port, "/v1/completions", {{"prompt", "hi"}, {"n", 2}}), 400);
    expect(post(port, "/v1/completions", {{"prompt", "hi"}, {"model", "gpt-17"}}), 404);
    expect(post(port, "/v1/chat/completions", {{"messages", "hi"}}), 400);
    expect(post(port, "/v1/chat/completions", {{"messages", json::array()}}), 400);
    expect(post(port, "/v1/chat/completions", {{"messages", {{{"role", "wizard"}, {"content", "x"}}}}}), 400);
    expect(post(port, "/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", 42}}}}}), 400);
    // A prompt longer than the context.
    std::string longp;
    for (int i = 0; i < 5000; ++i) longp += "word ";
    const Response r = post(port, "/v1/completions", {{"prompt", longp}});
    expect(r, 400);
    CHECK(r.j()["error"]["code"] == "context_length_exceeded");
    // A body over --max-body.
    expect(post(port, "/v1/completions", {{"prompt", std::string(100000, 'a')}}), 413);
    expect(http(port, "GET", "/v1/nothing-here"), 404);
    expect(http(port, "POST", "/v2/completions", "{}"), 404);
    // Still alive and well.
    CHECK(http(port, "GET", "/health").status == 200);
  }

  SECTION("concurrent clients get their own caches") {
    const json a = {{"prompt", "The quick brown fox"}, {"max_tokens", 16}, {"temperature", 0}};
    const json b = {{"prompt", "Lorem ipsum dolor sit amet"}, {"max_tokens", 16}, {"temperature", 0}};
    const std::string want_a = post(port, "/v1/completions", a).j()["choices"][0]["text"];
    const std::string want_b = post(port, "/v1/completions", b).j()["choices"][0]["text"];
    // Three clients on two slots: one waits in the queue.
    std::vector<Response> got(6);
    std::vector<std::thread> threads;
    for (int i = 0; i < 6; ++i) {
      threads.emplace_back([&, i] {
        json req = i % 2 ? b : a;
        if (i >= 3) req["stream"] = true;
        got[i] = post(port, "/v1/completions", req);
      });
    }
    for (auto& t : threads) t.join();
    for (int i = 0; i < 6; ++i) {
      INFO("client " << i);
      REQUIRE(got[i].status == 200);
      std::string text;
      if (i < 3) {
        text = got[i].j()["choices"][0]["text"];
      } else {
        bool done = false;
        for (const json& e : sse_events(got[i].body, &done)) text += e["choices"][0]["text"].get<std::string>();
        CHECK(done);
      }
      CHECK(text == (i % 2 ? want_b : want_a));
    }
  }

  CHECK(server.stop());
}

TEST_CASE("xent serve: --api-key is enforced", "[apps][serve]") {
  ServerProcess server({"-m", kModels + "tiny-llama-bpe-q8_0.gguf", "--api-key", "s3cret"});
  INFO(server.log());
  REQUIRE(server.port > 0);
  const int port = server.port;
  const json req = {{"prompt", "hi"}, {"max_tokens", 2}};
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{}, {"Authorization: Bearer wrong"}, {"Authorization: Bearer s3cre"},
        {"Authorization: s3cret"}, {"Authorization: Bearer s3cretX"}}) {
    INFO((bad.empty() ? "no key" : bad[0]));
    Response r = http(port, "GET", "/health", "", bad);
    CHECK(r.status == 401);
    CHECK(r.is_json_error());
    CHECK(http(port, "GET", "/v1/models", "", bad).status == 401);
    CHECK(post(port, "/v1/completions", req, bad).status == 401);
    CHECK(post(port, "/v1/chat/completions", req, bad).status == 401);
    CHECK(post(port, "/v1/autocomplete", {{"text", "a"}}, bad).status == 401);
    CHECK(http(port, "GET", "/no-such-page", "", bad).status == 401);
  }
  const std::vector<std::string> good = {"Authorization: Bearer s3cret"};
  CHECK(http(port, "GET", "/health", "", good).status == 200);
  CHECK(post(port, "/v1/completions", req, good).status == 200);
  // The page itself needs no key (a browser cannot send one when opening a URL); it asks
  // for the key and sends it with every API call.
  CHECK(http(port, "GET", "/").status == 200);
  CHECK(server.stop());
}

TEST_CASE("xent serve: autocomplete with the clinical model", "[apps][serve]") {
  ServerProcess server({"-m", kModels + "clinical-gpt2-q8_0.gguf", "--parallel", "2"});
  INFO(server.log());
  REQUIRE(server.port > 0);
  const int port = server.port;
  Response r = post(port, "/v1/autocomplete", {{"text", "MEDICATIONS: metformin 500 mg twice"}, {"n", 3}});
  REQUIRE(r.status == 200);
  json j = r.j();
  REQUIRE(j["suggestions"].size() >= 1);
  CHECK(j["suggestions"][0]["text"] == "daily");
  CHECK(j["suggestions"][0]["insert"] == " daily");
  CHECK(j["suggestions"][0]["p"].get<double>() > 0.0);
  CHECK(j["suggestions"][0]["p"].get<double>() <= 1.0);
  CHECK(j["timing"]["ms"].get<double>() > 0.0);
  CHECK(j["suggestions"].size() <= 3);

  // Typing on: the context is found in the cache.
  r = post(port, "/v1/autocomplete", {{"text", "MEDICATIONS: metformin 500 mg twice d"}, {"session", "t"}});
  REQUIRE(r.status == 200);
  CHECK(r.j()["timing"]["n_prefix_evaluated"].get<int>() <= 2);
  CHECK(r.j()["suggestions"][0]["text"] == "daily");

  r = post(port, "/v1/autocomplete", {{"text", "VITAL SIGNS: oxygen saturation 95% on room"}, {"blocklist", {"air"}}});
  REQUIRE(r.status == 200);
  for (const json& s : r.j()["suggestions"]) CHECK(s["text"] != "air");

  CHECK(post(port, "/v1/autocomplete", {{"n", 3}}).status == 400);
  CHECK(post(port, "/v1/autocomplete", {{"text", 7}}).status == 400);
  CHECK(post(port, "/v1/autocomplete", {{"text", "a"}, {"n", "three"}}).status == 400);
  CHECK(post(port, "/v1/autocomplete", {{"text", "a"}, {"n", 1000}}).status == 400);
  CHECK(post(port, "/v1/autocomplete", {{"text", "a"}, {"blocklist", "air"}}).status == 400);
  // Invalid UTF-8 and control bytes in the text are not a crash.
  r = http(port, "POST", "/v1/autocomplete", std::string("{\"text\": \"\\u0000\\u0001 caf\xc3\"}"));
  CHECK(r.status / 100 == 4);
  r = post(port, "/v1/autocomplete", {{"text", std::string("abc\x01\x02 def")}});
  CHECK(r.status == 200);

  // Two sessions typing at once.
  std::vector<Response> got(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      std::string session = "client";
      session += std::to_string(i);  // (not "s" + to_string: a g++ 12 -Wrestrict false positive)
      got[i] = post(port, "/v1/autocomplete",
                    {{"text", i % 2 ? "oxygen saturation 95% on room" : "metformin 500 mg twice"},
                     {"session", session}});
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < 4; ++i) {
    REQUIRE(got[i].status == 200);
    CHECK(got[i].j()["suggestions"][0]["text"] == (i % 2 ? "air" : "daily"));
  }
  CHECK(server.stop());
}

// Continuous batching: many clients on four slots of one context. Every answer at
// temperature 0 must be the one its prompt gets alone (no request sees another's text),
// clients that hang up free their slot, a shared prefix is reused, memory stays flat.
TEST_CASE("xent serve: continuous batching under a bounded load", "[apps][serve]") {
  ServerProcess server({"-m", kModels + "clinical-gpt2-q8_0.gguf", "--parallel", "4", "--max-queue", "64",
                        "--max-tokens", "1024"});  // 256 cells a slot: the model's positions
  INFO(server.log());
  REQUIRE(server.port > 0);
  const int port = server.port;
  const std::vector<std::string> prompts = {
      "MEDICATIONS: metformin 500 mg twice",   "ASSESSMENT AND PLAN: 1. Hypertension",
      "HISTORY OF PRESENT ILLNESS: The patient is a 67-year-old", "ALLERGIES: No known",
      "PHYSICAL EXAM: General: alert and oriented", "CHIEF COMPLAINT: chest pain",
      "LABS: hemoglobin 11.2, white count",    "SOCIAL HISTORY: former smoker"};
  auto request = [&](size_t i) {
    return json{{"prompt", prompts[i % prompts.size()]}, {"max_tokens", 24}, {"temperature", 0}};
  };
  // Each prompt alone, one at a time: the answers every batched run must give.
  std::vector<std::string> want;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const Response r = post(port, "/v1/completions", request(i));
    REQUIRE(r.status == 200);
    want.push_back(r.j()["choices"][0]["text"]);
  }
  const long rss_before = rss_kib(server.pid());

  // 48 good requests (plain and streamed) and 8 clients that hang up, from 12 threads.
  constexpr int kThreads = 12, kPerThread = 4;
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < kPerThread; ++k) {
        const size_t i = static_cast<size_t>(t * kPerThread + k);
        json req = request(i);
        const bool stream = (i % 3) == 1;
        if (stream) req["stream"] = true;
        if (t % 6 == 5) {  // two threads also drop a long answer midway before each request
          json gone = request(i);
          gone["max_tokens"] = 200;
          gone["stream"] = true;
          if (!abandon(port, gone)) failures[t] += "an abandoned request got no first event\n";
        }
        const Response r = post(port, "/v1/completions", req);
        std::string text;
        if (r.status != 200) {
          failures[t] += "request " + std::to_string(i) + ": status " + std::to_string(r.status) + " " + r.body + "\n";
          continue;
        }
        if (stream) {
          bool done = false;
          for (const json& e : sse_events(r.body, &done)) text += e["choices"][0]["text"].get<std::string>();
          if (!done) failures[t] += "request " + std::to_string(i) + ": stream without [DONE]\n";
        } else {
          text = r.j()["choices"][0]["text"];
        }
        if (text != want[i % prompts.size()])
          failures[t] += "request " + std::to_string(i) + ": got '" + text + "'\n";
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) CHECK(failures[t] == "");

  // Every slot is free again, and the hung-up clients were noticed before their 200 tokens.
  json health;
  for (int i = 0; i < 100; ++i) {
    health = http(port, "GET", "/health").j();
    if (health["slots_busy"] == 0 && health["requests_waiting"] == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(health["slots_busy"] == 0);
  CHECK(health["requests_waiting"] == 0);
  CHECK(health["slots"] == 4);
  const std::string log = server.log();
  size_t n_cancelled = 0;
  for (size_t at = log.find(", cancelled,"); at != std::string::npos; at = log.find(", cancelled,", at + 1)) ++n_cancelled;
  CHECK(n_cancelled >= 1);
  for (size_t at = log.find(" generated, cancelled"); at != std::string::npos;
       at = log.find(" generated, cancelled", at + 1)) {
    const size_t start = log.rfind(' ', at - 1) + 1;
    CHECK(std::atoi(log.c_str() + start) < 200);
  }
  const long rss_after = rss_kib(server.pid());
  INFO("RSS before " << rss_before << " KiB, after " << rss_after << " KiB");
  CHECK(rss_after - rss_before < 32 * 1024);

  // A long shared prefix (a note) is read once: the next request with it reuses it,
  // from its own slot or copied from another's cells.
  std::string note = "HISTORY OF PRESENT ILLNESS: ";
  for (int i = 0; i < 5; ++i) note += "The patient reports intermittent chest pain on exertion, relieved by rest. ";
  const Response r1 = post(port, "/v1/completions", {{"prompt", note}, {"max_tokens", 1}, {"temperature", 0}});
  REQUIRE(r1.status == 200);
  const int n_note = r1.j()["usage"]["prompt_tokens"].get<int>() - 2;  // the last may merge with what follows
  REQUIRE(n_note > 60);
  const json second = {{"prompt", note + "PLAN:"}, {"max_tokens", 8}, {"temperature", 0}};
  const Response r2 = post(port, "/v1/completions", second);
  REQUIRE(r2.status == 200);
  CHECK(r2.j()["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>() >= n_note);
  CHECK(server.stop());
}

// The per-request time budget ends a long generation early, as "length".
TEST_CASE("xent serve: --max-request-time bounds a generation", "[apps][serve]") {
  ServerProcess server({"-m", kModels + "clinical-gpt2-q8_0.gguf", "--max-request-time", "0.001", "-to", "5"});
  INFO(server.log());
  REQUIRE(server.port > 0);
  const Response r = post(server.port, "/v1/completions",
                          {{"prompt", "HISTORY OF PRESENT ILLNESS:"}, {"max_tokens", 200}, {"temperature", 0}});
  REQUIRE(r.status == 200);
  CHECK(r.j()["choices"][0]["finish_reason"] == "length");
  CHECK(r.j()["usage"]["completion_tokens"].get<int>() < 200);
  CHECK(server.stop());
}

namespace {
std::string completion_text(int port, json body) {
  body["prompt"] = "Hello world";
  body["max_tokens"] = 8;
  body["temperature"] = 0;
  const Response r = post(port, "/v1/completions", body);
  if (r.status != 200) return "status " + std::to_string(r.status) + ": " + r.body;
  return json::parse(r.body)["choices"][0]["text"].get<std::string>();
}
}  // namespace

TEST_CASE("xent serve: a LoRA adapter chosen per request with both kinds at once", "[apps][serve]") {
  const std::string base = kModels + "tiny-llama-bpe-f16.gguf";
  const std::string adapter = "test-serve-lora-r8.gguf";
  REQUIRE(std::system((kXent + " bench --synthetic-lora 8 --base " + base + " -o " + adapter + " > /dev/null").c_str()) == 0);
  ServerProcess plain({"-m", base});
  ServerProcess server({"-m", base, "--lora", adapter, "--parallel", "2"});
  INFO(server.log());
  REQUIRE(plain.port > 0);
  REQUIRE(server.port > 0);
  const std::string base_text = completion_text(plain.port, json::object());
  const std::string with = completion_text(server.port, json::object());  // the command line's scale 1
  const std::string without = completion_text(server.port, {{"lora", json::array()}});
  CHECK(with != base_text);
  CHECK(without == base_text);
  CHECK(completion_text(server.port, {{"lora", {{{"id", 0}, {"scale", 0.0}}}}}) == base_text);
  CHECK(completion_text(server.port, {{"lora", {{{"id", 0}, {"scale", 1.0}}}}}) == with);
  // The adapter list, and ids that are not in it.
  const Response list = http(server.port, "GET", "/lora-adapters");
  REQUIRE(list.status == 200);
  CHECK(json::parse(list.body).size() == 1);
  CHECK(json::parse(list.body)[0]["scale"].get<double>() == 1.0);
  const Response bad = post(server.port, "/v1/completions", {{"prompt", "a"}, {"lora", {{{"id", 1}}}}});
  CHECK(bad.status == 400);
  CHECK(bad.is_json_error());
  CHECK(post(plain.port, "/v1/completions", {{"prompt", "a"}, {"lora", {{{"id", 0}}}}}).status == 400);
  // Six requests at once, adapter and not alternating: each gets its own answer (a step
  // serves one adapter set, and cells are reused only under the scales they were made with).
  std::vector<std::string> got(6);
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i)
    threads.emplace_back([&, i] { got[i] = completion_text(server.port, i % 2 ? json{{"lora", json::array()}} : json::object()); });
  for (auto& t : threads) t.join();
  for (int i = 0; i < 6; ++i) CHECK(got[i] == (i % 2 ? base_text : with));
  CHECK(server.stop());
  CHECK(plain.stop());
  std::remove(adapter.c_str());
}
