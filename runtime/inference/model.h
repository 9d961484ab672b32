// A loaded model: the mapped GGUF file, hyperparameters, weights as tensors pointing
// into the mapping, the tokenizer, and the architecture that builds its graphs.
// Immutable after load, so one Model can serve many Contexts on many threads.
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "formats/gguf.h"
#include "runtime/graph/graph.h"
#include "runtime/tokenizer/tokenizer.h"

namespace xent {

struct HParams {
  std::string arch;          // general.architecture
  int64_t n_vocab = 0;
  int64_t n_ctx_train = 0;   // <arch>.context_length
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t n_ff = 0;
  int64_t head_dim = 0;
  int64_t n_rot = 0;         // rotary dimensions (<= head_dim)
  float norm_eps = 1e-5f;
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;
  std::string rope_scaling = "none";  // rope.scaling.type as applied: none, linear, yarn
  bool learned_positions = false;  // GPT-2: positions past n_ctx_train do not exist
  // Attention beyond the plain form (Gemma 2), so a context keeps each layer's KV cache on a
  // backend that can run that layer's attention: the window per layer (empty: none) and
  // the scores' soft-cap (0: none).
  std::vector<int32_t> layer_window;
  float attn_softcap = 0.0f;
};

class KvCache;

// What one evaluation step feeds the graph.
struct StepInputs {
  Tensor* tokens = nullptr;     // [n_tok] i32
  Tensor* positions = nullptr;  // [n_tok] i32
  int32_t n_tok = 0;
  int32_t n_past = 0;           // tokens already in the cache
  Tensor* mask = nullptr;       // optional [n_tok, n_tok] token-tree mask (Op::Attention)
  KvCache* kv = nullptr;
  bool all_logits = false;      // false: logits of the last token only
  Tensor* out_ids = nullptr;    // optional [n_out] i32: the tokens whose logits are wanted
};

// The hidden states [n_embd, n_tok] the output layer needs: the out_ids rows, else every
// row (all_logits) or the last.
inline Tensor* output_rows(Graph& g, Tensor* x, const StepInputs& in) {
  if (in.out_ids) return g.get_rows(x, in.out_ids);
  return in.all_logits ? x : g.rows(x, in.n_tok - 1, 1);
}

// One per architecture (models/<arch>.cpp): reads its hyperparameters and weights,
// then builds a graph for each step.
class Architecture {
 public:
  virtual ~Architecture() = default;
  // Returns the logits tensor [n_vocab, n_out].
  virtual Tensor* build(Graph& g, const StepInputs& in) const = 0;
};

// Looks up weights by their GGUF names and checks their shapes. It remembers every tensor
// and every <arch>.* key an architecture reads, so that Model::load can refuse a file with
// anything left over: a tensor or setting nobody applied would change the arithmetic
// without a word.
class WeightLoader {
 public:
  WeightLoader(const gguf::Reader& file, std::deque<Tensor>& storage)
      : file_(file), storage_(storage) {}
  // Throws xent::Error naming the tensor if it is missing (when required) or its shape
  // differs from `ne` (a trailing 1 may be omitted). `layer` tags it for -ngl.
  Tensor* get(const std::string& name, std::vector<int64_t> ne, int layer = -1,
              bool required = true);
  bool has(const std::string& name) const { return file_.find_tensor(name) != nullptr; }
  const gguf::Reader& file() const { return file_; }
  // <arch>.<key> helpers: required ones throw naming the key. Each marks the key used.
  int64_t arch_int(const std::string& arch, const std::string& key);
  int64_t arch_int_or(const std::string& arch, const std::string& key, int64_t fallback);
  float arch_float_or(const std::string& arch, const std::string& key, float fallback);
  std::string arch_string_or(const std::string& arch, const std::string& key, const std::string& fallback);
  bool arch_bool_or(const std::string& arch, const std::string& key, bool fallback);
  // Marks a key the architecture has looked at by other means (or knows to be without
  // effect on the arithmetic, like vocab_size).
  void mark_key(const std::string& full_key) { used_keys_.insert(full_key); }
  // Throws naming the first tensor no get() consumed, then the first <arch>.* key nobody
  // read, with its value.
  void check_all_used(const std::string& arch) const;

 private:
  const gguf::Reader& file_;
  std::deque<Tensor>& storage_;
  std::set<std::string> used_tensors_;
  std::set<std::string> used_keys_;
};

struct ArchitectureEntry {
  const char* name;
  std::unique_ptr<Architecture> (*load)(WeightLoader& w, HParams& hp);
};
// The registry of supported architectures (models/registry.cpp).
const std::vector<ArchitectureEntry>& architectures();

struct ModelLoadParams {
  bool use_mmap = true;   // false: read the file into memory
  bool use_mlock = false;
  // Called with progress in [0, 1]; returning false cancels the load.
  std::function<bool(float)> progress;
};

class Model {
 public:
  // Throws xent::Error: unreadable/invalid file, unknown architecture (listing the
  // supported ones), missing or mis-shaped tensors, unsupported tokenizer.
  static std::unique_ptr<Model> load(const std::string& path, const ModelLoadParams& params = {});

  const HParams& hparams() const { return hparams_; }
  const gguf::Reader& file() const { return *file_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const Architecture& architecture() const { return *arch_; }
  const std::deque<Tensor>& weights() const { return weights_; }
  uint64_t n_params() const;
  uint64_t weight_bytes() const;
  std::string chat_template() const;  // "" when the file has none
  bool mmapped() const { return owned_bytes_.empty(); }
  // Data derived from the weights that this model's contexts share (the CPU's repacked
  // weights), made by make() the first time `key` is asked for. Thread-safe.
  std::shared_ptr<const void> shared_state(const std::string& key,
                                           const std::function<std::shared_ptr<const void>()>& make) const;
  std::string description() const;    // "llama 26M Q4_K_M"

 private:
  Model() = default;
  std::unique_ptr<gguf::Reader> file_;
  std::vector<uint8_t> owned_bytes_;  // when not mmapped
  HParams hparams_;
  std::deque<Tensor> weights_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Architecture> arch_;
  mutable std::mutex shared_mutex_;
  mutable std::map<std::string, std::shared_ptr<const void>> shared_;
};

}  // namespace xent
