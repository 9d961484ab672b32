// `xent bench`: the CSV/JSON/markdown reports have llama-bench's shape and positive speeds,
// -p 0 skips pp, bad input fails cleanly, and --synthetic writes loadable, reproducible models
// whose tensor types are the ones `xent quantize` chooses.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/run-xent.h"
#include "formats/gguf.h"
#include "runtime/inference/model.h"

namespace fs = std::filesystem;

namespace {

const std::string kTmp = std::string(XENT_BINARY_DIR) + "/test-bench";
const std::string kModel = std::string(XENT_SHARED_DIR) + "/models/tiny-llama-bpe-q8_0.gguf";

using Run = xent::test::XentRun;

Run run_xent(const std::string& args) { return xent::test::run_xent(kTmp, args); }

// One CSV line; fields may be double-quoted.
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> f(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') f.back() += '"', ++i;
      else if (c == '"') quoted = false;
      else f.back() += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      f.emplace_back();
    } else {
      f.back() += c;
    }
  }
  return f;
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("bench --output csv has llama-bench's columns and one row per test and thread count", "[tools][bench]") {
  const Run r = run_xent("bench -m " + kModel + " -p 16 -n 4 -r 2 -t 1,2 --output csv");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const std::vector<std::string> ls = lines(r.out);
  REQUIRE(ls.size() == 5);  // header + (pp16, tg4) x (1, 2 threads)
  const std::vector<std::string> header = csv_fields(ls[0]);
  REQUIRE(header.size() >= 4);
  CHECK(header[header.size() - 2] == "avg_ts");
  CHECK(header[header.size() - 1] == "stddev_ts");
  std::map<std::string, size_t> col;
  for (size_t i = 0; i < header.size(); ++i) col[header[i]] = i;
  for (const char* c : {"model_filename", "model_type", "n_threads", "n_prompt", "n_gen", "test", "load_ms", "peak_rss_bytes"})
    CHECK(col.count(c) == 1);
  std::map<std::string, int> tests;
  for (size_t i = 1; i < ls.size(); ++i) {
    const std::vector<std::string> f = csv_fields(ls[i]);
    REQUIRE(f.size() == header.size());
    ++tests[f[col["test"]] + "/t" + f[col["n_threads"]]];
    CHECK(std::stod(f[col["avg_ts"]]) > 0);
    CHECK(std::stod(f[col["stddev_ts"]]) >= 0);
    CHECK(std::stod(f[col["peak_rss_bytes"]]) > 0);
    CHECK(f[col["model_filename"]] == kModel);
    if (f[col["test"]] == "pp16") CHECK((f[col["n_prompt"]] == "16" && f[col["n_gen"]] == "0"));
  }
  CHECK(tests == std::map<std::string, int>{{"pp16/t1", 1}, {"pp16/t2", 1}, {"tg4/t1", 1}, {"tg4/t2", 1}});
}

TEST_CASE("bench --output json is an array of results; -p 0 skips pp", "[tools][bench]") {
  const Run r = run_xent("bench -m " + kModel + " -p 0 -n 4 -r 2 -t 1 --output json");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  REQUIRE(j.is_array());
  REQUIRE(j.size() == 1);
  CHECK(j[0]["test"] == "tg4");
  CHECK(j[0]["n_prompt"] == 0);
  CHECK(j[0]["samples_ns"].size() == 2);
  CHECK(j[0]["avg_ts"].get<double>() > 0);
  // avg_ts is the mean of the per-repetition rates.
  const double mean = (j[0]["samples_ts"][0].get<double>() + j[0]["samples_ts"][1].get<double>()) / 2;
  CHECK(j[0]["avg_ts"].get<double>() == Approx(mean));
  CHECK(j[0]["model_n_params"].get<double>() > 1e6);
}

TEST_CASE("bench -np N: N sequences decode in shared batches, t/s over all their tokens", "[tools][bench]") {
  const Run r = run_xent("bench -m " + kModel + " -p 8 -n 4 -np 1,3 -r 2 -t 1 --output json");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  REQUIRE(j.size() == 4);
  std::vector<std::string> tests;
  for (const auto& row : j) tests.push_back(row["test"]);
  CHECK(tests == std::vector<std::string>{"pp8", "pp8 x3", "tg4", "tg4 x3"});
  CHECK(j[3]["n_seq"] == 3);
  // Rate = tokens of every sequence / time.
  const double ns = j[3]["samples_ns"][0].get<double>();
  CHECK(j[3]["samples_ts"][0].get<double>() == Approx(1e9 * 4 * 3 / ns));
  CHECK(run_xent("bench -m " + kModel + " -p 0 -n 4 --np 0").exit_code != 0);
}

TEST_CASE("bench markdown table has llama-bench's layout", "[tools][bench]") {
  const Run r = run_xent("bench -m " + kModel + " -p 16 -n 4 -r 1 -t 1");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const std::vector<std::string> ls = lines(r.out);
  REQUIRE(ls.size() >= 4);
  // The cells between the pipes, trimmed: llama-bench's columns in its order.
  std::vector<std::string> cells;
  std::istringstream row(ls[0]);
  for (std::string cell; std::getline(row, cell, '|');) {
    const size_t a = cell.find_first_not_of(' '), b = cell.find_last_not_of(' ');
    if (a != std::string::npos) cells.push_back(cell.substr(a, b - a + 1));
  }
  CHECK(cells == std::vector<std::string>{"model", "size", "params", "backend", "threads", "test", "t/s"});
  CHECK(ls[1].find("---:") != std::string::npos);
  CHECK(ls[2].find("pp16") != std::string::npos);
  CHECK(ls[3].find("tg4") != std::string::npos);
  CHECK(ls[3].find("±") != std::string::npos);
  CHECK(r.out.find("peak RSS") != std::string::npos);
}

TEST_CASE("bench fails cleanly on bad input", "[tools][bench]") {
  Run r = run_xent("bench -m " + kTmp + "/no-such-model.gguf -p 16 -n 4 --output csv");
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("no-such-model.gguf") != std::string::npos);
  CHECK(r.out.empty());
  r = run_xent("bench -m " + kModel + " -p 0 -n 0");
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("nothing to run") != std::string::npos);
  r = run_xent("bench --synthetic no-such-shape --type q8_0 -o " + kTmp + "/x.gguf");
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("gpt2-124m") != std::string::npos);  // lists the known shapes
  // A text file is not a model: an error, not a crash.
  { std::ofstream(kTmp + "/not-a-model.gguf") << "hello"; }
  r = run_xent("bench -m " + kTmp + "/not-a-model.gguf -p 4 -n 0 --output json");
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("xent bench") != std::string::npos);
}

TEST_CASE("bench --mem reports bandwidth and the fraction generation reaches", "[tools][bench]") {
  const Run r = run_xent("bench --mem -m " + kModel + " -p 0 -n 4 -r 1 -t 1 --output json --plot " + kTmp + "/bench.png");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("GB/s") != std::string::npos);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  REQUIRE(j.size() == 1);
  CHECK(j[0]["mem_bw_gbs"].get<double>() > 0.1);
  const double f = j[0]["bw_fraction"].get<double>();
  CHECK(f > 0);
  CHECK(f == Approx(j[0]["avg_ts"].get<double>() * j[0]["weight_bytes_per_token"].get<double>() /
                    (j[0]["mem_bw_gbs"].get<double>() * 1e9)));
  const std::string png = read_bytes(kTmp + "/bench.png");
  REQUIRE(png.size() > 100);
  CHECK(png.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
}

TEST_CASE("bench --synthetic writes a loadable, reproducible model in quantize's types", "[tools][bench]") {
  const std::string a = kTmp + "/tiny-a.gguf", b = kTmp + "/tiny-b.gguf", c = kTmp + "/tiny-c.gguf";
  REQUIRE(run_xent("bench --synthetic tiny-test --type q8_0 -o " + a).exit_code == 0);
  REQUIRE(run_xent("bench --synthetic tiny-test --type q8_0 -o " + b).exit_code == 0);
  REQUIRE(run_xent("bench --synthetic tiny-test --type q8_0 --synthetic-seed 7 -o " + c).exit_code == 0);
  CHECK(read_bytes(a) == read_bytes(b));
  CHECK(read_bytes(a) != read_bytes(c));

  std::unique_ptr<xent::Model> m = xent::Model::load(a);
  CHECK(m->hparams().arch == "llama");
  CHECK(m->hparams().n_embd == 64);
  CHECK(m->hparams().n_layer == 2);
  CHECK(m->hparams().n_head_kv == 2);
  CHECK(m->hparams().n_vocab == 512);
  for (const xent::gguf::TensorInfo& t : m->file().tensors())
    CHECK(t.type == (t.n_dims == 2 ? xent::DType::Q8_0 : xent::DType::F32));
  // The synthetic vocabulary is byte-level BPE: any text survives a round trip.
  const std::string text = "Hello, the world! \xc3\xa9t\xc3\xa9 42\n";
  CHECK(m->tokenizer().decode(m->tokenizer().encode(text, false, false)) == text);

  const Run r = run_xent("bench -m " + a + " -p 8 -n 4 -r 1 -t 1 --output json");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  REQUIRE(j.size() == 2);
  CHECK(j[0]["avg_ts"].get<double>() > 0);
  CHECK(j[1]["avg_ts"].get<double>() > 0);
}

TEST_CASE("bench --synthetic gpt2 shape loads and matches xent quantize's K-mix types", "[tools][bench]") {
  const std::string f32 = kTmp + "/tiny-gpt2-f32.gguf", direct = kTmp + "/tiny-gpt2-q4_k_m.gguf",
                    requant = kTmp + "/tiny-gpt2-q4_k_m-from-f32.gguf";
  REQUIRE(run_xent("bench --synthetic tiny-test-gpt2 --type f32 -o " + f32).exit_code == 0);
  REQUIRE(run_xent("bench --synthetic tiny-test-gpt2 --type q4_k_m -o " + direct).exit_code == 0);
  REQUIRE(run_xent("quantize " + f32 + " " + requant + " q4_k_m").exit_code == 0);
  std::unique_ptr<xent::Model> m = xent::Model::load(direct);
  CHECK(m->hparams().arch == "gpt2");
  // GPT-2 ties its output to the embedding, but its GGUF files carry output.weight (the
  // peer loads no GPT-2 file without it), so the synthetic shape writes one too.
  CHECK(m->file().find_tensor("output.weight") != nullptr);
  const std::unique_ptr<xent::gguf::Reader> q = xent::gguf::Reader::open(requant);
  REQUIRE(q->tensors().size() == m->file().tensors().size());
  for (const xent::gguf::TensorInfo& t : m->file().tensors()) {
    INFO(t.name);
    const xent::gguf::TensorInfo* u = q->find_tensor(t.name);
    REQUIRE(u != nullptr);
    CHECK(t.type == u->type);
    // Drawn in F32 and quantized by the same code: the same bytes.
    CHECK(t.size_bytes == u->size_bytes);
    CHECK(std::equal(t.data, t.data + t.size_bytes, u->data));
  }
  const Run r = run_xent("bench -m " + direct + " -p 8 -n 2 -r 1 -t 1 --output csv");
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(lines(r.out).size() == 3);
}

TEST_CASE("bench --autocomplete replays a note and reports latency and work per keystroke", "[tools][bench]") {
  // 240 characters of a clinical note (ASCII: one keystroke per byte), typed into the demo model.
  std::string note = read_bytes(std::string(XENT_SHARED_DIR) + "/data/clinical-notes-sample.txt");
  REQUIRE(note.size() > 240);
  note.resize(240);
  fs::create_directories(kTmp);
  const std::string note_path = kTmp + "/note-" + std::to_string(::getpid()) + ".txt";
  std::ofstream(note_path, std::ios::binary) << note;
  const std::string clinical = std::string(XENT_SHARED_DIR) + "/models/clinical-gpt2-q8_0.gguf";

  const Run r = run_xent("bench --autocomplete -m " + clinical + " -f " + note_path + " -t 1 --output json");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  CHECK(j.at("keystrokes").get<int>() == 240);
  CHECK(j.at("threads").get<int>() == 1);
  const double p50 = j.at("p50_ms"), p95 = j.at("p95_ms"), p99 = j.at("p99_ms");
  CHECK(p50 >= 0.0);
  CHECK(p50 <= p95);
  CHECK(p95 <= p99);
  // The text before the word is cached: a keystroke evaluates well under a word of context.
  CHECK(j.at("context_tokens_per_keystroke").get<double>() > 0.0);
  CHECK(j.at("context_tokens_per_keystroke").get<double>() <= 2.0);
  // Inside a word most of the candidate tree is known from the previous keystroke.
  CHECK(j.at("tree_nodes_reused_per_keystroke").get<double>() > 0.0);
  // Measured 0.82 on the first 500 characters: the demo model predicts its own notes.
  CHECK(j.at("top1_accuracy").get<double>() > 0.5);

  // One word per suggestion: taking it a word at a time is taking it whole.
  CHECK(j.at("keystroke_savings_top1_by_word").get<double>() == j.at("keystroke_savings_top1").get<double>());

  // Phrases: scored the same way, and a phrase whose first words are right saves keys too.
  const Run w = run_xent("bench --autocomplete -m " + clinical + " -f " + note_path + " -t 1 --words 2 --output json");
  INFO(w.err);
  REQUIRE(w.exit_code == 0);
  const nlohmann::json jw = nlohmann::json::parse(w.out);
  CHECK(jw.at("max_words").get<int>() == 2);
  CHECK(jw.at("keystroke_savings_top1").get<double>() > 0.0);
  CHECK(jw.at("keystroke_savings_top1_by_word").get<double>() > jw.at("keystroke_savings_top1").get<double>());
  CHECK(run_xent("bench -m " + clinical + " --words 2").exit_code != 0);  // --words needs --autocomplete

  CHECK(run_xent("bench --autocomplete -m " + clinical).exit_code != 0);  // no -f
  CHECK(run_xent("bench --autocomplete -m " + clinical + " -f " + note_path + " --output csv").exit_code != 0);
  fs::remove(note_path);
}

TEST_CASE("bench-autocomplete keystroke savings on the demo model hold", "[tools][bench][autocomplete]") {
  // The first 1,000 bytes of the sample notes at default settings. The replay is greedy and
  // deterministic; measured 2026-12-07 (1 and 2 threads alike): savings 49.3 % top-1, 53.1 %
  // top-3; word hit 72.1 % / 74.0 %. The bounds leave one point for arithmetic noise
  // (a changed kernel moving a near-tie) and fail on any real loss.
  std::string note = read_bytes(std::string(XENT_SHARED_DIR) + "/data/clinical-notes-sample.txt");
  REQUIRE(note.size() > 1000);
  note.resize(1000);
  fs::create_directories(kTmp);
  const std::string note_path = kTmp + "/savings-" + std::to_string(::getpid()) + ".txt";
  std::ofstream(note_path, std::ios::binary) << note;
  const std::string clinical = std::string(XENT_SHARED_DIR) + "/models/clinical-gpt2-q8_0.gguf";
  const Run r = run_xent("bench-autocomplete -m " + clinical + " -f " + note_path + " -t 1 --output json");
  fs::remove(note_path);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  INFO(r.out);
  CHECK(j.at("keystroke_savings_top1").get<double>() >= 0.483);
  CHECK(j.at("keystroke_savings_topn").get<double>() >= 0.521);
  CHECK(j.at("word_hit_top1").get<double>() >= 0.711);
  // Top-N can only add to top-1.
  CHECK(j.at("keystroke_savings_topn").get<double>() >= j.at("keystroke_savings_top1").get<double>());
  CHECK(j.at("words").get<int>() > 100);
}
