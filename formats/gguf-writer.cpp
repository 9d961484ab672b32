// GGUF v3 writer: metadata and tensor infos are encoded into one buffer up front; tensor
// data is streamed from the caller's memory, so writing a model never copies its weights.

#include <algorithm>
#include <cstring>
#include <limits>

#include "formats/gguf.h"

#include "formats/atomic-file.h"

namespace xent::gguf {

namespace {

constexpr const char* kAlignmentKey = "general.alignment";

// resize + memcpy rather than insert: g++ 12 at -O3 warns falsely
// (-Wstringop-overflow) on vector<uint8_t>::insert of a few bytes.
void put_bytes(std::vector<uint8_t>& out, const void* p, size_t n) {
  if (n == 0) return;
  const size_t at = out.size();
  out.resize(at + n);
  std::memcpy(out.data() + at, p, n);
}

template <class T>
void put(std::vector<uint8_t>& out, T v) {
  put_bytes(out, &v, sizeof v);
}

void put_string(std::vector<uint8_t>& out, std::string_view s) {
  put<uint64_t>(out, s.size());
  put_bytes(out, s.data(), s.size());
}

size_t element_bytes(ValueType t) {
  switch (t) {
    case ValueType::U8: case ValueType::I8: case ValueType::BOOL: return 1;
    case ValueType::U16: case ValueType::I16: return 2;
    case ValueType::U32: case ValueType::I32: case ValueType::F32: return 4;
    case ValueType::U64: case ValueType::I64: case ValueType::F64: return 8;
    default: return 0;
  }
}

uint64_t padding(uint64_t n, uint64_t alignment) { return (alignment - n % alignment) % alignment; }

bool is_power_of_two(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

// The integer stored in an encoded scalar value (type id + payload), if it is an integer.
std::optional<int64_t> encoded_int(const std::vector<uint8_t>& value) {
  uint32_t raw;
  std::memcpy(&raw, value.data(), 4);
  const uint8_t* p = value.data() + 4;
  auto load = [p](auto v) {
    std::memcpy(&v, p, sizeof v);
    return static_cast<int64_t>(v);
  };
  switch (static_cast<ValueType>(raw)) {
    case ValueType::U8: return load(uint8_t{});
    case ValueType::I8: return load(int8_t{});
    case ValueType::U16: return load(uint16_t{});
    case ValueType::I16: return load(int16_t{});
    case ValueType::U32: return load(uint32_t{});
    case ValueType::I32: return load(int32_t{});
    case ValueType::U64: return load(uint64_t{});  // > 2^63 reads negative: rejected as not a power of two
    case ValueType::I64: return load(int64_t{});
    default: return std::nullopt;
  }
}

}  // namespace

struct Writer::Impl {
  struct Entry {
    std::string key;
    std::vector<uint8_t> value;  // type id (u32) followed by the encoded value
  };
  struct Tensor {
    std::string name;
    DType type;
    std::vector<int64_t> ne;
    const void* data;
    size_t size_bytes;
  };
  std::vector<Entry> kvs;
  std::vector<Tensor> tensors;
  size_t alignment = kDefaultAlignment;

  static std::vector<uint8_t> begin_value(ValueType t) {
    std::vector<uint8_t> v;
    put<uint32_t>(v, static_cast<uint32_t>(t));
    return v;
  }

  template <class T>
  void set_scalar(const std::string& key, ValueType t, T x) {
    std::vector<uint8_t> v = begin_value(t);
    put<T>(v, x);
    set(key, std::move(v));
  }

  // Every setter ends here, so general.alignment set by any route (set_u32, copy_kv)
  // also changes the layout: the file must follow the alignment it declares.
  void set(const std::string& key, std::vector<uint8_t> value) {
    if (key.empty()) throw Error("gguf writer: metadata key has length 0");
    if (key == kAlignmentKey) {
      const std::optional<int64_t> a = encoded_int(value);
      if (!a) throw Error("gguf writer: general.alignment must be an integer");
      if (*a <= 0 || !is_power_of_two(static_cast<uint64_t>(*a)))
        throw Error("gguf writer: general.alignment " + std::to_string(*a) + " is not a non-zero power of two");
      alignment = static_cast<size_t>(*a);
    }
    for (Entry& e : kvs) {
      if (e.key == key) {
        e.value = std::move(value);  // replacing keeps the entry's original position
        return;
      }
    }
    kvs.push_back({key, std::move(value)});
  }

  // Everything before the tensor data: header, metadata, tensor infos, padding.
  std::vector<uint8_t> encode_head() const {
    std::vector<uint8_t> out;
    put<uint32_t>(out, kMagic);
    put<uint32_t>(out, 3);
    put<uint64_t>(out, tensors.size());
    put<uint64_t>(out, kvs.size());
    for (const Entry& e : kvs) {
      put_string(out, e.key);
      put_bytes(out, e.value.data(), e.value.size());
    }
    uint64_t offset = 0;
    for (const Tensor& t : tensors) {
      put_string(out, t.name);
      put<uint32_t>(out, static_cast<uint32_t>(t.ne.size()));
      for (int64_t n : t.ne) put<int64_t>(out, n);
      put<uint32_t>(out, static_cast<uint32_t>(t.type));
      put<uint64_t>(out, offset);
      offset += t.size_bytes + padding(t.size_bytes, alignment);
    }
    // Without tensors there is no data section to align; other writers stop here too,
    // so tokenizer-only files copy byte for byte.
    if (!tensors.empty()) out.resize(out.size() + padding(out.size(), alignment), 0);
    return out;
  }
};

Writer::Writer() : impl_(std::make_unique<Impl>()) {}
Writer::~Writer() = default;

void Writer::set_u8(const std::string& key, uint8_t v) { impl_->set_scalar(key, ValueType::U8, v); }
void Writer::set_i8(const std::string& key, int8_t v) { impl_->set_scalar(key, ValueType::I8, v); }
void Writer::set_u16(const std::string& key, uint16_t v) { impl_->set_scalar(key, ValueType::U16, v); }
void Writer::set_i16(const std::string& key, int16_t v) { impl_->set_scalar(key, ValueType::I16, v); }
void Writer::set_u32(const std::string& key, uint32_t v) { impl_->set_scalar(key, ValueType::U32, v); }
void Writer::set_i32(const std::string& key, int32_t v) { impl_->set_scalar(key, ValueType::I32, v); }
void Writer::set_u64(const std::string& key, uint64_t v) { impl_->set_scalar(key, ValueType::U64, v); }
void Writer::set_i64(const std::string& key, int64_t v) { impl_->set_scalar(key, ValueType::I64, v); }
void Writer::set_f32(const std::string& key, float v) { impl_->set_scalar(key, ValueType::F32, v); }
void Writer::set_f64(const std::string& key, double v) { impl_->set_scalar(key, ValueType::F64, v); }
void Writer::set_bool(const std::string& key, bool v) {
  impl_->set_scalar<uint8_t>(key, ValueType::BOOL, v ? 1 : 0);
}

void Writer::set_string(const std::string& key, std::string_view v) {
  std::vector<uint8_t> out = Impl::begin_value(ValueType::STRING);
  put_string(out, v);
  impl_->set(key, std::move(out));
}

void Writer::set_string_array(const std::string& key, const std::vector<std::string>& v) {
  std::vector<uint8_t> out = Impl::begin_value(ValueType::ARRAY);
  put<uint32_t>(out, static_cast<uint32_t>(ValueType::STRING));
  put<uint64_t>(out, v.size());
  for (const std::string& s : v) put_string(out, s);
  impl_->set(key, std::move(out));
}

void Writer::set_f32_array(const std::string& key, const std::vector<float>& v) {
  std::vector<uint8_t> out = Impl::begin_value(ValueType::ARRAY);
  put<uint32_t>(out, static_cast<uint32_t>(ValueType::F32));
  put<uint64_t>(out, v.size());
  put_bytes(out, v.data(), v.size() * sizeof(float));
  impl_->set(key, std::move(out));
}

void Writer::set_i32_array(const std::string& key, const std::vector<int32_t>& v) {
  std::vector<uint8_t> out = Impl::begin_value(ValueType::ARRAY);
  put<uint32_t>(out, static_cast<uint32_t>(ValueType::I32));
  put<uint64_t>(out, v.size());
  put_bytes(out, v.data(), v.size() * sizeof(int32_t));
  impl_->set(key, std::move(out));
}

void Writer::copy_kv(const KeyValue& kv) {
  std::vector<uint8_t> out = Impl::begin_value(kv.type);
  switch (kv.type) {
    case ValueType::U8: put<uint8_t>(out, static_cast<uint8_t>(kv.u)); break;
    case ValueType::U16: put<uint16_t>(out, static_cast<uint16_t>(kv.u)); break;
    case ValueType::U32: put<uint32_t>(out, static_cast<uint32_t>(kv.u)); break;
    case ValueType::U64: put<uint64_t>(out, kv.u); break;
    case ValueType::I8: put<int8_t>(out, static_cast<int8_t>(kv.i)); break;
    case ValueType::I16: put<int16_t>(out, static_cast<int16_t>(kv.i)); break;
    case ValueType::I32: put<int32_t>(out, static_cast<int32_t>(kv.i)); break;
    case ValueType::I64: put<int64_t>(out, kv.i); break;
    case ValueType::F32: put<float>(out, static_cast<float>(kv.f)); break;  // exact: it came from a float
    case ValueType::F64: put<double>(out, kv.f); break;
    case ValueType::BOOL: put<uint8_t>(out, kv.u != 0 ? 1 : 0); break;
    case ValueType::STRING: put_string(out, kv.str); break;
    case ValueType::ARRAY: {
      put<uint32_t>(out, static_cast<uint32_t>(kv.array_type));
      put<uint64_t>(out, kv.array_count);
      if (kv.array_type == ValueType::STRING) {
        if (kv.array_strings.size() != kv.array_count)
          throw Error("gguf writer: key '" + kv.key + "': array_count " + std::to_string(kv.array_count) +
                      " but " + std::to_string(kv.array_strings.size()) + " strings");
        for (std::string_view s : kv.array_strings) put_string(out, s);
      } else {
        const size_t elem = element_bytes(kv.array_type);
        if (elem == 0)
          throw Error("gguf writer: key '" + kv.key + "': cannot write an array of " +
                      value_type_name(kv.array_type));
        if (kv.array_count > 0 && kv.array_data == nullptr)
          throw Error("gguf writer: key '" + kv.key + "': array_data is null");
        put_bytes(out, kv.array_data, kv.array_count * elem);
      }
      break;
    }
    default:
      throw Error("gguf writer: key '" + kv.key + "': unknown value type " +
                  std::to_string(static_cast<uint32_t>(kv.type)));
  }
  impl_->set(kv.key, std::move(out));
}

void Writer::remove(const std::string& key) {
  auto& kvs = impl_->kvs;
  kvs.erase(std::remove_if(kvs.begin(), kvs.end(), [&](const Impl::Entry& e) { return e.key == key; }), kvs.end());
  if (key == kAlignmentKey) impl_->alignment = kDefaultAlignment;
}

void Writer::set_alignment(size_t alignment) {
  if (!is_power_of_two(alignment) || alignment > std::numeric_limits<uint32_t>::max())
    throw Error("gguf writer: alignment " + std::to_string(alignment) + " is not a power of two below 2^32");
  const bool present = std::any_of(impl_->kvs.begin(), impl_->kvs.end(),
                                   [](const Impl::Entry& e) { return e.key == kAlignmentKey; });
  if (alignment != kDefaultAlignment || present)
    set_u32(kAlignmentKey, static_cast<uint32_t>(alignment));
  impl_->alignment = alignment;
}

void Writer::add_tensor(const std::string& name, DType type, const std::vector<int64_t>& ne, const void* data,
                        size_t size_bytes) {
  const std::string where = "gguf writer: tensor '" + name + "': ";
  if (name.empty()) throw Error("gguf writer: tensor name has length 0");
  for (const Impl::Tensor& t : impl_->tensors)
    if (t.name == name) throw Error(where + "duplicate tensor name");
  if (ne.empty() || ne.size() > static_cast<size_t>(kMaxDims))
    throw Error(where + std::to_string(ne.size()) + " dimensions (must be 1 to 4)");
  const DTypeInfo* info = dtype_info(static_cast<uint32_t>(type));
  if (info == nullptr) throw Error(where + "unknown type id " + std::to_string(static_cast<uint32_t>(type)));
  int64_t n = 1;
  for (int64_t d : ne) {
    if (d <= 0) throw Error(where + "dimension " + std::to_string(d) + " must be positive");
    if (__builtin_mul_overflow(n, d, &n)) throw Error(where + "element count overflows int64");
  }
  if (ne[0] % info->block_elems != 0)
    throw Error(where + "ne[0] = " + std::to_string(ne[0]) + " is not a multiple of the " + info->name +
                " block size " + std::to_string(info->block_elems));
  const uint64_t expected = static_cast<uint64_t>(n / info->block_elems) * info->block_bytes;
  if (expected != size_bytes)
    throw Error(where + "size_bytes " + std::to_string(size_bytes) + " but the shape needs " +
                std::to_string(expected));
  if (data == nullptr) throw Error(where + "data is null");
  impl_->tensors.push_back({name, type, ne, data, size_bytes});
}

std::vector<uint8_t> Writer::to_bytes() const {
  std::vector<uint8_t> out = impl_->encode_head();
  for (const Impl::Tensor& t : impl_->tensors) {
    put_bytes(out, t.data, t.size_bytes);
    out.resize(out.size() + padding(t.size_bytes, impl_->alignment), 0);
  }
  return out;
}

void Writer::write(const std::string& path) const {
  try {
    write_file_atomic(path, [&](const auto& write) {
      const std::vector<uint8_t> head = impl_->encode_head();
      write(head.data(), head.size());
      static const uint8_t kZeros[256] = {};
      for (const Impl::Tensor& t : impl_->tensors) {
        write(t.data, t.size_bytes);
        for (size_t pad = padding(t.size_bytes, impl_->alignment); pad > 0;) {
          const size_t n = std::min(pad, sizeof kZeros);
          write(kZeros, n);
          pad -= n;
        }
      }
    });
  } catch (const Error& e) {
    throw Error(std::string("gguf: ") + e.what());
  }
}

}  // namespace xent::gguf
