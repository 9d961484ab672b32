// Tests of the GGUF reader and writer: shipped models, round trips, byte-identical
// copies, hand-made corrupt files and atomic writes.
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "formats/gguf.h"

namespace fs = std::filesystem;
using namespace xent;
using namespace xent::gguf;
using Catch::Matchers::Contains;

namespace {

const fs::path kShared = XENT_SHARED_DIR;

std::vector<fs::path> shipped_gguf_files() {
  std::vector<fs::path> out;
  for (const fs::path& dir : {kShared / "models", kShared / "reference" / "tokenizer"}) {
    if (!fs::is_directory(dir)) continue;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".gguf") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<uint8_t> read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// "" when equal, else where they first differ: Catch would print every byte of a
// multi-megabyte vector.
std::string first_difference(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  const size_t n = std::min(a.size(), b.size());
  const size_t at = static_cast<size_t>(std::mismatch(a.begin(), a.begin() + n, b.begin()).first - a.begin());
  if (at == n && a.size() == b.size()) return "";
  return "sizes " + std::to_string(a.size()) + " and " + std::to_string(b.size()) + ", first difference at byte " +
         std::to_string(at);
}

// A scratch directory under the build tree, removed when the test ends.
// True when nothing but finished files stands in `dir`: no writer's temp file is left.
bool no_temp_files(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp") != std::string::npos) return false;
  return true;
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::path(XENT_BINARY_DIR) / ("test-gguf-tmp-" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path, fs::perms::owner_all, ec);
    fs::remove_all(path, ec);
  }
};

// Little-endian byte builder for hand-made files: independent of the Writer under test,
// so the reader tests do not trust the writer and the writer tests can compare to it.
struct Raw {
  std::vector<uint8_t> b;
  template <class T>
  Raw& put(T v) {
    const uint8_t* p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof v);
    return *this;
  }
  Raw& u8(uint8_t v) { return put(v); }
  Raw& u32(uint32_t v) { return put(v); }
  Raw& u64(uint64_t v) { return put(v); }
  Raw& str(std::string_view s) {
    u64(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Raw& raw(const Raw& r) {
    b.insert(b.end(), r.b.begin(), r.b.end());
    return *this;
  }
  Raw& pad_to(size_t alignment) {
    while (b.size() % alignment != 0) b.push_back(0);
    return *this;
  }
  Raw& zeros(size_t n) {
    b.insert(b.end(), n, 0);
    return *this;
  }
};

Raw kv_u32(std::string_view key, uint32_t v) { return Raw().str(key).u32(4).u32(v); }
Raw kv_string(std::string_view key, std::string_view v) { return Raw().str(key).u32(8).str(v); }
Raw tensor_info(std::string_view name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
  Raw r;
  r.str(name).u32(static_cast<uint32_t>(ne.size()));
  for (uint64_t n : ne) r.u64(n);
  return r.u32(type).u64(offset);
}

// Header + entries + infos, padded, then `data_bytes` of tensor data (a simple pattern).
std::vector<uint8_t> make_file(const std::vector<Raw>& kvs, const std::vector<Raw>& infos, size_t data_bytes,
                               size_t alignment = 32, uint32_t version = 3) {
  Raw r;
  r.u32(0x46554747).u32(version).u64(infos.size()).u64(kvs.size());
  for (const Raw& k : kvs) r.raw(k);
  for (const Raw& t : infos) r.raw(t);
  if (!infos.empty()) r.pad_to(alignment);  // no data section, nothing to align
  for (size_t k = 0; k < data_bytes; ++k) r.u8(static_cast<uint8_t>(k * 7 + 1));
  return r.b;
}

// A small valid file: a string, an array of strings, a u32 and one F32 [4, 2] tensor.
std::vector<uint8_t> small_valid_file() {
  Raw tokens;
  tokens.str("tokenizer.ggml.tokens").u32(9).u32(8).u64(3).str("<unk>").str("<s>").str("");
  return make_file({kv_string("general.architecture", "llama"), tokens, kv_u32("llama.block_count", 2)},
                   {tensor_info("w", {4, 2}, 0, 0)}, 32);
}

// Parses an exact-size heap copy, so that a sanitizer sees any read past the end.
void parse(const std::vector<uint8_t>& bytes) {
  const std::vector<uint8_t> copy(bytes);
  Reader::from_memory(copy.data(), copy.size());
}

// The message of the xent::Error that f throws; any other exception escapes and fails
// the test, and not throwing gives a message no needle matches.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no exception>";
}

void require_error(const std::vector<uint8_t>& bytes, const std::string& needle) {
  REQUIRE_THAT(error_of([&] { parse(bytes); }), Contains(needle));
}

}  // namespace

// --- (1) shipped files -------------------------------------------------------------------

TEST_CASE("every shipped .gguf opens and its tensors lie inside the file", "[gguf]") {
  const auto files = shipped_gguf_files();
  REQUIRE(files.size() >= 20);
  for (const fs::path& p : files) {
    INFO(p.string());
    auto r = Reader::open(p.string());
    CHECK(r->version() == 3);
    CHECK(r->file_size() == fs::file_size(p));
    CHECK(r->data_offset() % r->alignment() == 0);
    CHECK(r->get_string("tokenizer.ggml.model").has_value());
    for (const TensorInfo& t : r->tensors()) {
      CHECK(t.data == r->file_data() + r->data_offset() + t.offset);
      CHECK(t.data + t.size_bytes <= r->file_data() + r->file_size());
      CHECK(r->find_tensor(t.name) == &t);
    }
    for (const KeyValue& kv : r->kvs()) CHECK(r->find(kv.key) == &kv);
  }
}

TEST_CASE("tiny-llama-spm-q4_k_m facts read independently", "[gguf]") {
  // Facts below come from the model card and from a separate Python struct-based dump of
  // the file, not from this reader.
  const fs::path p = kShared / "models" / "tiny-llama-spm-q4_k_m.gguf";
  auto r = Reader::open(p.string());
  CHECK(r->version() == 3);
  CHECK(r->alignment() == 32);
  CHECK(r->kvs().size() == 24);
  CHECK(r->data_offset() == 181088);
  CHECK(r->get_string("general.architecture") == "llama");
  CHECK(r->get_int("llama.embedding_length") == 256);
  CHECK(r->get_int("llama.attention.head_count_kv") == 4);
  CHECK(r->get_int("tokenizer.ggml.bos_token_id") == 1);
  CHECK(r->get_bool("tokenizer.ggml.add_bos_token") == true);
  CHECK(r->get_bool("tokenizer.ggml.add_eos_token") == false);
  CHECK(r->get_float("llama.attention.layer_norm_rms_epsilon").value() == Approx(1e-5));
  CHECK(r->get_float("llama.rope.freq_base") == 10000.0);
  CHECK(r->get_float("llama.block_count") == 4.0);  // integers widen to float
  CHECK_FALSE(r->get_int("no.such.key").has_value());

  REQUIRE(r->tensors().size() == 39);
  const TensorInfo* emb = r->find_tensor("token_embd.weight");
  REQUIRE(emb != nullptr);
  CHECK(emb->type == DType::Q4_K);
  CHECK(emb->n_dims == 2);
  CHECK(emb->ne[0] == 256);
  CHECK(emb->ne[1] == 8192);
  CHECK(emb->offset == 1721344);
  CHECK(emb->size_bytes == 8192 * 144);
  const TensorInfo* out = r->find_tensor("output.weight");
  REQUIRE(out != nullptr);
  CHECK(out->type == DType::Q6_K);
  CHECK(out->offset == 0);
  // The last tensor's data ends exactly at the end of the file.
  const TensorInfo* last = r->find_tensor("blk.3.ffn_up.weight");
  REQUIRE(last != nullptr);
  CHECK(last->data + last->size_bytes == r->file_data() + r->file_size());

  // The mapped tensor bytes are the file's bytes at the documented position.
  const std::vector<uint8_t> file = read_file(p);
  REQUIRE(file.size() == r->file_size());
  CHECK(std::memcmp(emb->data, file.data() + 181088 + 1721344, emb->size_bytes) == 0);

  const auto tokens = r->get_string_array("tokenizer.ggml.tokens");
  REQUIRE(tokens.has_value());
  REQUIRE(tokens->size() == 8192);
  CHECK((*tokens)[0] == "<unk>");
  CHECK((*tokens)[1] == "<s>");
  CHECK((*tokens)[2] == "</s>");
  const auto scores = r->get_float_array("tokenizer.ggml.scores");
  REQUIRE(scores.has_value());
  CHECK(scores->size() == 8192);
  const auto types = r->get_int_array("tokenizer.ggml.token_type");
  REQUIRE(types.has_value());
  REQUIRE(types->size() == 8192);
  CHECK((*types)[0] == 2);
  CHECK((*types)[1] == 3);

  // Wrong-type requests throw with the key's name.
  CHECK_THAT(error_of([&] { r->get_int("general.architecture"); }), Contains("general.architecture"));
  CHECK_THROWS_AS(r->get_float("general.architecture"), Error);
  CHECK_THROWS_AS(r->get_bool("llama.block_count"), Error);
  CHECK_THROWS_AS(r->get_string("llama.block_count"), Error);
  CHECK_THROWS_AS(r->get_int("tokenizer.ggml.add_bos_token"), Error);
  CHECK_THROWS_AS(r->get_string_array("tokenizer.ggml.scores"), Error);
  CHECK_THROWS_AS(r->get_float_array("tokenizer.ggml.tokens"), Error);
  CHECK_THROWS_AS(r->get_int_array("tokenizer.ggml.scores"), Error);
}

TEST_CASE("open() errors name the path", "[gguf]") {
  TempDir tmp;
  const std::string missing = (tmp.path / "missing.gguf").string();
  CHECK_THAT(error_of([&] { Reader::open(missing); }), Contains(missing));
  CHECK_THAT(error_of([&] { Reader::open(tmp.path.string()); }), Contains("directory"));
  const std::string empty = (tmp.path / "empty.gguf").string();
  std::ofstream(empty).close();
  CHECK_THAT(error_of([&] { Reader::open(empty); }), Contains(empty) && Contains("empty"));
  const std::string bad = (tmp.path / "bad.gguf").string();
  std::ofstream(bad) << "not a gguf file at all";
  CHECK_THAT(error_of([&] { Reader::open(bad); }), Contains(bad) && Contains("magic"));
}

TEST_CASE("opening a 30 MB model is fast", "[gguf]") {
  const fs::path p = kShared / "models" / "tiny-llama-spm-f32.gguf";
  Reader::open(p.string());  // warm the page cache
  double best_ms = 1e9;
  for (int k = 0; k < 5; ++k) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = Reader::open(p.string());
    const auto t1 = std::chrono::steady_clock::now();
    best_ms = std::min(best_ms, std::chrono::duration<double, std::milli>(t1 - t0).count());
    REQUIRE(r->tensors().size() == 39);
  }
  INFO("best open time " << best_ms << " ms");
  CHECK(best_ms < 10.0);
}

// --- (2) writer → reader round trip ---------------------------------------------------

TEST_CASE("writer output matches the format byte for byte", "[gguf]") {
  // Expected bytes built by hand from the format description.
  const float w[2] = {1.5f, -2.0f};
  Writer wr;
  wr.set_u32("a", 7);
  wr.add_tensor("t", DType::F32, {2}, w, sizeof w);
  Raw data;
  data.put(w[0]).put(w[1]).zeros(24);
  const std::vector<uint8_t> expected = make_file({kv_u32("a", 7)}, {tensor_info("t", {2}, 0, 0)}, 0);
  std::vector<uint8_t> want = expected;
  want.insert(want.end(), data.b.begin(), data.b.end());
  CHECK(wr.to_bytes() == want);
}

TEST_CASE("every value type round-trips", "[gguf]") {
  Writer w;
  w.set_u8("u8", 250);
  w.set_i8("i8", -100);
  w.set_u16("u16", 65000);
  w.set_i16("i16", -32000);
  w.set_u32("u32", 4000000000u);
  w.set_i32("i32", -2000000000);
  w.set_u64("u64", 18000000000000000000ull);
  w.set_i64("i64", -9000000000000000000ll);
  w.set_f32("f32", 0.1f);
  w.set_f64("f64", 1e300);
  w.set_bool("bool", true);
  w.set_string("str", "h\xC3\xA9llo");
  w.set_string("empty", "");
  w.set_string_array("strs", {"a", "", "\xE2\x96\x81the"});
  w.set_f32_array("f32s", {1.0f, -0.5f, 3e38f});
  w.set_i32_array("i32s", {1, -2, 2147483647});
  w.set_i32_array("none", {});
  w.set_u32("u32", 5);  // replaces, keeps its place
  w.set_string("gone", "x");
  w.remove("gone");

  const std::vector<uint8_t> bytes = w.to_bytes();
  auto r = Reader::from_memory(bytes.data(), bytes.size());
  CHECK(r->version() == 3);
  std::vector<std::string> keys;
  for (const KeyValue& kv : r->kvs()) keys.push_back(kv.key);
  CHECK(keys == std::vector<std::string>{"u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64", "f32", "f64", "bool",
                                         "str", "empty", "strs", "f32s", "i32s", "none"});
  CHECK(r->find("u8")->type == ValueType::U8);
  CHECK(r->get_int("u8") == 250);
  CHECK(r->find("i8")->type == ValueType::I8);
  CHECK(r->get_int("i8") == -100);
  CHECK(r->get_int("u16") == 65000);
  CHECK(r->get_int("i16") == -32000);
  CHECK(r->find("u32")->type == ValueType::U32);
  CHECK(r->get_int("u32") == 5);
  CHECK(r->get_int("i32") == -2000000000);
  CHECK(r->find("u64")->u == 18000000000000000000ull);
  CHECK_THROWS_AS(r->get_int("u64"), Error);  // does not fit in int64
  CHECK(r->get_int("i64") == -9000000000000000000ll);
  CHECK(r->find("f32")->type == ValueType::F32);
  CHECK(r->get_float("f32") == static_cast<double>(0.1f));
  CHECK(r->get_float("f64") == 1e300);
  CHECK_THROWS_AS(r->get_int("f64"), Error);
  CHECK(r->get_bool("bool") == true);
  CHECK(r->get_string("str") == "h\xC3\xA9llo");
  CHECK(r->get_string("empty") == "");
  CHECK(r->get_string_array("strs") == std::vector<std::string_view>{"a", "", "\xE2\x96\x81the"});
  CHECK(r->get_float_array("f32s") == std::vector<float>{1.0f, -0.5f, 3e38f});
  CHECK(r->get_int_array("i32s") == std::vector<int64_t>{1, -2, 2147483647});
  CHECK(r->get_int_array("none") == std::vector<int64_t>{});
  CHECK_FALSE(r->find("gone"));
}

TEST_CASE("copy_kv reproduces arrays of every element type", "[gguf]") {
  // Arrays the writer has no direct setter for, made by hand.
  auto arr = [](std::string_view key, uint32_t type, uint64_t count, const Raw& payload) {
    return Raw().str(key).u32(9).u32(type).u64(count).raw(payload);
  };
  std::vector<Raw> kvs = {
      arr("u8", 0, 3, Raw().u8(1).u8(2).u8(255)),
      arr("i8", 1, 2, Raw().put<int8_t>(-1).put<int8_t>(5)),
      arr("u16", 2, 2, Raw().put<uint16_t>(1).put<uint16_t>(65535)),
      arr("i16", 3, 1, Raw().put<int16_t>(-7)),
      arr("u32", 4, 1, Raw().u32(123456)),
      arr("i32", 5, 1, Raw().put<int32_t>(-5)),
      arr("f32", 6, 1, Raw().put<float>(2.5f)),
      arr("bool", 7, 3, Raw().u8(1).u8(0).u8(1)),
      arr("str", 8, 2, Raw().str("x").str("yz")),
      arr("u64", 10, 1, Raw().u64(1ull << 40)),
      arr("i64", 11, 1, Raw().put<int64_t>(-(1ll << 40))),
      arr("f64", 12, 2, Raw().put<double>(0.25).put<double>(-1e-300)),
      arr("empty", 8, 0, Raw()),
      Raw().str("sb").u32(7).u8(1),
      Raw().str("sf64").u32(12).put<double>(3.25),
      Raw().str("si8").u32(1).put<int8_t>(-3),
  };
  const std::vector<uint8_t> src = make_file(kvs, {}, 0);
  auto r = Reader::from_memory(src.data(), src.size());
  REQUIRE(r->kvs().size() == kvs.size());
  CHECK(r->get_int_array("u16") == std::vector<int64_t>{1, 65535});
  CHECK(r->get_int_array("i64") == std::vector<int64_t>{-(1ll << 40)});
  CHECK(r->get_float_array("f64") == std::vector<float>{0.25f, static_cast<float>(-1e-300)});
  CHECK_THROWS_AS(r->get_int_array("bool"), Error);

  Writer w;
  for (const KeyValue& kv : r->kvs()) w.copy_kv(kv);
  CHECK(first_difference(w.to_bytes(), src) == "");  // no tensors: the file is exactly the hand-made one
}

TEST_CASE("tensors of several types round-trip with alignment 64", "[gguf]") {
  auto pattern = [](size_t n, uint8_t seed) {
    std::vector<uint8_t> v(n);
    for (size_t k = 0; k < n; ++k) v[k] = static_cast<uint8_t>(k * 31 + seed);
    return v;
  };
  struct Case {
    std::string name;
    DType type;
    std::vector<int64_t> ne;
    size_t bytes;
  };
  const std::vector<Case> cases = {
      {"f32", DType::F32, {3, 2}, 24},
      {"f16", DType::F16, {5}, 10},
      {"q8_0", DType::Q8_0, {64, 2}, 4 * 34},
      {"q4_k", DType::Q4_K, {256, 1, 1, 2}, 2 * 144},
      {"i32", DType::I32, {7, 1, 3}, 84},
      {"bf16", DType::BF16, {1}, 2},
  };
  std::vector<std::vector<uint8_t>> data;
  for (size_t k = 0; k < cases.size(); ++k) data.push_back(pattern(cases[k].bytes, static_cast<uint8_t>(k)));

  Writer w;
  w.set_string("general.architecture", "test");
  w.set_alignment(64);
  for (size_t k = 0; k < cases.size(); ++k)
    w.add_tensor(cases[k].name, cases[k].type, cases[k].ne, data[k].data(), data[k].size());
  CHECK_THROWS_AS(w.add_tensor("f32", DType::F32, {1}, data[0].data(), 4), Error);           // duplicate
  CHECK_THROWS_AS(w.add_tensor("bad", DType::Q8_0, {16}, data[0].data(), 17), Error);        // not a block
  CHECK_THROWS_AS(w.add_tensor("bad", DType::F32, {2}, data[0].data(), 12), Error);          // size mismatch
  CHECK_THROWS_AS(w.add_tensor("bad", DType::F32, {1, 1, 1, 1, 1}, data[0].data(), 4), Error);

  const std::vector<uint8_t> bytes = w.to_bytes();
  auto r = Reader::from_memory(bytes.data(), bytes.size());
  CHECK(r->alignment() == 64);
  CHECK(r->get_int("general.alignment") == 64);
  CHECK(r->data_offset() % 64 == 0);
  CHECK(bytes.size() % 64 == 0);
  REQUIRE(r->tensors().size() == cases.size());
  for (size_t k = 0; k < cases.size(); ++k) {
    const TensorInfo& t = r->tensors()[k];
    INFO(t.name);
    CHECK(t.name == cases[k].name);
    CHECK(t.type == cases[k].type);
    CHECK(t.n_dims == static_cast<int>(cases[k].ne.size()));
    for (size_t d = 0; d < cases[k].ne.size(); ++d) CHECK(t.ne[d] == cases[k].ne[d]);
    CHECK(t.offset % 64 == 0);
    CHECK(t.size_bytes == cases[k].bytes);
    CHECK(std::memcmp(t.data, data[k].data(), t.size_bytes) == 0);
  }

  // write() produces the same bytes as to_bytes(), and no temp file stays behind.
  TempDir tmp;
  const fs::path out = tmp.path / "rt.gguf";
  w.write(out.string());
  CHECK(first_difference(read_file(out), bytes) == "");
  CHECK(no_temp_files(tmp.path));

  // Going back to the default alignment keeps the explicit key but lays out at 32.
  w.set_alignment(32);
  const std::vector<uint8_t> b32 = w.to_bytes();
  auto r32 = Reader::from_memory(b32.data(), b32.size());
  CHECK(r32->alignment() == 32);
  CHECK(r32->get_int("general.alignment") == 32);
  w.remove("general.alignment");
  CHECK_THROWS_AS(w.set_alignment(48), Error);
  CHECK_THROWS_AS(w.set_u32("general.alignment", 3), Error);
}

// --- (3) byte-identical copies of shipped models --------------------------------------

TEST_CASE("read -> copy_kv + add_tensor -> write reproduces shipped models", "[gguf]") {
  for (const fs::path& p : shipped_gguf_files()) {
    INFO(p.string());
    auto src = Reader::open(p.string());
    Writer w;
    for (const KeyValue& kv : src->kvs()) w.copy_kv(kv);
    std::vector<int64_t> ne;
    for (const TensorInfo& t : src->tensors()) {
      ne.assign(t.ne, t.ne + t.n_dims);
      w.add_tensor(t.name, t.type, ne, t.data, t.size_bytes);
    }
    const std::vector<uint8_t> copy = w.to_bytes();
    auto dst = Reader::from_memory(copy.data(), copy.size());

    // Metadata: same keys in the same order, and each entry's encoded bytes are identical.
    REQUIRE(dst->kvs().size() == src->kvs().size());
    for (size_t k = 0; k < src->kvs().size(); ++k) {
      const KeyValue& a = src->kvs()[k];
      const KeyValue& b = dst->kvs()[k];
      CHECK(a.key == b.key);
      CHECK(a.type == b.type);
      const uint64_t a_end = k + 1 < src->kvs().size() ? src->kvs()[k + 1].file_offset : 0;
      const uint64_t b_end = k + 1 < dst->kvs().size() ? dst->kvs()[k + 1].file_offset : 0;
      if (a_end != 0) {
        REQUIRE(a_end - a.file_offset == b_end - b.file_offset);
        CHECK(std::memcmp(src->file_data() + a.file_offset, dst->file_data() + b.file_offset,
                          a_end - a.file_offset) == 0);
      }
    }
    REQUIRE(dst->tensors().size() == src->tensors().size());
    for (size_t k = 0; k < src->tensors().size(); ++k) {
      const TensorInfo& a = src->tensors()[k];
      const TensorInfo& b = dst->tensors()[k];
      CHECK(a.name == b.name);
      CHECK(a.type == b.type);
      CHECK(std::equal(a.ne, a.ne + kMaxDims, b.ne));
      REQUIRE(a.size_bytes == b.size_bytes);
      CHECK(std::memcmp(a.data, b.data, a.size_bytes) == 0);
    }

    // Whole-file identity holds when the source laid its data out the way we do:
    // in info order, each tensor padded to the alignment, the file ending padded.
    bool same_layout = true;
    uint64_t offset = 0;
    for (const TensorInfo& t : src->tensors()) {
      same_layout = same_layout && t.offset == offset;
      offset += (t.size_bytes + src->alignment() - 1) / src->alignment() * src->alignment();
    }
    // Tokenizer-only files end right after the metadata, unpadded.
    const uint64_t expected_size = src->tensors().empty() ? src->file_size() : src->data_offset() + offset;
    same_layout = same_layout && expected_size == src->file_size();
    CHECK(same_layout);  // true for every shipped file (checked with an independent dump)
    if (same_layout) {
      CHECK(copy.size() == src->file_size());
      CHECK(std::memcmp(copy.data(), src->file_data(), std::min<size_t>(copy.size(), src->file_size())) == 0);
    }
  }
}

TEST_CASE("a model copied to disk with write() opens and matches", "[gguf]") {
  TempDir tmp;
  auto src = Reader::open((kShared / "models" / "tiny-qwen2-q4_0.gguf").string());
  Writer w;
  for (const KeyValue& kv : src->kvs()) w.copy_kv(kv);
  for (const TensorInfo& t : src->tensors())
    w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims), t.data, t.size_bytes);
  const fs::path out = tmp.path / "copy.gguf";
  w.write(out.string());
  CHECK(first_difference(read_file(out), read_file(src->path())) == "");
  auto back = Reader::open(out.string());
  CHECK(back->tensors().size() == src->tensors().size());
}

// --- (4) corrupt files ------------------------------------------------------------------

TEST_CASE("the small valid file parses", "[gguf]") {
  const std::vector<uint8_t> f = small_valid_file();
  auto r = Reader::from_memory(f.data(), f.size());
  CHECK(r->get_string_array("tokenizer.ggml.tokens") == std::vector<std::string_view>{"<unk>", "<s>", ""});
  REQUIRE(r->tensors().size() == 1);
  CHECK(r->tensors()[0].size_bytes == 32);
  // v2 has the same layout as v3 (64-bit counts); only v1 differs.
  const std::vector<uint8_t> v2 = make_file({kv_u32("a", 1)}, {tensor_info("w", {8}, 0, 0)}, 32, 32, 2);
  auto r2 = Reader::from_memory(v2.data(), v2.size());
  CHECK(r2->version() == 2);
  CHECK(r2->get_int("a") == 1);
}

TEST_CASE("every truncation of a valid file throws, never crashes", "[gguf]") {
  const std::vector<uint8_t> f = small_valid_file();
  for (size_t n = 0; n < f.size(); ++n) {
    INFO("prefix of " << n << " bytes");
    // The file ends with tensor data, so every strict prefix is invalid.
    CHECK_THROWS_AS(parse(std::vector<uint8_t>(f.begin(), f.begin() + n)), Error);
  }
  CHECK_NOTHROW(parse(f));
}

TEST_CASE("corrupt headers and metadata are rejected with a named field", "[gguf]") {
  const std::vector<Raw> none;
  SECTION("bad magic") {
    std::vector<uint8_t> f = small_valid_file();
    f[0] = 'X';
    require_error(f, "magic");
  }
  SECTION("version 1") { require_error(make_file({}, {}, 0, 32, 1), "version 1"); }
  SECTION("version 4") { require_error(make_file({}, {}, 0, 32, 4), "version 4"); }
  SECTION("big-endian") { require_error(make_file({}, {}, 0, 32, 0x03000000), "big-endian"); }
  SECTION("n_kv huge") {
    std::vector<uint8_t> f = small_valid_file();
    std::memset(f.data() + 16, 0xff, 7);
    require_error(f, "n_kv");
  }
  SECTION("n_tensors huge") {
    std::vector<uint8_t> f = small_valid_file();
    const uint64_t n = 1ull << 40;
    std::memcpy(f.data() + 8, &n, 8);
    require_error(f, "n_tensors");
  }
  SECTION("huge key length") {
    require_error(make_file({Raw().u64(~0ull).u32(4).u32(1)}, none, 0), "key at byte 24: string length");
  }
  SECTION("key of length 0") { require_error(make_file({kv_u32("", 1)}, none, 0), "length 0"); }
  SECTION("huge string value length") {
    require_error(make_file({Raw().str("general.name").u32(8).u64(1ull << 62)}, none, 0), "string length");
  }
  SECTION("huge array count") {
    require_error(make_file({Raw().str("a").u32(9).u32(4).u64(1ull << 62).u32(0)}, none, 0), "array count");
  }
  SECTION("array count * element size overflows") {
    // 2^61 * 8 wraps to 0 in 64 bits: a naive check would accept it.
    require_error(make_file({Raw().str("a").u32(9).u32(10).u64(1ull << 61)}, none, 0), "array count");
  }
  SECTION("huge string array count") {
    require_error(make_file({Raw().str("a").u32(9).u32(8).u64(~0ull)}, none, 0), "array count");
  }
  SECTION("string in array too long") {
    require_error(make_file({Raw().str("a").u32(9).u32(8).u64(2).str("ok").u64(1000)}, none, 0), "string[1]");
  }
  SECTION("nested array") {
    require_error(make_file({Raw().str("a").u32(9).u32(9).u64(1).u32(4).u64(1).u32(5)}, none, 0), "nested");
  }
  SECTION("unknown metadata value type") {
    require_error(make_file({Raw().str("weird").u32(13).u32(0)}, none, 0), "value type 13");
  }
  SECTION("unknown array element type") {
    require_error(make_file({Raw().str("weird").u32(9).u32(99).u64(0)}, none, 0), "element type 99");
  }
  SECTION("duplicate key") {
    require_error(make_file({kv_u32("a.b", 1), kv_u32("a.b", 2)}, none, 0), "duplicate key");
  }
  SECTION("general.alignment 0") {
    require_error(make_file({kv_u32("general.alignment", 0)}, none, 0), "general.alignment");
  }
  SECTION("general.alignment 3") {
    require_error(make_file({kv_u32("general.alignment", 3)}, none, 0), "general.alignment");
  }
  SECTION("general.alignment as a string") {
    require_error(make_file({kv_string("general.alignment", "32")}, none, 0), "general.alignment");
  }
}

TEST_CASE("corrupt tensor infos are rejected with a named field", "[gguf]") {
  const std::vector<Raw> none;
  SECTION("n_dims 0") { require_error(make_file(none, {tensor_info("t", {}, 0, 0)}, 64), "n_dims 0"); }
  SECTION("n_dims 5") {
    require_error(make_file(none, {tensor_info("t", {1, 1, 1, 1, 1}, 0, 0)}, 64), "n_dims 5");
  }
  SECTION("dimension 0") { require_error(make_file(none, {tensor_info("t", {4, 0}, 0, 0)}, 64), "ne[1]"); }
  SECTION("negative dimension") {
    require_error(make_file(none, {tensor_info("t", {~0ull}, 0, 0)}, 64), "negative");
  }
  SECTION("element count overflow") {
    require_error(make_file(none, {tensor_info("t", {1ull << 32, 1ull << 32}, 0, 0)}, 64), "overflows");
  }
  SECTION("byte size overflow") {
    // 2^62 f32 elements fit in int64 but need 2^64 bytes.
    require_error(make_file(none, {tensor_info("t", {1ull << 62}, 0, 0)}, 64), "overflows");
  }
  SECTION("unknown tensor type") {
    require_error(make_file(none, {tensor_info("t", {4}, 99, 0)}, 64), "type id 99");
  }
  SECTION("ne[0] not a multiple of the block size") {
    require_error(make_file(none, {tensor_info("t", {16}, 8, 0)}, 64), "block size");
  }
  SECTION("misaligned offset") {
    require_error(make_file(none, {tensor_info("t", {4}, 0, 8)}, 64), "alignment");
  }
  SECTION("data past end of file") {
    require_error(make_file(none, {tensor_info("blk.0.attn_q.weight", {4, 4}, 0, 0)}, 63),
                  "tensor 'blk.0.attn_q.weight'");
    require_error(make_file(none, {tensor_info("t", {4, 4}, 0, 0)}, 63), "past end of file");
  }
  SECTION("offset near 2^64") {
    require_error(make_file(none, {tensor_info("t", {4}, 0, ~0ull - 31)}, 64), "overflows");
  }
  SECTION("duplicate tensor name") {
    require_error(make_file(none, {tensor_info("t", {4}, 0, 0), tensor_info("t", {4}, 0, 32)}, 64),
                  "duplicate tensor name");
  }
  SECTION("tensor name of length 0") {
    require_error(make_file(none, {tensor_info("", {4}, 0, 0)}, 64), "length 0");
  }
  SECTION("alignment 64 is honoured") {
    // Offset 32 is fine at the default alignment and wrong once the file declares 64.
    const auto ok = make_file(none, {tensor_info("a", {4}, 0, 0), tensor_info("b", {4}, 0, 32)}, 64);
    CHECK_NOTHROW(parse(ok));
    require_error(make_file({kv_u32("general.alignment", 64)},
                            {tensor_info("a", {4}, 0, 0), tensor_info("b", {4}, 0, 32)}, 64, 64),
                  "alignment 64");
  }
}

// --- (5) atomic write -------------------------------------------------------------------

namespace {

void fill_small(Writer& w, const std::vector<float>& data) {
  w.set_string("general.architecture", "new");
  w.add_tensor("t", DType::F32, {static_cast<int64_t>(data.size())}, data.data(), data.size() * sizeof(float));
}

void write_text(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

std::string read_text(const fs::path& p) {
  const std::vector<uint8_t> b = read_file(p);
  return std::string(b.begin(), b.end());
}

}  // namespace

TEST_CASE("write() over an existing file is atomic", "[gguf]") {
  TempDir tmp;
  const fs::path target = tmp.path / "model.gguf";
  const std::vector<float> data(1000, 1.0f);
  Writer w;
  fill_small(w, data);

  SECTION("success replaces the file and leaves no temp file") {
    write_text(target, "old contents");
    w.write(target.string());
    CHECK(first_difference(read_file(target), w.to_bytes()) == "");
    CHECK(no_temp_files(tmp.path));
  }

  SECTION("a directory without write permission") {
    if (::geteuid() == 0) {
      WARN("running as root: permission bits do not stop writes, covered by the cases below");
    } else {
      write_text(target, "old contents");
      fs::permissions(tmp.path, fs::perms::owner_read | fs::perms::owner_exec);
      CHECK_THAT(error_of([&] { w.write(target.string()); }), Contains(".tmp"));
      fs::permissions(tmp.path, fs::perms::owner_all);
      CHECK(read_text(target) == "old contents");
      CHECK(no_temp_files(tmp.path));
    }
  }

  SECTION("the temp file cannot be created") {
    // A file name near NAME_MAX (255 bytes): the target fits, its temp name does not, so
    // open() fails with ENAMETOOLONG.
    const fs::path long_target = tmp.path / (std::string(250, 'm') + ".gguf");
    write_text(long_target, "old contents");
    CHECK_THAT(error_of([&] { w.write(long_target.string()); }), Contains(".tmp"));
    CHECK(read_text(long_target) == "old contents");
    CHECK(no_temp_files(tmp.path));
  }

  SECTION("a failure half-way through the data") {
    // A file-size limit makes write() fail with EFBIG after some bytes; works as root too.
    write_text(target, "old contents");
    struct rlimit old_limit;
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    struct rlimit small = old_limit;
    small.rlim_cur = 1024;
    auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    bool threw = false;
    std::string what;
    try {
      w.write(target.string());
    } catch (const Error& e) {
      threw = true;
      what = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &old_limit);
    ::signal(SIGXFSZ, old_handler);
    INFO(what);
    CHECK(threw);
    CHECK(read_text(target) == "old contents");
    CHECK(no_temp_files(tmp.path));
  }

  SECTION("a target directory that does not exist") {
    CHECK_THROWS_AS(w.write((tmp.path / "nope" / "model.gguf").string()), Error);
  }
}
