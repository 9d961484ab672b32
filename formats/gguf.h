// GGUF v2/v3 reading over a memory map (zero-copy) and atomic writing.
// Every size, count and offset read from a file is bounds-checked before use.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "formats/dtype.h"
#include "formats/error.h"

namespace xent::gguf {

// On-disk metadata value type ids.
enum class ValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
const char* value_type_name(ValueType t);

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian u32
constexpr size_t kDefaultAlignment = 32;
constexpr int kMaxDims = 4;

// One metadata entry. Strings and arrays point into the mapping (or the reader's
// buffer) and live as long as the Reader.
struct KeyValue {
  std::string key;
  ValueType type = ValueType::U8;
  uint64_t file_offset = 0;  // where the entry starts, for error messages

  // Scalars (type != STRING/ARRAY): the value widened.
  uint64_t u = 0;  // unsigned integers and bool
  int64_t i = 0;   // signed integers (also set for unsigned that fit)
  double f = 0;    // F32/F64 (also set for integers)
  std::string_view str;  // STRING

  // ARRAY
  ValueType array_type = ValueType::U8;
  uint64_t array_count = 0;
  const uint8_t* array_data = nullptr;       // packed little-endian numbers (non-string arrays)
  std::vector<std::string_view> array_strings;  // STRING arrays
};

struct TensorInfo {
  std::string name;
  DType type = DType::F32;
  int n_dims = 0;
  int64_t ne[kMaxDims] = {1, 1, 1, 1};  // ne[0] is the innermost (row) dimension
  uint64_t offset = 0;                  // relative to the start of the data section
  uint64_t size_bytes = 0;
  const uint8_t* data = nullptr;        // into the mapping
  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

class Reader {
 public:
  // Maps the file read-only. Throws xent::Error naming the field and byte offset on
  // any malformed content ("gguf: tensor 'x' data [a, b) past end of file (size n)").
  static std::unique_ptr<Reader> open(const std::string& path);
  // Parses a buffer the caller keeps alive (tests, fuzzing).
  static std::unique_ptr<Reader> from_memory(const void* data, size_t size);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }
  size_t file_size() const { return size_; }
  const uint8_t* file_data() const { return base_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the tensor data section
  const std::string& path() const { return path_; }

  const std::vector<KeyValue>& kvs() const { return kvs_; }
  const KeyValue* find(std::string_view key) const;
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;

  // Typed getters. std::nullopt when absent; throw xent::Error when present with a
  // type that cannot represent the request (e.g. a string asked for as an integer,
  // a negative value asked for as unsigned).
  std::optional<int64_t> get_int(std::string_view key) const;   // any integer type
  std::optional<double> get_float(std::string_view key) const;  // F32/F64 or any integer
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  // Arrays: nullopt when absent; throw on wrong element type.
  std::optional<std::vector<std::string_view>> get_string_array(std::string_view key) const;
  std::optional<std::vector<float>> get_float_array(std::string_view key) const;   // F32/F64 elements
  std::optional<std::vector<int64_t>> get_int_array(std::string_view key) const;   // integer elements

  // Advise the kernel / lock pages (best effort, for --mlock). Returns false on failure.
  bool lock_memory();

 private:
  Reader() = default;
  void parse();
  std::string path_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  void* mapping_ = nullptr;  // non-null when this Reader owns an mmap
  uint32_t version_ = 0;
  size_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<KeyValue> kvs_;
  std::vector<TensorInfo> tensors_;
  // Name -> index. The views point into the mapping (or the caller's buffer), which lives
  // as long as the Reader, so the index needs no copies of the names.
  std::unordered_map<std::string_view, size_t> kv_index_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

// Builds a GGUF v3 file. Metadata keys keep insertion order; setting a key twice
// replaces its value. Tensors are written in insertion order, each aligned.
class Writer {
 public:
  Writer();
  ~Writer();
  void set_u8(const std::string& key, uint8_t v);
  void set_i8(const std::string& key, int8_t v);
  void set_u16(const std::string& key, uint16_t v);
  void set_i16(const std::string& key, int16_t v);
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_u64(const std::string& key, uint64_t v);
  void set_i64(const std::string& key, int64_t v);
  void set_f32(const std::string& key, float v);
  void set_f64(const std::string& key, double v);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, std::string_view v);
  void set_string_array(const std::string& key, const std::vector<std::string>& v);
  void set_f32_array(const std::string& key, const std::vector<float>& v);
  void set_i32_array(const std::string& key, const std::vector<int32_t>& v);
  // Copies a key/value (any type, arrays included) from a Reader.
  void copy_kv(const KeyValue& kv);
  void remove(const std::string& key);
  void set_alignment(size_t alignment);  // also writes general.alignment when != 32

  // The data must stay valid until write() returns. ne[0] is the innermost dim.
  void add_tensor(const std::string& name, DType type, const std::vector<int64_t>& ne,
                  const void* data, size_t size_bytes);

  // Writes a temp file beside path, fsyncs, renames over path: an interrupted write leaves
  // any old file intact. Throws xent::Error on I/O failure.
  void write(const std::string& path) const;
  // The same bytes, in memory (tests).
  std::vector<uint8_t> to_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace xent::gguf
