// GGUF reader: maps the file, walks header → metadata → tensor infos with a cursor that
// checks every count and length against the bytes left before trusting it.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "formats/gguf.h"

namespace xent::gguf {

// The file format is little-endian and we read fields with memcpy; a big-endian host
// would need byte swaps everywhere, which no supported target needs.
static_assert(std::endian::native == std::endian::little, "gguf reader assumes a little-endian host");

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::U8: return "u8";
    case ValueType::I8: return "i8";
    case ValueType::U16: return "u16";
    case ValueType::I16: return "i16";
    case ValueType::U32: return "u32";
    case ValueType::I32: return "i32";
    case ValueType::F32: return "f32";
    case ValueType::BOOL: return "bool";
    case ValueType::STRING: return "string";
    case ValueType::ARRAY: return "array";
    case ValueType::U64: return "u64";
    case ValueType::I64: return "i64";
    case ValueType::F64: return "f64";
  }
  return "unknown";
}

namespace {

constexpr uint32_t kMaxValueType = static_cast<uint32_t>(ValueType::F64);

// Smallest possible encodings, used to reject absurd counts before reserving memory:
// a metadata entry is key length (8) + a 1-byte key + type (4) + a 1-byte value; a tensor
// info is name length (8) + a 1-byte name + n_dims (4) + one dim (8) + type (4) + offset (8).
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;

size_t scalar_bytes(ValueType t) {
  switch (t) {
    case ValueType::U8: case ValueType::I8: case ValueType::BOOL: return 1;
    case ValueType::U16: case ValueType::I16: return 2;
    case ValueType::U32: case ValueType::I32: case ValueType::F32: return 4;
    case ValueType::U64: case ValueType::I64: case ValueType::F64: return 8;
    default: return 0;
  }
}

bool is_unsigned_int(ValueType t) {
  return t == ValueType::U8 || t == ValueType::U16 || t == ValueType::U32 || t == ValueType::U64;
}
bool is_signed_int(ValueType t) {
  return t == ValueType::I8 || t == ValueType::I16 || t == ValueType::I32 || t == ValueType::I64;
}
bool is_int(ValueType t) { return is_unsigned_int(t) || is_signed_int(t); }

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// Reads fields front to back. `context` names the entry being parsed ("key 'x' (at byte
// n)") so that every error says where it is without each call site repeating it.
class Cursor {
 public:
  Cursor(const uint8_t* base, size_t size, std::string origin)
      : base_(base), size_(size), origin_(std::move(origin)) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }
  const uint8_t* here() const { return base_ + pos_; }
  std::string context = "header";

  [[noreturn]] void fail(const std::string& what) const {
    throw Error("gguf: " + origin_ + ": " + context + ": " + what);
  }

  template <class T>
  T read(const char* field) {
    if (left() < sizeof(T))
      fail(std::string(field) + " at byte " + std::to_string(pos_) + " needs " +
           std::to_string(sizeof(T)) + " bytes but only " + std::to_string(left()) +
           " are left (file truncated?)");
    T v;
    std::memcpy(&v, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  // `index` is for messages about array elements. Messages are built only on failure:
  // this runs once per vocabulary entry, and vocabularies reach 250k entries.
  std::string_view read_string(const char* field, uint64_t index = kNoIndex) {
    const uint64_t at = pos_;
    auto name = [&] {
      return index == kNoIndex ? std::string(field) : std::string(field) + "[" + std::to_string(index) + "]";
    };
    if (left() < 8)
      fail(name() + " length at byte " + std::to_string(at) + " needs 8 bytes but only " + std::to_string(left()) +
           " are left (file truncated?)");
    uint64_t n;
    std::memcpy(&n, base_ + pos_, 8);
    pos_ += 8;
    if (n > left())
      fail(name() + " at byte " + std::to_string(at) + ": string length " + std::to_string(n) + " exceeds the " +
           std::to_string(left()) + " bytes left in the file");
    std::string_view s(reinterpret_cast<const char*>(base_ + pos_), n);
    pos_ += n;
    return s;
  }

  void skip(uint64_t n) { pos_ += n; }  // callers have checked n <= left()

 private:
  static constexpr uint64_t kNoIndex = std::numeric_limits<uint64_t>::max();
  const uint8_t* base_;
  uint64_t size_;
  uint64_t pos_ = 0;
  std::string origin_;
};

void read_scalar(Cursor& c, KeyValue& kv) {
  const size_t n = scalar_bytes(kv.type);
  if (c.left() < n)
    c.fail(std::string(value_type_name(kv.type)) + " value at byte " + std::to_string(c.pos()) +
           " needs " + std::to_string(n) + " bytes but only " + std::to_string(c.left()) + " are left");
  const uint8_t* p = c.here();
  auto load = [p](auto v) {
    std::memcpy(&v, p, sizeof v);
    return v;
  };
  auto set_unsigned = [&kv](uint64_t v) {
    kv.u = v;
    if (v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) kv.i = static_cast<int64_t>(v);
    kv.f = static_cast<double>(v);
  };
  auto set_signed = [&kv](int64_t v) {
    kv.i = v;
    kv.f = static_cast<double>(v);
  };
  switch (kv.type) {
    case ValueType::U8: set_unsigned(load(uint8_t{})); break;
    case ValueType::U16: set_unsigned(load(uint16_t{})); break;
    case ValueType::U32: set_unsigned(load(uint32_t{})); break;
    case ValueType::U64: set_unsigned(load(uint64_t{})); break;
    case ValueType::I8: set_signed(load(int8_t{})); break;
    case ValueType::I16: set_signed(load(int16_t{})); break;
    case ValueType::I32: set_signed(load(int32_t{})); break;
    case ValueType::I64: set_signed(load(int64_t{})); break;
    case ValueType::F32: kv.f = load(float{}); break;
    case ValueType::F64: kv.f = load(double{}); break;
    case ValueType::BOOL: kv.u = load(uint8_t{}) != 0; break;
    default: break;
  }
  c.skip(n);
}

void read_array(Cursor& c, KeyValue& kv) {
  const uint64_t at = c.pos();
  const uint32_t raw = c.read<uint32_t>("array element type");
  if (raw == static_cast<uint32_t>(ValueType::ARRAY))
    c.fail("nested arrays are not supported (array element type at byte " + std::to_string(at) + ")");
  if (raw > kMaxValueType)
    c.fail("unknown array element type " + std::to_string(raw) + " at byte " + std::to_string(at));
  kv.array_type = static_cast<ValueType>(raw);
  const uint64_t count_at = c.pos();
  kv.array_count = c.read<uint64_t>("array count");
  if (kv.array_type == ValueType::STRING) {
    // Every string needs at least its 8-byte length, so this bounds the reservation.
    if (kv.array_count > c.left() / 8)
      c.fail("array count " + std::to_string(kv.array_count) + " at byte " + std::to_string(count_at) +
             ": that many strings need at least 8 bytes each but only " + std::to_string(c.left()) +
             " bytes are left");
    kv.array_strings.reserve(kv.array_count);
    for (uint64_t k = 0; k < kv.array_count; ++k) kv.array_strings.push_back(c.read_string("string", k));
    return;
  }
  const size_t elem = scalar_bytes(kv.array_type);
  if (kv.array_count > c.left() / elem)
    c.fail("array count " + std::to_string(kv.array_count) + " at byte " + std::to_string(count_at) + " of " +
           std::to_string(elem) + "-byte " + value_type_name(kv.array_type) +
           " elements extends past end of file (only " + std::to_string(c.left()) + " bytes left)");
  kv.array_data = c.here();
  c.skip(kv.array_count * elem);
}

}  // namespace

std::unique_ptr<Reader> Reader::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("gguf: cannot open '" + path + "': " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw Error("gguf: cannot stat '" + path + "': " + std::strerror(err));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw Error("gguf: '" + path + "' is a directory, not a GGUF file");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error("gguf: '" + path + "' is not a regular file");
  }
  if (st.st_size == 0) {
    ::close(fd);
    throw Error("gguf: '" + path + "' is empty (0 bytes)");
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (map == MAP_FAILED) throw Error("gguf: cannot map '" + path + "': " + std::strerror(map_err));
  // Inference touches every weight once per token; start readahead now. Failure only
  // costs speed, so the result is ignored.
  ::madvise(map, size, MADV_WILLNEED);

  std::unique_ptr<Reader> r(new Reader());
  r->mapping_ = map;  // owned from here: the destructor unmaps even if parse() throws
  r->base_ = static_cast<const uint8_t*>(map);
  r->size_ = size;
  r->path_ = path;
  r->parse();
  return r;
}

std::unique_ptr<Reader> Reader::from_memory(const void* data, size_t size) {
  if (data == nullptr && size != 0) throw Error("gguf: from_memory: null buffer of " + std::to_string(size) + " bytes");
  std::unique_ptr<Reader> r(new Reader());
  r->base_ = static_cast<const uint8_t*>(data);
  r->size_ = size;
  r->parse();
  return r;
}

Reader::~Reader() {
  if (mapping_ != nullptr) ::munmap(mapping_, size_);
}

void Reader::parse() {
  Cursor c(base_, size_, path_.empty() ? std::string("<memory>") : "'" + path_ + "'");

  // --- header -------------------------------------------------------------------------
  if (size_ < 4) c.fail("file is " + std::to_string(size_) + " bytes, too small for the 4-byte magic");
  const uint32_t magic = c.read<uint32_t>("magic");
  if (magic != kMagic)
    c.fail("bad magic " + hex32(magic) + " at byte 0 (expected " + hex32(kMagic) + ", \"GGUF\")");
  version_ = c.read<uint32_t>("version");
  if (version_ == 1) c.fail("version 1 (at byte 4) is not supported; convert the file to GGUF v2 or v3");
  if (version_ != 2 && version_ != 3) {
    const uint32_t swapped = __builtin_bswap32(version_);
    if (swapped >= 1 && swapped <= 3)
      c.fail("version at byte 4 reads " + hex32(version_) + ", i.e. version " + std::to_string(swapped) +
             " byte-swapped: big-endian GGUF files are not supported");
    c.fail("unsupported version " + std::to_string(version_) + " at byte 4 (expected 2 or 3)");
  }
  const uint64_t n_tensors = c.read<uint64_t>("n_tensors");
  const uint64_t n_kv = c.read<uint64_t>("n_kv");
  if (n_kv > c.left() / kMinKvBytes)
    c.fail("n_kv " + std::to_string(n_kv) + " at byte 16 is impossible: each entry takes at least " +
           std::to_string(kMinKvBytes) + " bytes and only " + std::to_string(c.left()) + " are left");
  if (n_tensors > (c.left() - n_kv * kMinKvBytes) / kMinTensorInfoBytes)
    c.fail("n_tensors " + std::to_string(n_tensors) + " at byte 8 is impossible: each tensor info takes at least " +
           std::to_string(kMinTensorInfoBytes) + " bytes and only " + std::to_string(c.left()) + " are left");

  // --- metadata -----------------------------------------------------------------------
  kvs_.reserve(n_kv);
  for (uint64_t k = 0; k < n_kv; ++k) {
    KeyValue kv;
    kv.file_offset = c.pos();
    const std::string at = " (at byte " + std::to_string(kv.file_offset) + ")";
    c.context = "metadata entry " + std::to_string(k) + at;
    const std::string_view key = c.read_string("key");
    if (key.empty()) c.fail("key has length 0");
    kv.key = std::string(key);
    c.context = "key '" + kv.key + "'" + at;
    if (auto it = kv_index_.find(key); it != kv_index_.end())
      c.fail("duplicate key (first defined at byte " + std::to_string(kvs_[it->second].file_offset) + ")");
    const uint64_t type_at = c.pos();
    const uint32_t raw = c.read<uint32_t>("value type");
    if (raw > kMaxValueType)
      c.fail("unknown value type " + std::to_string(raw) + " at byte " + std::to_string(type_at));
    kv.type = static_cast<ValueType>(raw);
    if (kv.type == ValueType::STRING)
      kv.str = c.read_string("string value");
    else if (kv.type == ValueType::ARRAY)
      read_array(c, kv);
    else
      read_scalar(c, kv);
    kv_index_.emplace(key, kvs_.size());  // the view points into the file, which outlives us
    kvs_.push_back(std::move(kv));
  }

  if (const KeyValue* a = find("general.alignment")) {
    c.context = "key 'general.alignment' (at byte " + std::to_string(a->file_offset) + ")";
    if (!is_int(a->type))
      c.fail(std::string("general.alignment must be an unsigned integer, not ") + value_type_name(a->type));
    if (is_signed_int(a->type) && a->i < 0) c.fail("general.alignment is negative (" + std::to_string(a->i) + ")");
    const uint64_t v = is_signed_int(a->type) ? static_cast<uint64_t>(a->i) : a->u;
    if (v == 0 || (v & (v - 1)) != 0 || v > std::numeric_limits<size_t>::max())
      c.fail("general.alignment is " + std::to_string(v) + "; it must be a non-zero power of two");
    alignment_ = static_cast<size_t>(v);
  }

  // --- tensor infos -------------------------------------------------------------------
  tensors_.reserve(n_tensors);
  std::vector<uint64_t> info_at;
  info_at.reserve(n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorInfo t;
    const uint64_t start = c.pos();
    const std::string at = " (at byte " + std::to_string(start) + ")";
    c.context = "tensor info " + std::to_string(k) + at;
    const std::string_view name = c.read_string("tensor name");
    if (name.empty()) c.fail("tensor name has length 0");
    t.name = std::string(name);
    c.context = "tensor '" + t.name + "'" + at;
    if (auto it = tensor_index_.find(name); it != tensor_index_.end())
      c.fail("duplicate tensor name (first defined at byte " + std::to_string(info_at[it->second]) + ")");

    const uint64_t dims_at = c.pos();
    const uint32_t n_dims = c.read<uint32_t>("n_dims");
    if (n_dims == 0 || n_dims > static_cast<uint32_t>(kMaxDims))
      c.fail("n_dims " + std::to_string(n_dims) + " at byte " + std::to_string(dims_at) + " (must be 1 to " +
             std::to_string(kMaxDims) + ")");
    t.n_dims = static_cast<int>(n_dims);
    int64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const std::string field = "ne[" + std::to_string(d) + "]";
      const uint64_t ne_at = c.pos();
      const uint64_t raw_ne = c.read<uint64_t>(field.c_str());
      if (raw_ne == 0) c.fail("dimension " + field + " at byte " + std::to_string(ne_at) + " is 0");
      if (raw_ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        c.fail("dimension " + field + " at byte " + std::to_string(ne_at) + " is negative (" +
               std::to_string(static_cast<int64_t>(raw_ne)) + ")");
      t.ne[d] = static_cast<int64_t>(raw_ne);
      if (__builtin_mul_overflow(n_elements, t.ne[d], &n_elements))
        c.fail("element count overflows int64 at dimension " + field + " = " + std::to_string(t.ne[d]));
    }

    const uint64_t type_at = c.pos();
    const uint32_t raw_type = c.read<uint32_t>("type");
    const DTypeInfo* info = dtype_info(raw_type);
    if (info == nullptr)
      c.fail("unknown tensor type id " + std::to_string(raw_type) + " at byte " + std::to_string(type_at));
    t.type = info->type;
    if (t.ne[0] % info->block_elems != 0)
      c.fail("ne[0] = " + std::to_string(t.ne[0]) + " is not a multiple of the " + info->name + " block size " +
             std::to_string(info->block_elems));
    const uint64_t n_blocks = static_cast<uint64_t>(n_elements / info->block_elems);
    if (__builtin_mul_overflow(n_blocks, static_cast<uint64_t>(info->block_bytes), &t.size_bytes))
      c.fail("data size overflows 64 bits (" + std::to_string(n_elements) + " elements of " + info->name + ")");

    const uint64_t offset_at = c.pos();
    t.offset = c.read<uint64_t>("offset");
    if (t.offset % alignment_ != 0)
      c.fail("data offset " + std::to_string(t.offset) + " at byte " + std::to_string(offset_at) +
             " is not a multiple of the alignment " + std::to_string(alignment_));

    tensor_index_.emplace(name, tensors_.size());
    info_at.push_back(start);
    tensors_.push_back(std::move(t));
  }

  // --- data section -------------------------------------------------------------------
  // The data starts at the next multiple of the alignment. A file without tensors may
  // end before that point (tokenizer-only files do), so only tensor data is bounds-checked.
  // pos < 2^63 and alignment <= 2^63, so this cannot overflow.
  data_offset_ = c.pos() + (alignment_ - c.pos() % alignment_) % alignment_;
  for (size_t k = 0; k < tensors_.size(); ++k) {
    TensorInfo& t = tensors_[k];
    c.context = "tensor '" + t.name + "' (at byte " + std::to_string(info_at[k]) + ")";
    uint64_t begin = 0, end = 0;
    if (__builtin_add_overflow(data_offset_, t.offset, &begin) || __builtin_add_overflow(begin, t.size_bytes, &end))
      c.fail("data offset " + std::to_string(t.offset) + " + size " + std::to_string(t.size_bytes) +
             " overflows 64 bits");
    if (end > size_)
      c.fail("data [" + std::to_string(begin) + ", " + std::to_string(end) + ") extends past end of file (" +
             std::to_string(size_) + " bytes)");
    t.data = base_ + begin;
  }
}

const KeyValue* Reader::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second];
}

const TensorInfo* Reader::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

[[noreturn]] void wrong_type(const KeyValue& kv, const char* wanted) {
  std::string have = value_type_name(kv.type);
  if (kv.type == ValueType::ARRAY) have += std::string(" of ") + value_type_name(kv.array_type);
  throw Error("gguf: key '" + kv.key + "' (at byte " + std::to_string(kv.file_offset) + ") is " + have + ", not " +
              wanted);
}

// Reads element `k` of a numeric array as int64; false if it does not fit.
bool array_int(const KeyValue& kv, uint64_t k, int64_t* out) {
  const uint8_t* p = kv.array_data + k * scalar_bytes(kv.array_type);
  auto load = [p](auto v) {
    std::memcpy(&v, p, sizeof v);
    return v;
  };
  switch (kv.array_type) {
    case ValueType::U8: *out = load(uint8_t{}); return true;
    case ValueType::I8: *out = load(int8_t{}); return true;
    case ValueType::U16: *out = load(uint16_t{}); return true;
    case ValueType::I16: *out = load(int16_t{}); return true;
    case ValueType::U32: *out = load(uint32_t{}); return true;
    case ValueType::I32: *out = load(int32_t{}); return true;
    case ValueType::I64: *out = load(int64_t{}); return true;
    case ValueType::U64: {
      const uint64_t v = load(uint64_t{});
      *out = static_cast<int64_t>(v);
      return v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    }
    default: return false;
  }
}

}  // namespace

std::optional<int64_t> Reader::get_int(std::string_view key) const {
  const KeyValue* kv = find(key);
  if (kv == nullptr) return std::nullopt;
  if (is_signed_int(kv->type)) return kv->i;
  if (!is_unsigned_int(kv->type)) wrong_type(*kv, "an integer");
  if (kv->u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    throw Error("gguf: key '" + kv->key + "' value " + std::to_string(kv->u) + " does not fit in int64");
  return static_cast<int64_t>(kv->u);
}

std::optional<double> Reader::get_float(std::string_view key) const {
  const KeyValue* kv = find(key);
  if (kv == nullptr) return std::nullopt;
  if (kv->type != ValueType::F32 && kv->type != ValueType::F64 && !is_int(kv->type)) wrong_type(*kv, "a number");
  return kv->f;
}

std::optional<bool> Reader::get_bool(std::string_view key) const {
  const KeyValue* kv = find(key);
  if (kv == nullptr) return std::nullopt;
  if (kv->type != ValueType::BOOL) wrong_type(*kv, "a bool");
  return kv->u != 0;
}

std::optional<std::string> Reader::get_string(std::string_view key) const {
  const KeyValue* kv = find(key);
  if (kv == nullptr) return std::nullopt;
  if (kv->type != ValueType::STRING) wrong_type(*kv, "a string");
  return std::string(kv->str);
}

std::optional<std::vector<std::string_view>> Reader::get_string_array(std::string_view key) const {
  const KeyValue* kv = find(key);
  if (kv == nullptr) return std::nullopt;
  if (kv->type != ValueType::ARRAY || kv->array_type != ValueType::STRING) wrong_type(*kv, "an array of strings");
  return kv->array_strings;
}

std::optional<std::vector<float>> Reader::get_float_array(std::string_view key) const {
  const KeyValue* kv = find(key);
  if (kv == nullptr) return std::nullopt;
  if (kv->type != ValueType::ARRAY || (kv->array_type != ValueType::F32 && kv->array_type != ValueType::F64))
    wrong_type(*kv, "an array of floats");
  std::vector<float> out(kv->array_count);
  if (kv->array_type == ValueType::F32) {
    if (!out.empty()) std::memcpy(out.data(), kv->array_data, out.size() * sizeof(float));
  } else {
    for (uint64_t k = 0; k < kv->array_count; ++k) {
      double d;
      std::memcpy(&d, kv->array_data + k * sizeof d, sizeof d);
      out[k] = static_cast<float>(d);
    }
  }
  return out;
}

std::optional<std::vector<int64_t>> Reader::get_int_array(std::string_view key) const {
  const KeyValue* kv = find(key);
  if (kv == nullptr) return std::nullopt;
  if (kv->type != ValueType::ARRAY || !is_int(kv->array_type)) wrong_type(*kv, "an array of integers");
  std::vector<int64_t> out(kv->array_count);
  for (uint64_t k = 0; k < kv->array_count; ++k)
    if (!array_int(*kv, k, &out[k]))
      throw Error("gguf: key '" + kv->key + "' element " + std::to_string(k) + " does not fit in int64");
  return out;
}

bool Reader::lock_memory() {
  if (base_ == nullptr || size_ == 0) return false;
  ::madvise(const_cast<uint8_t*>(base_), size_, MADV_WILLNEED);
  return ::mlock(base_, size_) == 0;
}

}  // namespace xent::gguf
