// Reading the non-tensor parts of a Hugging Face checkpoint folder: config.json,
// the tokenizer (tokenizer.json, or vocab.json + merges.txt) and special tokens, in GGUF terms.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace xent::hf {

// Parses a JSON file; throws xent::Error naming the file if it is missing or invalid.
nlohmann::json read_json_file(const std::string& path);
// Same, but returns an empty object when the file does not exist.
nlohmann::json read_json_if_exists(const std::string& path);

// config.json with typed look-ups that name the missing key in their errors.
struct Config {
  nlohmann::json json;
  std::string architecture;  // architectures[0], e.g. "LlamaForCausalLM"
  std::string model_type;    // "llama", "qwen2", "gpt2"

  static Config load(const std::string& dir);
  // The first of `keys` present (checkpoints disagree on names: n_embd vs hidden_size).
  int64_t get_int(std::initializer_list<const char*> keys) const;
  std::optional<int64_t> find_int(std::initializer_list<const char*> keys) const;
  std::optional<double> find_float(std::initializer_list<const char*> keys) const;
  bool get_bool_or(const char* key, bool fallback) const;
};

// A tokenizer in the form GGUF stores it (tokenizer.ggml.*).
struct Vocab {
  std::string model = "gpt2";  // tokenizer.ggml.model: "gpt2" byte-level BPE, "llama" SentencePiece
  std::string pre;             // tokenizer.ggml.pre
  std::vector<std::string> tokens;
  std::vector<int32_t> token_types;  // TokenType values: 1 normal, 3 control, 4 user-defined, 5 unused
  std::vector<std::string> merges;   // "a b" (gpt2)
  std::vector<float> scores;         // llama: one per token
  std::optional<bool> add_space_prefix;  // llama: SentencePiece's add_dummy_prefix
  std::optional<int32_t> bos, eos, eot, unk, pad;
  std::optional<bool> add_bos, add_eos;
  std::string chat_template;
};

// A SentencePiece tokenizer.model (its protobuf ModelProto): the pieces, their scores and
// types, and the normalizer's add_dummy_prefix. Throws xent::Error on a malformed file.
struct SpmModel {
  std::vector<std::string> pieces;
  std::vector<float> scores;
  std::vector<int32_t> types;  // SentencePiece's numbering, which GGUF's TokenType shares
  bool add_dummy_prefix = true;
};
SpmModel parse_spm_model(const std::vector<uint8_t>& bytes);

// Names the GGUF pre-tokenizer ("gpt-2", "llama-bpe", "qwen2", "smollm") from the
// tokenizer.json pre_tokenizer section by its split regex; "" when not recognised.
std::string identify_pre_tokenizer(const nlohmann::json& pre_tokenizer);

// Reads the tokenizer of a checkpoint folder: a SentencePiece tokenizer.model when the
// folder has one (Gemma, Phi-3, Llama 2; the tokens added on top from tokenizer.json or
// tokenizer_config.json), else tokenizer.json or vocab.json + merges.txt (byte-level BPE). n_vocab: the embedding rows (config
// vocab_size); the vocabulary is padded to it with unused "[PADn]" tokens. default_pre:
// the architecture's pre-tokenizer when the file only says "byte-level with the GPT-2
// regex" (see hf-convert.cpp); pre_override wins over everything when not empty.
Vocab read_vocab(const std::string& dir, const Config& config, int64_t n_vocab, const std::string& default_pre,
                 const std::string& pre_override);

}  // namespace xent::hf
