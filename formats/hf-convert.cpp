#include "formats/hf-convert.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <tuple>

#include "formats/error.h"
#include "formats/gguf.h"
#include "formats/hf-import.h"
#include "formats/quants.h"
#include "formats/safetensors.h"

namespace xent::hf {
namespace {

namespace st = safetensors;

constexpr const char* kSupported[] = {"LlamaForCausalLM",  "Qwen2ForCausalLM",  "Qwen3ForCausalLM",
                                      "Gemma2ForCausalLM", "Gemma3ForCausalLM", "Phi3ForCausalLM",
                                      "GPT2LMHeadModel",   nullptr};

// How a checkpoint tensor becomes a GGUF one.
enum class Transform {
  None,
  PermuteQ,   // Llama q_proj: Hugging Face's half-split rotary rows -> GGUF's interleaved pairs
  PermuteK,   // the same with the KV head count
  Transpose,  // GPT-2 Conv1D weights are stored [in, out]; GGUF wants rows of `in`
  PlusOne,    // Gemma's RMSNorm multiplies by (1 + weight); GGUF stores the sum
};

struct Mapped {
  std::string name;  // GGUF name; "" to skip the tensor
  Transform transform = Transform::None;
};

struct Hyper {
  std::string arch;  // GGUF architecture
  int64_t n_vocab = 0, n_ctx = 0, n_embd = 0, n_layer = 0, n_ff = 0, n_head = 0, n_head_kv = 0, head_dim = 0;
  double norm_eps = 1e-5, rope_base = 10000;
  std::optional<double> rope_linear_factor;
  // rope_scaling.rope_type "llama3": written as rope_freqs.weight, one divisor per pair.
  bool rope_llama3 = false;
  double llama3_factor = 8, llama3_low = 1, llama3_high = 4, llama3_orig_ctx = 8192;
  // rope_type "yarn" (Qwen2.5 long context): written as rope.scaling.* keys.
  std::optional<double> rope_yarn_factor;
  int64_t yarn_orig_ctx = 0;
  bool tied = false;
  int64_t n_rot = 0;        // rotary dimensions (Phi-4-mini rotates 3/4 of each head)
  int64_t window = 0;       // gemma2/3, phi3: attention.sliding_window (0: none)
  double attn_softcap = 0, final_softcap = 0;  // gemma2
  // phi3 LongRoPE: one factor per rotary pair for contexts up to / beyond the original.
  std::vector<float> long_factors, short_factors;
  int64_t longrope_orig_ctx = 0;
  double longrope_attn_factor = 1;
};

std::string arch_of(const Config& c) {
  static const std::map<std::string, std::string> arch = {
      {"LlamaForCausalLM", "llama"},   {"Qwen2ForCausalLM", "qwen2"},   {"Qwen3ForCausalLM", "qwen3"},
      {"Gemma2ForCausalLM", "gemma2"}, {"Gemma3ForCausalLM", "gemma3"}, {"Phi3ForCausalLM", "phi3"},
      {"GPT2LMHeadModel", "gpt2"}};
  if (auto it = arch.find(c.architecture); it != arch.end()) return it->second;
  std::string list;
  for (const char* const* a = kSupported; *a; ++a) list += (list.empty() ? "" : ", ") + std::string(*a);
  throw Error("unsupported architecture '" + (c.architecture.empty() ? "(none in config.json)" : c.architecture) +
              "' (supported: " + list + ")");
}

// config.json's rope_scaling. Every field must be one we write into the GGUF: anything
// else would change the model's arithmetic without the file saying so.
void read_rope_scaling(const Config& c, Hyper& h) {
  const auto& rs = c.json["rope_scaling"];
  const std::string type = rs.value("rope_type", rs.value("type", ""));
  const auto number = [&](const char* key, double fallback) {
    if (!rs.contains(key)) return fallback;
    if (!rs[key].is_number() || !(rs[key].get<double>() > 0))
      throw Error(std::string("config.json: rope_scaling.") + key + " must be a positive number");
    return rs[key].get<double>();
  };
  std::vector<std::string> known = {"rope_type", "type", "factor"};
  // What each architecture's GGUF readers apply (Gemma 2 files carry no scaling at all).
  const std::string allowed = h.arch == "gemma2" ? "" : h.arch == "gemma3" ? "linear" : "linear,llama3,yarn";
  if (!type.empty() && type != "default" && ("," + allowed + ",").find("," + type + ",") == std::string::npos)
    throw Error("config.json: rope_scaling type '" + type + "' is not supported for " + c.architecture +
                (allowed.empty() ? "" : " (supported: " + allowed + ")"));
  if (type == "linear") {
    h.rope_linear_factor = number("factor", 1.0);
  } else if (type == "llama3") {
    h.rope_llama3 = true;
    h.llama3_factor = number("factor", 8.0);
    h.llama3_low = number("low_freq_factor", 1.0);
    h.llama3_high = number("high_freq_factor", 4.0);
    h.llama3_orig_ctx = number("original_max_position_embeddings",
                               static_cast<double>(c.find_int({"original_max_position_embeddings"}).value_or(8192)));
    if (h.llama3_low == h.llama3_high)
      throw Error("config.json: rope_scaling low_freq_factor and high_freq_factor must differ");
    known.insert(known.end(), {"low_freq_factor", "high_freq_factor", "original_max_position_embeddings"});
  } else if (type == "yarn") {
    h.rope_yarn_factor = number("factor", 1.0);
    h.yarn_orig_ctx = static_cast<int64_t>(number("original_max_position_embeddings", static_cast<double>(h.n_ctx)));
    // The peer's YaRN uses beta_fast 32, beta_slow 1 and attention factor 0.1 ln(factor) + 1,
    // Hugging Face's defaults; other values would need keys GGUF readers do not share.
    if (number("beta_fast", 32.0) != 32.0 || number("beta_slow", 1.0) != 1.0)
      throw Error("config.json: rope_scaling yarn with beta_fast/beta_slow other than 32/1 is not supported");
    if (rs.contains("attention_factor") &&
        std::fabs(number("attention_factor", 1.0) - (0.1 * std::log(*h.rope_yarn_factor) + 1.0)) > 1e-6)
      throw Error("config.json: rope_scaling yarn attention_factor other than 0.1 ln(factor) + 1 is not supported");
    known.insert(known.end(), {"original_max_position_embeddings", "beta_fast", "beta_slow", "attention_factor"});
  } else if (!type.empty() && type != "default") {
    throw Error("config.json: rope_scaling type '" + type + "' is not supported (supported: linear, llama3, yarn)");
  }
  for (const auto& [key, value] : rs.items())
    if (std::find(known.begin(), known.end(), key) == known.end() && !value.is_null())
      throw Error("config.json: rope_scaling." + key + " is not supported");
}

// Phi-3's rope_scaling: LongRoPE ("longrope", formerly "su") with one factor per rotary
// pair for contexts up to the original length (short) and beyond it (long), and an
// attention factor that GGUF files carry as rope.scaling.attn_factor.
void read_phi3_rope(const Config& c, Hyper& h) {
  h.longrope_orig_ctx = c.find_int({"original_max_position_embeddings"}).value_or(h.n_ctx);
  if (!c.json.contains("rope_scaling") || c.json["rope_scaling"].is_null()) return;
  const auto& rs = c.json["rope_scaling"];
  if (!rs.is_object()) throw Error("config.json: rope_scaling must be an object");
  const std::string type = rs.value("rope_type", rs.value("type", ""));
  if (type != "longrope" && type != "su")
    throw Error("config.json: rope_scaling type '" + type + "' is not supported for Phi3ForCausalLM (supported: longrope)");
  for (const auto& [key, value] : rs.items())
    if (key != "type" && key != "rope_type" && key != "long_factor" && key != "short_factor" && !value.is_null())
      throw Error("config.json: rope_scaling." + key + " is not supported for LongRoPE");
  auto factors = [&](const char* key) {
    if (!rs.contains(key) || !rs[key].is_array()) throw Error(std::string("config.json: rope_scaling.") + key + " is missing");
    std::vector<float> f;
    for (const auto& v : rs[key]) {
      if (!v.is_number() || !(v.get<double>() > 0))
        throw Error(std::string("config.json: rope_scaling.") + key + " holds a value that is not a positive number");
      f.push_back(v.get<float>());
    }
    return f;
  };
  h.long_factors = factors("long_factor");
  h.short_factors = factors("short_factor");
  if (h.longrope_orig_ctx <= 1) throw Error("config.json: original_max_position_embeddings must be above 1");
  const double scale = static_cast<double>(h.n_ctx) / static_cast<double>(h.longrope_orig_ctx);
  h.longrope_attn_factor =
      scale > 1 ? std::sqrt(1 + std::log(scale) / std::log(static_cast<double>(h.longrope_orig_ctx))) : 1.0;
}

void check_phi3_factors(const Hyper& h) {
  for (const auto* f : {&h.long_factors, &h.short_factors})
    if (!h.long_factors.empty() && f->size() != static_cast<size_t>(h.n_rot / 2))
      throw Error("config.json: rope_scaling has " + std::to_string(f->size()) + " factors, " +
                  std::to_string(h.n_rot / 2) + " rotary pairs expected");
}

// Keys that change the arithmetic of an architecture. What the GGUF format can say is
// written; anything it cannot is refused here, naming the key, rather than dropped.
void read_architecture_rules(const Config& c, Hyper& h) {
  const nlohmann::json& j = c.json;
  auto is_set = [&](const char* key) { return j.contains(key) && !j[key].is_null(); };
  auto refuse = [&](const std::string& what) { throw Error("config.json: " + what + " is not supported for " + c.architecture); };
  if ((h.arch == "llama" || h.arch == "qwen2" || h.arch == "qwen3") && j.value("use_sliding_window", false))
    refuse("use_sliding_window true");
  if (is_set("attention_bias") && j["attention_bias"].is_boolean() && j["attention_bias"].get<bool>() &&
      h.arch != "qwen2")
    refuse("attention_bias true");
  if (h.arch == "gemma2" || h.arch == "gemma3") {
    auto text = [&](const char* key) { return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : ""; };
    std::string act = text("hidden_activation");
    if (act.empty()) act = text("hidden_act");
    if (act.empty()) act = "gelu_pytorch_tanh";
    if (act != "gelu_pytorch_tanh") refuse("hidden_activation '" + act + "'");
    // Readers of GGUF files without the key take head_dim, or n_embd / n_head for the
    // 27B models (46 layers in Gemma 2, 62 in Gemma 3); a file cannot say anything else.
    const bool big = h.n_layer == (h.arch == "gemma2" ? 46 : 62);
    const double implied = static_cast<double>(big ? h.n_embd / h.n_head : h.head_dim);
    if (auto q = c.find_float({"query_pre_attn_scalar"}); q && *q != implied)
      refuse("query_pre_attn_scalar " + std::to_string(*q) + " (GGUF readers use " + std::to_string(implied) + ")");
    h.window = c.find_int({"sliding_window"}).value_or(h.arch == "gemma2" ? 4096 : 0);
    if (h.window < 0) throw Error("config.json: sliding_window is negative");
    // Gemma 2 windows the even layers, Gemma 3 five of every six.
    const int64_t pattern = h.arch == "gemma2" ? 2 : 6;
    if (h.arch == "gemma3") {
      if (auto p = c.find_int({"sliding_window_pattern"}); p && *p != 6) refuse("sliding_window_pattern " + std::to_string(*p));
      if (auto b = c.find_float({"rope_local_base_freq"}); b && *b != 10000.0)
        refuse("rope_local_base_freq " + std::to_string(*b) + " (GGUF readers use 10000)");
      for (const char* cap : {"attn_logit_softcapping", "final_logit_softcapping"})
        if (is_set(cap)) refuse(std::string(cap) + " (Gemma 3 readers apply none)");
    } else {
      for (const char* cap : {"attn_logit_softcapping", "final_logit_softcapping"})
        if (j.contains(cap) && j[cap].is_null()) refuse(std::string(cap) + " null (Gemma 2 readers cap by default)");
      h.attn_softcap = c.find_float({"attn_logit_softcapping"}).value_or(50.0);
      h.final_softcap = c.find_float({"final_logit_softcapping"}).value_or(30.0);
      if (!(h.attn_softcap > 0) || !(h.final_softcap > 0)) throw Error("config.json: soft-capping values must be positive");
    }
    if (j.contains("layer_types") && j["layer_types"].is_array()) {
      const auto& lt = j["layer_types"];
      if (static_cast<int64_t>(lt.size()) != h.n_layer) throw Error("config.json: layer_types does not list every layer");
      for (int64_t i = 0; i < h.n_layer; ++i) {
        const bool local = h.arch == "gemma2" ? i % 2 == 0 : i % pattern < pattern - 1;
        if (lt[i] != (local ? "sliding_attention" : "full_attention"))
          refuse("layer_types (layer " + std::to_string(i) + " breaks the " + std::to_string(pattern - 1) + ":1 pattern)");
      }
    }
  }
  if (h.arch == "phi3") {
    h.window = c.find_int({"sliding_window"}).value_or(0);
    if (h.window < 0) throw Error("config.json: sliding_window is negative");
  }
}

Hyper read_hyper(const Config& c) {
  Hyper h;
  h.arch = arch_of(c);
  h.n_vocab = c.get_int({"vocab_size"});
  if (h.arch == "gpt2") {
    h.n_embd = c.get_int({"n_embd", "hidden_size"});
    h.n_layer = c.get_int({"n_layer", "num_hidden_layers"});
    h.n_head = c.get_int({"n_head", "num_attention_heads"});
    h.n_head_kv = h.n_head;
    h.n_ctx = c.get_int({"n_positions", "n_ctx", "max_position_embeddings"});
    // n_inner null (the usual case) means 4 * n_embd.
    // (Clamped first: a hostile n_embd must fail the range check below, not overflow here.)
    h.n_ff = c.find_int({"n_inner"}).value_or(4 * std::clamp<int64_t>(h.n_embd, -1, int64_t{1} << 32));
    h.norm_eps = c.find_float({"layer_norm_epsilon"}).value_or(1e-5);
    h.tied = true;
  } else {
    h.n_embd = c.get_int({"hidden_size"});
    h.n_layer = c.get_int({"num_hidden_layers"});
    h.n_head = c.get_int({"num_attention_heads"});
    h.n_head_kv = c.find_int({"num_key_value_heads"}).value_or(h.n_head);
    h.n_ctx = c.get_int({"max_position_embeddings"});
    h.n_ff = c.get_int({"intermediate_size"});
    h.norm_eps = c.find_float({"rms_norm_eps"}).value_or(1e-6);
    h.rope_base = c.find_float({"rope_theta"}).value_or(10000.0);
    h.tied = c.get_bool_or("tie_word_embeddings", false);
    if (h.arch == "gemma2" || h.arch == "gemma3") {
      h.tied = c.get_bool_or("tie_word_embeddings", true);  // Gemma's default
      h.norm_eps = c.find_float({"rms_norm_eps"}).value_or(1e-6);
    }
    if (h.arch == "phi3") {
      read_phi3_rope(c, h);
    } else if (c.json.contains("rope_scaling") && c.json["rope_scaling"].is_object()) {
      read_rope_scaling(c, h);
    }
  }
  for (int64_t v : {h.n_vocab, h.n_embd, h.n_layer, h.n_head, h.n_head_kv, h.n_ctx, h.n_ff})
    if (v <= 0 || v > (int64_t{1} << 32)) throw Error("config.json: a size is out of range (" + std::to_string(v) + ")");
  if (h.n_embd % h.n_head != 0 || h.n_head % h.n_head_kv != 0)
    throw Error("config.json: hidden size " + std::to_string(h.n_embd) + " and head counts " + std::to_string(h.n_head) +
                "/" + std::to_string(h.n_head_kv) + " are inconsistent");
  h.head_dim = c.find_int({"head_dim"}).value_or(h.n_embd / h.n_head);
  // Real heads are at most a few hundred wide; the bound keeps n_head * head_dim in range.
  if (h.head_dim <= 0 || h.head_dim % 2 != 0 || h.head_dim > (int64_t{1} << 16))
    throw Error("config.json: head_dim must be even, positive and at most 65536 (is " + std::to_string(h.head_dim) + ")");
  h.n_rot = h.head_dim;
  if (h.arch == "phi3") {
    // Phi-4-mini rotates partial_rotary_factor of the embedding, split over the heads.
    const double part = c.find_float({"partial_rotary_factor"}).value_or(1.0);
    if (!(part > 0 && part <= 1)) throw Error("config.json: partial_rotary_factor must be in (0, 1]");
    h.n_rot = static_cast<int64_t>(part * static_cast<double>(h.n_embd)) / h.n_head;
    if (h.n_rot <= 0 || h.n_rot % 2 != 0 || h.n_rot > h.head_dim)
      throw Error("config.json: partial_rotary_factor gives " + std::to_string(h.n_rot) + " rotary dimensions");
    check_phi3_factors(h);
  }
  read_architecture_rules(c, h);
  return h;
}

// Hugging Face name -> GGUF name. Unknown names are an error, so no weight is ever
// dropped silently.
Mapped map_name(const Hyper& h, std::string name) {
  static const std::regex layer_re(R"(^(?:model\.layers|h)\.(\d+)\.(.+)$)");
  if (h.arch == "gpt2") {
    if (name.rfind("transformer.", 0) == 0) name = name.substr(12);
    if (name == "wte.weight") return {"token_embd.weight"};
    if (name == "wpe.weight") return {"position_embd.weight"};
    if (name == "ln_f.weight") return {"output_norm.weight"};
    if (name == "ln_f.bias") return {"output_norm.bias"};
    if (name == "lm_head.weight") return {"output.weight"};
    std::smatch m;
    if (std::regex_match(name, m, layer_re)) {
      const std::string p = "blk." + m[1].str() + ".", rest = m[2].str();
      // The causal-mask buffers some exports include are not weights.
      if (rest == "attn.bias" || rest == "attn.masked_bias") return {""};
      static const std::map<std::string, std::string> table = {
          {"ln_1", "attn_norm"}, {"attn.c_attn", "attn_qkv"}, {"attn.c_proj", "attn_output"},
          {"ln_2", "ffn_norm"},  {"mlp.c_fc", "ffn_up"},      {"mlp.c_proj", "ffn_down"}};
      const size_t dot = rest.rfind('.');
      if (dot != std::string::npos) {
        const std::string stem = rest.substr(0, dot), kind = rest.substr(dot + 1);
        auto it = table.find(stem);
        if (it != table.end() && (kind == "weight" || kind == "bias")) {
          const bool conv1d = kind == "weight" && stem.find('.') != std::string::npos;
          return {p + it->second + "." + kind, conv1d ? Transform::Transpose : Transform::None};
        }
      }
    }
  } else {
    const bool gemma = h.arch == "gemma2" || h.arch == "gemma3";
    const Transform norm = gemma ? Transform::PlusOne : Transform::None;
    if (name == "model.embed_tokens.weight") return {"token_embd.weight"};
    if (name == "model.norm.weight") return {"output_norm.weight", norm};
    if (name == "lm_head.weight") return {"output.weight"};
    std::smatch m;
    if (std::regex_match(name, m, layer_re)) {
      const std::string p = "blk." + m[1].str() + ".", rest = m[2].str();
      if (rest == "self_attn.rotary_emb.inv_freq") return {""};  // recomputed from rope_theta
      const bool llama = h.arch == "llama";
      if (rest == "self_attn.q_proj.weight") return {p + "attn_q.weight", llama ? Transform::PermuteQ : Transform::None};
      if (rest == "self_attn.k_proj.weight") return {p + "attn_k.weight", llama ? Transform::PermuteK : Transform::None};
      if (rest == "self_attn.q_norm.weight") return {p + "attn_q_norm.weight", norm};
      if (rest == "self_attn.k_norm.weight") return {p + "attn_k_norm.weight", norm};
      if (gemma) {
        // Gemma names its four norms by position; the second is after attention, not
        // before the feed-forward block as in Llama.
        static const std::map<std::string, std::string> gemma_norms = {
            {"input_layernorm.weight", "attn_norm.weight"},
            {"post_attention_layernorm.weight", "post_attention_norm.weight"},
            {"pre_feedforward_layernorm.weight", "ffn_norm.weight"},
            {"post_feedforward_layernorm.weight", "post_ffw_norm.weight"}};
        if (auto it = gemma_norms.find(rest); it != gemma_norms.end()) return {p + it->second, norm};
      }
      if (h.arch == "phi3") {
        if (rest == "self_attn.qkv_proj.weight") return {p + "attn_qkv.weight"};
        if (rest == "mlp.gate_up_proj.weight") return {p + "ffn_up.weight"};  // gate rows, then up rows
      }
      // The other architectures rotate NeoX-style (half split) at run time, so their Q/K
      // keep the HF layout.
      static const std::map<std::string, std::string> table = {
          {"input_layernorm.weight", "attn_norm.weight"},
          {"self_attn.q_proj.bias", "attn_q.bias"},
          {"self_attn.k_proj.bias", "attn_k.bias"},
          {"self_attn.v_proj.weight", "attn_v.weight"},
          {"self_attn.v_proj.bias", "attn_v.bias"},
          {"self_attn.o_proj.weight", "attn_output.weight"},
          {"post_attention_layernorm.weight", "ffn_norm.weight"},
          {"mlp.gate_proj.weight", "ffn_gate.weight"},
          {"mlp.up_proj.weight", "ffn_up.weight"},
          {"mlp.down_proj.weight", "ffn_down.weight"}};
      auto it = table.find(rest);
      if (it != table.end()) return {p + it->second};
    }
  }
  throw Error("checkpoint tensor '" + name + "' has no GGUF name for architecture " + h.arch);
}

// Llama rotary layout: within each head, Hugging Face stores the rows of the first
// rotary halves, then the second halves; GGUF (GPT-J style rotation) wants them paired.
void permute_rows(std::vector<float>& w, int64_t n_rows, int64_t n_cols, int64_t n_heads) {
  if (n_rows % n_heads != 0 || (n_rows / n_heads) % 2 != 0)
    throw Error("cannot permute " + std::to_string(n_rows) + " rows into " + std::to_string(n_heads) + " rotary heads");
  const int64_t hd = n_rows / n_heads, half = hd / 2;
  std::vector<float> out(w.size());
  for (int64_t h = 0; h < n_heads; ++h)
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < half; ++j)
        std::memcpy(&out[(h * hd + 2 * j + i) * n_cols], &w[(h * hd + i * half + j) * n_cols],
                    static_cast<size_t>(n_cols) * sizeof(float));
  w.swap(out);
}

void transpose(std::vector<float>& w, int64_t rows, int64_t cols) {
  std::vector<float> out(w.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[c * rows + r] = w[r * cols + c];
  w.swap(out);
}

std::vector<uint8_t> encode(const std::vector<float>& f, DType type, int64_t row) {
  const int64_t n = static_cast<int64_t>(f.size());
  std::vector<uint8_t> out(dtype_row_bytes(type, row) * static_cast<size_t>(n / row));
  switch (type) {
    case DType::F32:
      std::memcpy(out.data(), f.data(), out.size());
      break;
    case DType::F16:
    case DType::BF16: {
      uint16_t* o = reinterpret_cast<uint16_t*>(out.data());
      for (int64_t i = 0; i < n; ++i) o[i] = type == DType::F16 ? f32_to_fp16(f[i]) : f32_to_bf16(f[i]);
      break;
    }
    default:
      quantize_rows(type, f.data(), out.data(), n / row, row);
  }
  return out;
}

uint32_t file_type_of(DType t) {
  switch (t) {
    case DType::F32: return 0;
    case DType::F16: return 1;
    case DType::Q8_0: return 7;
    case DType::BF16: return 32;
    default: throw Error("no file type for " + std::string(dtype_name(t)));
  }
}

}  // namespace

const char* const* supported_architectures() { return kSupported; }

bool tensor_name_order(const std::string& a, const std::string& b) {
  auto key = [](const std::string& n) -> std::pair<long long, std::string> {
    if (n.rfind("blk.", 0) != 0) return {-1, n};
    const size_t dot = n.find('.', 4);
    long long layer = 0;
    for (size_t i = 4; i < dot && i < n.size(); ++i) {
      if (n[i] < '0' || n[i] > '9' || layer > (1ll << 40)) return {-1, n};  // not blk.<number>.
      layer = layer * 10 + (n[i] - '0');
    }
    return {layer, dot == std::string::npos ? std::string() : n.substr(dot + 1)};
  };
  return key(a) < key(b);
}

ConvertResult convert_checkpoint(const ConvertParams& p) {
  namespace fs = std::filesystem;
  auto log = [&](const std::string& s) {
    if (p.log) p.log(s);
  };
  if (!fs::is_directory(p.dir)) throw Error("'" + p.dir + "' is not a folder");
  const Config config = Config::load(p.dir);
  const Hyper h = read_hyper(config);
  std::unique_ptr<st::Checkpoint> ckpt = st::Checkpoint::open_dir(p.dir);

  // Gather and check every tensor before converting any.
  struct Item {
    std::string name;
    const st::TensorView* src;
    Transform transform;
    std::vector<int64_t> ne;  // GGUF order
  };
  std::vector<Item> items;
  for (const st::TensorView* t : ckpt->tensors()) {
    const Mapped m = map_name(h, t->name);
    if (m.name.empty()) continue;
    if (t->shape.empty() || t->shape.size() > 2)
      throw Error("tensor '" + t->name + "' has " + std::to_string(t->shape.size()) + " dimensions (1 or 2 expected)");
    Item it{m.name, t, m.transform, {}};
    std::vector<int64_t> shape = t->shape;
    if (m.transform == Transform::Transpose) {
      if (shape.size() != 2) throw Error("tensor '" + t->name + "' should be 2-D");
      std::swap(shape[0], shape[1]);
    }
    it.ne.assign(shape.rbegin(), shape.rend());
    items.push_back(std::move(it));
  }
  // Every block has tensors of its own: a layer count beyond the tensors there are is a
  // wrong config.json (and would make the table below billions of entries long).
  if (h.n_layer > static_cast<int64_t>(ckpt->tensors().size()))
    throw Error("config.json: " + std::to_string(h.n_layer) + " layers, but the checkpoint holds only " +
                std::to_string(ckpt->tensors().size()) + " tensors");
  // Expected shapes, so that a wrong checkpoint fails here rather than at load time.
  const int64_t d = h.n_embd, q = h.n_head * h.head_dim, kv = h.n_head_kv * h.head_dim;
  std::map<std::string, std::vector<int64_t>> want = {{"token_embd.weight", {d, h.n_vocab}}, {"output_norm.weight", {d}}};
  if (h.arch == "gpt2") {
    want["position_embd.weight"] = {d, h.n_ctx};
    want["output_norm.bias"] = {d};
  }
  for (int64_t l = 0; l < h.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    want[b + "attn_norm.weight"] = {d};
    want[b + "ffn_norm.weight"] = {d};
    want[b + "ffn_up.weight"] = {d, h.n_ff};
    want[b + "ffn_down.weight"] = {h.n_ff, d};
    if (h.arch == "gpt2") {
      for (const char* n : {"attn_norm.bias", "ffn_norm.bias", "attn_output.bias", "ffn_down.bias"}) want[b + n] = {d};
      want[b + "attn_qkv.weight"] = {d, 3 * d};
      want[b + "attn_qkv.bias"] = {3 * d};
      want[b + "attn_output.weight"] = {d, d};
      want[b + "ffn_up.bias"] = {h.n_ff};
    } else if (h.arch == "phi3") {
      want[b + "attn_qkv.weight"] = {d, q + 2 * kv};
      want[b + "attn_output.weight"] = {q, d};
      want[b + "ffn_up.weight"] = {d, 2 * h.n_ff};
    } else {
      want[b + "attn_q.weight"] = {d, q};
      want[b + "attn_k.weight"] = {d, kv};
      want[b + "attn_v.weight"] = {d, kv};
      want[b + "attn_output.weight"] = {q, d};
      want[b + "ffn_gate.weight"] = {d, h.n_ff};
      if (h.arch == "qwen3" || h.arch == "gemma3") {
        want[b + "attn_q_norm.weight"] = {h.head_dim};
        want[b + "attn_k_norm.weight"] = {h.head_dim};
      }
      if (h.arch == "gemma2" || h.arch == "gemma3") {
        want[b + "post_attention_norm.weight"] = {d};
        want[b + "post_ffw_norm.weight"] = {d};
      }
      if (h.arch == "qwen2") {
        want[b + "attn_q.bias"] = {q};
        want[b + "attn_k.bias"] = {kv};
        want[b + "attn_v.bias"] = {kv};
      }
    }
  }
  bool has_output = false;
  for (const Item& it : items) {
    if (it.name == "output.weight") {
      has_output = true;
      if (it.ne != std::vector<int64_t>{d, h.n_vocab}) throw Error("tensor 'output.weight' has the wrong shape");
      continue;
    }
    auto w = want.find(it.name);
    if (w == want.end()) throw Error("unexpected tensor '" + it.name + "' (from '" + it.src->name + "')");
    if (w->second != it.ne) {
      std::string s;
      for (int64_t v : it.ne) s += (s.empty() ? "" : ", ") + std::to_string(v);
      throw Error("tensor '" + it.src->name + "' has shape [" + s + "] (GGUF order), not what config.json implies");
    }
    want.erase(w);
  }
  if (!want.empty()) throw Error("checkpoint lacks tensor '" + want.begin()->first + "'");
  if (!has_output && !h.tied)
    throw Error("checkpoint has no lm_head.weight and config.json does not tie the embeddings");
  // GPT-2 GGUF files carry the output matrix explicitly, as a copy of the embedding.
  if (!has_output && h.arch == "gpt2") {
    for (const Item& it : items)
      if (it.name == "token_embd.weight") {
        Item copy = it;
        copy.name = "output.weight";
        items.push_back(copy);
        break;
      }
  }
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return tensor_name_order(a.name, b.name); });

  // The output type of the 2-D weights.
  DType main = DType::F16;
  if (p.outtype == "auto") {
    const st::TensorView* first = nullptr;
    for (const Item& it : items)
      if (it.ne.size() == 2) {
        first = it.src;
        break;
      }
    main = first && first->type == st::ElemType::BF16 ? DType::BF16 : DType::F16;
  } else if (p.outtype == "f32") {
    main = DType::F32;
  } else if (p.outtype == "f16") {
    main = DType::F16;
  } else if (p.outtype == "bf16") {
    main = DType::BF16;
  } else if (p.outtype == "q8_0") {
    main = DType::Q8_0;
  } else {
    throw Error("unknown output type '" + p.outtype + "' (f32, f16, bf16, q8_0, auto)");
  }

  const Vocab vocab =
      read_vocab(p.dir, config, h.n_vocab, h.arch == "qwen2" || h.arch == "qwen3" ? "qwen2" : "", p.pre);
  if (static_cast<int64_t>(vocab.tokens.size()) != h.n_vocab)
    throw Error("the tokenizer has " + std::to_string(vocab.tokens.size()) + " tokens but vocab_size is " +
                std::to_string(h.n_vocab));

  gguf::Writer w;
  const std::string& a = h.arch;
  w.set_string("general.architecture", a);
  std::string name = p.name;
  if (name.empty()) {
    name = fs::path(p.dir).lexically_normal().filename().string();
    if (name.empty()) name = fs::path(p.dir).lexically_normal().parent_path().filename().string();
    // The folder's precision suffix describes the checkpoint, not the model.
    for (const char* sfx : {"-f16", "-bf16", "-f32", "-fp16", "-fp32"}) {
      const std::string s(sfx);
      if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
        name.resize(name.size() - s.size());
        break;
      }
    }
  }
  w.set_string("general.name", name);
  w.set_u32(a + ".context_length", static_cast<uint32_t>(h.n_ctx));
  w.set_u32(a + ".embedding_length", static_cast<uint32_t>(h.n_embd));
  w.set_u32(a + ".block_count", static_cast<uint32_t>(h.n_layer));
  w.set_u32(a + ".feed_forward_length", static_cast<uint32_t>(h.n_ff));
  w.set_u32(a + ".attention.head_count", static_cast<uint32_t>(h.n_head));
  if (a == "gpt2") {
    w.set_f32(a + ".attention.layer_norm_epsilon", static_cast<float>(h.norm_eps));
  } else {
    w.set_u32(a + ".attention.head_count_kv", static_cast<uint32_t>(h.n_head_kv));
    w.set_u32(a + ".rope.dimension_count", static_cast<uint32_t>(h.n_rot));
    if (h.head_dim != h.n_embd / h.n_head || a == "gemma2" || a == "gemma3") {
      w.set_u32(a + ".attention.key_length", static_cast<uint32_t>(h.head_dim));
      w.set_u32(a + ".attention.value_length", static_cast<uint32_t>(h.head_dim));
    }
    w.set_u32(a + ".vocab_size", static_cast<uint32_t>(h.n_vocab));
    w.set_f32(a + ".attention.layer_norm_rms_epsilon", static_cast<float>(h.norm_eps));
    w.set_f32(a + ".rope.freq_base", static_cast<float>(h.rope_base));
    if (h.rope_linear_factor) {
      w.set_string(a + ".rope.scaling.type", "linear");
      w.set_f32(a + ".rope.scaling.factor", static_cast<float>(*h.rope_linear_factor));
    }
    if (a == "gemma2" || a == "gemma3" || a == "phi3") w.set_u32(a + ".attention.sliding_window", static_cast<uint32_t>(h.window));
    if (a == "gemma2") {
      w.set_f32(a + ".attn_logit_softcapping", static_cast<float>(h.attn_softcap));
      w.set_f32(a + ".final_logit_softcapping", static_cast<float>(h.final_softcap));
    }
    if (a == "phi3") {
      w.set_u32(a + ".rope.scaling.original_context_length", static_cast<uint32_t>(h.longrope_orig_ctx));
      if (!h.long_factors.empty()) w.set_f32(a + ".rope.scaling.attn_factor", static_cast<float>(h.longrope_attn_factor));
    }
    if (h.rope_yarn_factor) {
      w.set_string(a + ".rope.scaling.type", "yarn");
      w.set_f32(a + ".rope.scaling.factor", static_cast<float>(*h.rope_yarn_factor));
      w.set_u32(a + ".rope.scaling.original_context_length", static_cast<uint32_t>(h.yarn_orig_ctx));
    }
  }
  w.set_string("tokenizer.ggml.model", vocab.model);
  w.set_string("tokenizer.ggml.pre", vocab.pre);
  w.set_string_array("tokenizer.ggml.tokens", vocab.tokens);
  w.set_i32_array("tokenizer.ggml.token_type", vocab.token_types);
  if (vocab.model == "llama") {
    w.set_f32_array("tokenizer.ggml.scores", vocab.scores);
    if (vocab.add_space_prefix) w.set_bool("tokenizer.ggml.add_space_prefix", *vocab.add_space_prefix);
  } else {
    w.set_string_array("tokenizer.ggml.merges", vocab.merges);
  }
  if (vocab.bos) w.set_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(*vocab.bos));
  if (vocab.eos) w.set_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(*vocab.eos));
  if (vocab.eot) w.set_u32("tokenizer.ggml.eot_token_id", static_cast<uint32_t>(*vocab.eot));
  if (vocab.unk) w.set_u32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(*vocab.unk));
  if (vocab.pad) w.set_u32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(*vocab.pad));
  if (vocab.add_bos) w.set_bool("tokenizer.ggml.add_bos_token", *vocab.add_bos);
  if (vocab.add_eos) w.set_bool("tokenizer.ggml.add_eos_token", *vocab.add_eos);
  if (!vocab.chat_template.empty()) w.set_string("tokenizer.chat_template", vocab.chat_template);
  w.set_u32("general.quantization_version", 2);
  w.set_u32("general.file_type", file_type_of(main));

  ConvertResult r;
  r.arch = a;
  r.hf_arch = config.architecture;
  r.type = main;
  std::deque<std::vector<uint8_t>> buffers;  // must outlive w.write()
  for (const Item& it : items) {
    // 1-D tensors (norms, biases) and GPT-2's position table stay F32, as in the files
    // users already have; q8_0 needs rows that are whole blocks.
    DType type = main;
    if (it.ne.size() == 1 || it.name == "position_embd.weight") type = DType::F32;
    if (type == DType::Q8_0 && it.ne[0] % dtype_block_elems(DType::Q8_0) != 0) type = DType::F16;

    std::vector<float> f(static_cast<size_t>(it.src->n_elements()));
    st::to_f32(*it.src, f.data());
    const int64_t rows = it.ne.size() == 2 ? it.ne[1] : 1, cols = it.ne[0];
    switch (it.transform) {
      case Transform::PermuteQ: permute_rows(f, rows, cols, h.n_head); break;
      case Transform::PermuteK: permute_rows(f, rows, cols, h.n_head_kv); break;
      case Transform::Transpose: transpose(f, cols, rows); break;  // source is [cols][rows]
      case Transform::PlusOne:
        for (float& v : f) v += 1.0f;
        break;
      case Transform::None: break;
    }
    buffers.push_back(encode(f, type, cols));
    w.add_tensor(it.name, type, it.ne, buffers.back().data(), buffers.back().size());
    r.n_params += static_cast<uint64_t>(it.src->n_elements());
    r.tensor_bytes += buffers.back().size();
    ++r.n_tensors;
    std::string shape;
    for (int64_t v : it.ne) shape += (shape.empty() ? "" : ", ") + std::to_string(v);
    log(it.src->name + " -> " + it.name + " [" + shape + "] " + st::elem_type_name(it.src->type) + " -> " +
        dtype_name(type));
  }
  std::vector<float> rope_factors;  // must outlive w.write()
  if (h.rope_llama3) {
    rope_factors = llama3_rope_factors(h.rope_base, h.head_dim, h.llama3_factor, h.llama3_low, h.llama3_high,
                                       h.llama3_orig_ctx);
    w.add_tensor("rope_freqs.weight", DType::F32, {static_cast<int64_t>(rope_factors.size())}, rope_factors.data(),
                 rope_factors.size() * sizeof(float));
    ++r.n_tensors;
    log("(llama3 rope_scaling) -> rope_freqs.weight [" + std::to_string(rope_factors.size()) + "] F32");
  }
  std::deque<std::vector<float>> longrope;  // must outlive w.write()
  if (!h.long_factors.empty()) {
    for (const auto& [tname, f] : {std::pair{"rope_factors_long.weight", &h.long_factors},
                                   std::pair{"rope_factors_short.weight", &h.short_factors}}) {
      longrope.push_back(*f);
      w.add_tensor(tname, DType::F32, {static_cast<int64_t>(f->size())}, longrope.back().data(),
                   f->size() * sizeof(float));
      ++r.n_tensors;
      log(std::string("(longrope rope_scaling) -> ") + tname + " [" + std::to_string(f->size()) + "] F32");
    }
  }
  w.write(p.output);
  return r;
}

std::vector<float> llama3_rope_factors(double base, int64_t n_rot, double factor, double low_freq_factor,
                                       double high_freq_factor, double original_context) {
  std::vector<float> out;
  const double low_wavelen = original_context / low_freq_factor, high_wavelen = original_context / high_freq_factor;
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    const double freq = std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(n_rot));
    const double wavelen = 2.0 * 3.141592653589793 / freq;
    double f = 1.0;
    if (wavelen > low_wavelen) {
      f = factor;
    } else if (wavelen >= high_wavelen) {
      const double smooth = (original_context / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
      f = 1.0 / ((1.0 - smooth) / factor + smooth);
    }
    out.push_back(static_cast<float>(f));
  }
  return out;
}

LoraConvertResult convert_lora(const LoraConvertParams& p) {
  namespace fs = std::filesystem;
  auto log = [&](const std::string& s) {
    if (p.log) p.log(s);
  };
  if (!fs::is_directory(p.dir)) throw Error("lora: '" + p.dir + "' is not a folder");
  const nlohmann::json cfg = read_json_file((fs::path(p.dir) / "adapter_config.json").string());
  const std::string where = "lora: " + (fs::path(p.dir) / "adapter_config.json").string() + ": ";
  auto flag = [&](const char* key) { return cfg.contains(key) && cfg[key].is_boolean() && cfg[key].get<bool>(); };
  auto non_empty = [&](const char* key) {
    return cfg.contains(key) && !cfg[key].is_null() && !(cfg[key].is_object() && cfg[key].empty()) &&
           !(cfg[key].is_array() && cfg[key].empty());
  };
  if (cfg.contains("peft_type") && cfg["peft_type"] != "LORA")
    throw Error(where + "peft_type is " + cfg["peft_type"].dump() + "; only LORA adapters convert");
  if (flag("use_dora"))
    throw Error(where + "use_dora: DoRA adapters rescale each weight's columns by a learned magnitude, which a GGUF "
                        "LoRA adapter cannot express; merge it into the model with PEFT instead");
  if (cfg.contains("bias") && cfg["bias"].is_string() && cfg["bias"] != "none")
    throw Error(where + "bias is '" + cfg["bias"].get<std::string>() + "': trained biases are not part of a GGUF LoRA adapter");
  if (flag("lora_bias")) throw Error(where + "lora_bias: a trained lora_B bias is not part of a GGUF LoRA adapter");
  if (non_empty("alpha_pattern"))
    throw Error(where + "alpha_pattern gives modules their own alpha; a GGUF adapter has one");
  if (non_empty("modules_to_save"))
    throw Error(where + "modules_to_save replaces whole modules, which is not a LoRA adapter");
  if (non_empty("layer_replication")) throw Error(where + "layer_replication is not supported");
  if (!cfg.contains("r") || !cfg["r"].is_number_integer() || cfg["r"].get<int64_t>() < 1)
    throw Error(where + "r (the rank) is missing or not a positive integer");
  if (!cfg.contains("lora_alpha") || !cfg["lora_alpha"].is_number() || !(cfg["lora_alpha"].get<double>() > 0))
    throw Error(where + "lora_alpha is missing or not a positive number");
  const int64_t r = cfg["r"].get<int64_t>();
  const bool rank_pattern = non_empty("rank_pattern");
  const bool rslora = flag("use_rslora");
  if (rslora && rank_pattern)
    throw Error(where + "use_rslora with a rank_pattern gives each module its own scale; a GGUF adapter has one alpha");
  // llama.cpp's scale is alpha / rank; rsLoRA's is alpha / sqrt(rank): alpha·sqrt(r) / r.
  const double alpha = cfg["lora_alpha"].get<double>() * (rslora ? std::sqrt(static_cast<double>(r)) : 1.0);

  const std::string st_path = (fs::path(p.dir) / "adapter_model.safetensors").string();
  if (!fs::exists(st_path))
    throw Error("lora: '" + p.dir + "' has no adapter_model.safetensors (PyTorch .bin files are not read; save the "
                "adapter with safe_serialization)");
  std::unique_ptr<st::File> file = st::File::open(st_path);
  const std::unique_ptr<gguf::Reader> base = gguf::Reader::open(p.base);
  Hyper h;
  h.arch = base->get_string("general.architecture").value_or("");
  if (base->get_string("general.type").value_or("model") == "adapter")
    throw Error("lora: --base '" + p.base + "' is an adapter, not a model");
  if (h.arch.empty()) throw Error("lora: --base '" + p.base + "' has no general.architecture");
  h.n_head = base->get_int(h.arch + ".attention.head_count").value_or(0);
  h.n_head_kv = base->get_int(h.arch + ".attention.head_count_kv").value_or(h.n_head);
  if (h.n_head <= 0 || h.n_head_kv <= 0) throw Error("lora: --base '" + p.base + "' has no attention head counts");

  struct Pair {
    const st::TensorView* a = nullptr;
    const st::TensorView* b = nullptr;
    std::string hf_module;  // "model.layers.0.self_attn.q_proj"
    bool embedding = false;
  };
  std::map<std::string, Pair> pairs;  // by GGUF name
  std::map<std::string, Transform> transforms;
  for (const st::TensorView& t : file->tensors()) {
    std::string n = t.name;
    if (n.rfind("base_model.model.", 0) == 0) n = n.substr(17);
    bool is_a = false, embedding = false;
    std::string module;
    for (const auto& [suffix, a, emb] : {std::tuple{".lora_A.weight", true, false}, std::tuple{".lora_B.weight", false, false},
                                         std::tuple{".lora_embedding_A", true, true}, std::tuple{".lora_embedding_B", false, true}}) {
      const std::string sx = suffix;
      if (n.size() > sx.size() && n.compare(n.size() - sx.size(), sx.size(), sx) == 0) {
        module = n.substr(0, n.size() - sx.size());
        is_a = a;
        embedding = emb;
      }
    }
    if (module.empty())
      throw Error("lora: tensor '" + t.name + "' is not a lora_A/lora_B" +
                  (n.find("magnitude") != std::string::npos ? " (a DoRA magnitude vector)" : "") +
                  "; refusing to convert without it");
    Mapped m;
    try {
      m = map_name(h, module + ".weight");
    } catch (const Error&) {
      throw Error("lora: tensor '" + t.name + "' adapts '" + module + "', which xent's " + h.arch +
                  " architecture has no weight for");
    }
    if (m.name.empty()) throw Error("lora: tensor '" + t.name + "' adapts '" + module + "', which is not a weight");
    if (m.transform == Transform::PlusOne)
      throw Error("lora: tensor '" + t.name + "' adapts a norm, which LoRA adapters cannot change");
    if (embedding != (m.name == "token_embd.weight"))
      throw Error("lora: tensor '" + t.name + "': embedding factors on a matrix, or matrix factors on the embedding");
    if (t.shape.size() != 2) throw Error("lora: tensor '" + t.name + "' is not 2-D");
    if (t.type != st::ElemType::F32 && t.type != st::ElemType::F16 && t.type != st::ElemType::BF16)
      throw Error("lora: tensor '" + t.name + "' is " + st::elem_type_name(t.type) + " (F32, F16 or BF16 expected)");
    Pair& pr = pairs[m.name];
    (is_a ? pr.a : pr.b) = &t;
    pr.hf_module = module;
    pr.embedding = embedding;
    transforms[m.name] = m.transform;
  }
  if (pairs.empty()) throw Error("lora: '" + st_path + "' holds no LoRA tensors");
  if (cfg.contains("target_modules") && cfg["target_modules"].is_array())
    for (const auto& tm : cfg["target_modules"]) {
      if (!tm.is_string()) continue;
      const std::string name = tm.get<std::string>();
      bool found = false;
      for (const auto& [g, pr] : pairs) {
        const std::string& mod = pr.hf_module;
        found = found || mod == name ||
                (mod.size() > name.size() && mod.compare(mod.size() - name.size() - 1, name.size() + 1, "." + name) == 0);
      }
      if (!found)
        throw Error(where + "target_modules names '" + name + "', but the adapter has no tensors for it (a module " +
                    "xent's " + h.arch + " conversion does not know?)");
    }

  DType type = DType::F16;
  if (p.outtype == "auto") {
    const st::ElemType t = pairs.begin()->second.a ? pairs.begin()->second.a->type : st::ElemType::F16;
    type = t == st::ElemType::F32 ? DType::F32 : t == st::ElemType::BF16 ? DType::BF16 : DType::F16;
  } else if (!dtype_from_name(p.outtype, &type) || (type != DType::F32 && type != DType::F16 && type != DType::BF16)) {
    throw Error("lora: --outtype must be auto, f32, f16 or bf16 for an adapter, not '" + p.outtype + "'");
  }

  gguf::Writer w;
  w.set_string("general.architecture", h.arch);
  w.set_string("general.type", "adapter");
  w.set_string("general.name", fs::path(p.dir).filename().string());
  w.set_string("adapter.type", "lora");
  w.set_f32("adapter.lora.alpha", static_cast<float>(alpha));
  std::vector<std::string> names;
  for (const auto& [g, pr] : pairs) names.push_back(g);
  std::sort(names.begin(), names.end(), tensor_name_order);
  std::deque<std::vector<uint8_t>> buffers;  // must outlive w.write()
  std::deque<std::string> tensor_names;
  LoraConvertResult res;
  for (const std::string& g : names) {
    const Pair& pr = pairs[g];
    if (!pr.a || !pr.b)
      throw Error("lora: '" + pr.hf_module + "' has a lora_" + (pr.a ? "A" : "B") + " but no lora_" + (pr.a ? "B" : "A"));
    const gguf::TensorInfo* bt = base->find_tensor(g);
    if (!bt && g == "output.weight")
      throw Error("lora: the adapter changes lm_head, but the base model ties its output to the token embedding");
    if (!bt) throw Error("lora: '" + pr.hf_module + "' maps to '" + g + "', which the base model does not have");
    const int64_t n_in = bt->ne[0], n_out = bt->ne[1];
    // PEFT: A [r, in], B [out, r] (an embedding: A [r, n_vocab], B [n_embd, r]). GPT-2's
    // Conv1D modules too: PEFT's factors are in Linear orientation whatever the base stores.
    const std::vector<int64_t>& sa = pr.a->shape;
    const std::vector<int64_t>& sb = pr.b->shape;
    const int64_t rank = sa[0];
    const bool fits = pr.embedding ? sa[1] == n_out && sb[0] == n_in && sb[1] == rank
                                   : sa[1] == n_in && sb[0] == n_out && sb[1] == rank;
    if (!fits)
      throw Error("lora: '" + pr.hf_module + "': lora_A [" + std::to_string(sa[0]) + ", " + std::to_string(sa[1]) +
                  "] and lora_B [" + std::to_string(sb[0]) + ", " + std::to_string(sb[1]) + "] do not fit '" + g +
                  "' of the base (" + std::to_string(n_out) + " x " + std::to_string(n_in) + ")");
    if (rank != r && !rank_pattern)
      throw Error("lora: '" + pr.hf_module + "' has rank " + std::to_string(rank) + ", but adapter_config.json says r = " +
                  std::to_string(r));
    std::vector<float> a(static_cast<size_t>(pr.a->n_elements())), b(static_cast<size_t>(pr.b->n_elements()));
    st::to_f32(*pr.a, a.data());
    st::to_f32(*pr.b, b.data());
    switch (transforms[g]) {
      case Transform::PermuteQ: permute_rows(b, n_out, rank, h.n_head); break;
      case Transform::PermuteK: permute_rows(b, n_out, rank, h.n_head_kv); break;
      default: break;
    }
    if (pr.embedding) transpose(a, rank, n_out);  // [n_vocab][r]: the row of a token is its r factors
    const std::vector<int64_t> ne_a = pr.embedding ? std::vector<int64_t>{rank, n_out} : std::vector<int64_t>{n_in, rank};
    const std::vector<int64_t> ne_b = {rank, pr.embedding ? n_in : n_out};
    for (int ab = 0; ab < 2; ++ab) {
      const std::vector<int64_t>& ne = ab == 0 ? ne_a : ne_b;
      buffers.push_back(encode(ab == 0 ? a : b, type, ne[0]));
      const std::string& tn = tensor_names.emplace_back(g + (ab == 0 ? ".lora_a" : ".lora_b"));
      w.add_tensor(tn, type, ne, buffers.back().data(), buffers.back().size());
      res.tensor_bytes += buffers.back().size();
    }
    log(pr.hf_module + " -> " + g + ".lora_a/.lora_b, rank " + std::to_string(rank) +
        (transforms[g] == Transform::PermuteQ || transforms[g] == Transform::PermuteK ? " (rotary rows permuted)" : ""));
  }
  w.write(p.output);
  res.arch = h.arch;
  res.type = type;
  res.n_targets = names.size();
  res.rank = r;
  res.alpha = static_cast<float>(alpha);
  return res;
}

}  // namespace xent::hf
