// Text <-> token ids from a GGUF file's tokenizer.ggml.* metadata: byte-level BPE
// (tokenizer.ggml.model = "gpt2", pre-tokenizer from tokenizer.ggml.pre) and
// SentencePiece (model = "llama", with byte fallback). Matches the reference vectors.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace xent {
namespace gguf { class Reader; }

// tokenizer.ggml.token_type values.
enum class TokenType : int32_t {
  Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6,
};

class Tokenizer {
 public:
  // Throws xent::Error for a missing/unsupported tokenizer.ggml.model or .pre, or
  // inconsistent arrays (token_type/scores length != tokens length, bad merges).
  static std::unique_ptr<Tokenizer> from_gguf(const gguf::Reader& file);
  virtual ~Tokenizer() = default;

  // add_special: prepend BOS (and append EOS) as the model's metadata says
  // (tokenizer.ggml.add_bos_token / add_eos_token, with the usual defaults per type).
  // parse_special: text of control/user-defined tokens ("<|im_start|>") becomes that
  // token; otherwise it is tokenized as plain text.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special,
                                      bool parse_special) const = 0;

  // The bytes this token stands for in output text (BPE byte-unmapping, SPM "▁" ->
  // space and <0xXX> -> byte). Control tokens give "" unless render_special.
  virtual std::string token_to_piece(int32_t id, bool render_special) const = 0;
  // Concatenated pieces; for SentencePiece a leading space after BOS is dropped, as
  // the reference runtime does.
  std::string decode(const std::vector<int32_t>& ids, bool render_special = false) const;

  int32_t n_vocab() const { return static_cast<int32_t>(tokens_.size()); }
  const std::string& token_text(int32_t id) const { return tokens_.at(id); }  // raw vocab entry
  TokenType token_type(int32_t id) const { return types_.at(id); }
  int32_t bos() const { return bos_; }  // -1 when the model has none
  int32_t eos() const { return eos_; }
  int32_t eot() const { return eot_; }  // end-of-turn (e.g. <|im_end|>, <|eot_id|>), -1 if none
  bool adds_bos() const { return add_bos_; }
  bool adds_eos() const { return add_eos_; }
  // End of generation: EOS, EOT, or another token the vocab marks as ending a turn.
  bool is_end_of_generation(int32_t id) const;
  // Looks up a token by its exact vocab text; -1 if absent.
  int32_t find_token(std::string_view text) const;
  const std::string& model_name() const { return model_; }  // "gpt2" or "llama"
  const std::string& pre_name() const { return pre_; }

 protected:
  std::string model_, pre_;
  std::vector<std::string> tokens_;
  std::vector<TokenType> types_;
  int32_t bos_ = -1, eos_ = -1, eot_ = -1;
  bool add_bos_ = false, add_eos_ = false;
  std::vector<int32_t> eog_ids_;
};

}  // namespace xent
