// Reading Hugging Face `*.safetensors` checkpoints over a memory map, single files and
// shards listed by `model.safetensors.index.json`. Headers are hostile input: every
// length, shape and offset is checked against the file before a byte is touched.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "formats/error.h"

namespace xent::safetensors {

// The element types of the format ("F16", "BF16", ...).
enum class ElemType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };
const char* elem_type_name(ElemType t);
size_t elem_type_bytes(ElemType t);

struct TensorView {
  std::string name;
  ElemType type = ElemType::F32;
  std::vector<int64_t> shape;  // outermost first, as PyTorch writes it
  const uint8_t* data = nullptr;  // into the mapping; little-endian
  size_t size_bytes = 0;
  int64_t n_elements() const;
};

// Headers larger than this are refused before any allocation (real ones are < 1 MiB).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

// One mapped `.safetensors` file.
class File {
 public:
  // Throws xent::Error naming the file and the field on any malformed content.
  static std::unique_ptr<File> open(const std::string& path);
  // Parses a buffer the caller keeps alive (tests). `label` names it in errors.
  static std::unique_ptr<File> from_memory(const void* data, size_t size, const std::string& label = "<memory>");
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView* find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }  // "__metadata__"

 private:
  File() = default;
  void parse();
  std::string path_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  void* mapping_ = nullptr;
  std::vector<TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A whole checkpoint: `model.safetensors`, or the shards named by
// `model.safetensors.index.json`, or (failing both) every `*.safetensors` in the folder.
class Checkpoint {
 public:
  static std::unique_ptr<Checkpoint> open_dir(const std::string& dir);
  // Tensor names in a stable order (sorted); each name appears once across shards.
  const std::vector<const TensorView*>& tensors() const { return order_; }
  const TensorView* find(std::string_view name) const;
  size_t n_files() const { return files_.size(); }

 private:
  std::vector<std::unique_ptr<File>> files_;
  std::map<std::string, const TensorView*, std::less<>> by_name_;
  std::vector<const TensorView*> order_;
};

// Converts a floating-point tensor (F64/F32/F16/BF16) to f32; throws for other types.
void to_f32(const TensorView& t, float* out);

}  // namespace xent::safetensors
