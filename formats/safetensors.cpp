#include "formats/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "formats/quants.h"

namespace xent::safetensors {
namespace {

struct TypeEntry {
  ElemType type;
  const char* name;
  size_t bytes;
};
constexpr TypeEntry kTypes[] = {
    {ElemType::F64, "F64", 8},  {ElemType::F32, "F32", 4}, {ElemType::F16, "F16", 2},
    {ElemType::BF16, "BF16", 2}, {ElemType::I64, "I64", 8}, {ElemType::I32, "I32", 4},
    {ElemType::I16, "I16", 2},  {ElemType::I8, "I8", 1},   {ElemType::U8, "U8", 1},
    {ElemType::BOOL, "BOOL", 1},
};

const TypeEntry& entry(ElemType t) {
  for (const TypeEntry& e : kTypes)
    if (e.type == t) return e;
  throw Error("safetensors: unknown element type");
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open '" + path + "'");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

const char* elem_type_name(ElemType t) { return entry(t).name; }
size_t elem_type_bytes(ElemType t) { return entry(t).bytes; }

int64_t TensorView::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::unique_ptr<File> File::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("safetensors: cannot open '" + path + "': " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error("safetensors: '" + path + "' is not a regular file");
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    throw Error("safetensors: '" + path + "' is too short (" + std::to_string(size) + " bytes) for a header");
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);  // the mapping keeps the file alive
  if (map == MAP_FAILED) throw Error("safetensors: cannot map '" + path + "': " + std::strerror(errno));
  std::unique_ptr<File> f(new File());
  f->path_ = path;
  f->mapping_ = map;
  f->base_ = static_cast<const uint8_t*>(map);
  f->size_ = size;
  f->parse();
  return f;
}

std::unique_ptr<File> File::from_memory(const void* data, size_t size, const std::string& label) {
  std::unique_ptr<File> f(new File());
  f->path_ = label;
  f->base_ = static_cast<const uint8_t*>(data);
  f->size_ = size;
  f->parse();
  return f;
}

File::~File() {
  if (mapping_ != nullptr) ::munmap(mapping_, size_);
}

const TensorView* File::find(std::string_view name) const {
  for (const TensorView& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

// Layout: u64 little-endian header length N, N bytes of JSON, then the data section.
// Each JSON entry: {"dtype": "F16", "shape": [..], "data_offsets": [begin, end]} with
// offsets relative to the data section.
void File::parse() {
  const std::string where = "safetensors: '" + path_ + "': ";
  if (size_ < 8) throw Error(where + "too short for a header");
  uint64_t header_len = 0;
  std::memcpy(&header_len, base_, 8);
  if (header_len > kMaxHeaderBytes)
    throw Error(where + "header length " + std::to_string(header_len) + " exceeds the limit of " +
                std::to_string(kMaxHeaderBytes) + " bytes");
  if (header_len > size_ - 8)
    throw Error(where + "header length " + std::to_string(header_len) + " runs past the end of the file (size " +
                std::to_string(size_) + ")");
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = size_ - data_start;

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(reinterpret_cast<const char*>(base_ + 8),
                                   reinterpret_cast<const char*>(base_ + data_start));
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + "header is not valid JSON: " + e.what());
  }
  if (!header.is_object()) throw Error(where + "header is not a JSON object");

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) throw Error(where + "__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m)
        if (m.value().is_string()) metadata_[m.key()] = m.value().get<std::string>();
      continue;
    }
    const std::string tw = where + "tensor '" + name + "': ";
    if (!v.is_object()) throw Error(tw + "entry is not an object");
    const auto dt = v.find("dtype");
    const auto sh = v.find("shape");
    const auto off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) throw Error(tw + "missing dtype");
    if (sh == v.end() || !sh->is_array()) throw Error(tw + "missing shape");
    if (off == v.end() || !off->is_array() || off->size() != 2) throw Error(tw + "data_offsets must be [begin, end]");

    TensorView t;
    t.name = name;
    const std::string dtype = dt->get<std::string>();
    bool known = false;
    for (const TypeEntry& e : kTypes)
      if (dtype == e.name) {
        t.type = e.type;
        known = true;
      }
    if (!known) throw Error(tw + "unsupported dtype '" + dtype + "'");

    if (sh->size() > 8) throw Error(tw + "too many dimensions (" + std::to_string(sh->size()) + ")");
    // Count elements with overflow checks: a hostile shape must not wrap around to a
    // size that matches the offsets.
    uint64_t n = 1;
    for (const nlohmann::json& d : *sh) {
      if (!d.is_number_unsigned()) throw Error(tw + "shape entries must be non-negative integers");
      const uint64_t dim = d.get<uint64_t>();
      if (dim > (uint64_t{1} << 48) || (dim != 0 && n > std::numeric_limits<uint64_t>::max() / 16 / dim))
        throw Error(tw + "shape is too large");
      n *= dim;
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    for (const nlohmann::json& o : *off)
      if (!o.is_number_unsigned()) throw Error(tw + "data_offsets must be non-negative integers");
    const uint64_t begin = (*off)[0].get<uint64_t>(), end = (*off)[1].get<uint64_t>();
    if (begin > end) throw Error(tw + "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + ") are reversed");
    if (end > data_size)
      throw Error(tw + "data [" + std::to_string(begin) + ", " + std::to_string(end) +
                  ") runs past the end of the file (data section has " + std::to_string(data_size) + " bytes)");
    const uint64_t want = n * elem_type_bytes(t.type);
    if (end - begin != want)
      throw Error(tw + "holds " + std::to_string(end - begin) + " bytes but shape x " + dtype + " needs " +
                  std::to_string(want));
    t.data = base_ + data_start + begin;
    t.size_bytes = static_cast<size_t>(want);
    tensors_.push_back(std::move(t));
  }
  std::sort(tensors_.begin(), tensors_.end(), [](const TensorView& a, const TensorView& b) { return a.name < b.name; });
}

std::unique_ptr<Checkpoint> Checkpoint::open_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  auto cp = std::make_unique<Checkpoint>();
  std::vector<std::string> shards;
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  const fs::path single = fs::path(dir) / "model.safetensors";
  if (fs::exists(index)) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_text_file(index.string()));
    } catch (const nlohmann::json::exception& e) {
      throw Error("safetensors: '" + index.string() + "' is not valid JSON: " + e.what());
    }
    const auto wm = j.find("weight_map");
    if (wm == j.end() || !wm->is_object()) throw Error("safetensors: '" + index.string() + "' has no weight_map");
    std::set<std::string> seen;
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it.value().is_string()) throw Error("safetensors: weight_map entry '" + it.key() + "' is not a file name");
      const std::string file = it.value().get<std::string>();
      // Shards must be plain names inside the checkpoint folder.
      if (file.find('/') != std::string::npos || file == "." || file == "..")
        throw Error("safetensors: weight_map names a file outside the folder: '" + file + "'");
      if (seen.insert(file).second) shards.push_back(file);
    }
    std::sort(shards.begin(), shards.end());
  } else if (fs::exists(single)) {
    shards.push_back("model.safetensors");
  } else {
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".safetensors") shards.push_back(e.path().filename().string());
    std::sort(shards.begin(), shards.end());
  }
  if (shards.empty()) throw Error("no *.safetensors files in '" + dir + "'");
  for (const std::string& s : shards) {
    cp->files_.push_back(File::open((fs::path(dir) / s).string()));
    for (const TensorView& t : cp->files_.back()->tensors()) {
      if (!cp->by_name_.emplace(t.name, &t).second)
        throw Error("safetensors: tensor '" + t.name + "' appears in more than one shard ('" + s + "')");
    }
  }
  for (const auto& [name, t] : cp->by_name_) cp->order_.push_back(t);
  return cp;
}

const TensorView* Checkpoint::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

void to_f32(const TensorView& t, float* out) {
  const int64_t n = t.n_elements();
  switch (t.type) {
    case ElemType::F32:
      std::memcpy(out, t.data, static_cast<size_t>(n) * 4);
      return;
    case ElemType::F64:
      for (int64_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, t.data + 8 * i, 8);
        out[i] = static_cast<float>(d);
      }
      return;
    case ElemType::F16:
    case ElemType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, t.data + 2 * i, 2);
        out[i] = t.type == ElemType::F16 ? fp16_to_f32(h) : bf16_to_f32(h);
      }
      return;
    default:
      throw Error("safetensors: tensor '" + t.name + "' has type " + elem_type_name(t.type) +
                  ", not a floating-point type");
  }
}

}  // namespace xent::safetensors
