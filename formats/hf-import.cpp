#include "formats/hf-import.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <unordered_map>

#include "formats/error.h"

namespace xent::hf {
namespace {

namespace fs = std::filesystem;

constexpr int32_t kNormal = 1, kControl = 3, kUserDefined = 4, kUnused = 5;

std::string join(const std::string& dir, const char* name) { return (fs::path(dir) / name).string(); }

// Special-token entries are either "text" or {"content": "text", ...}.
std::optional<std::string> token_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

// "<typ>_token_id" may be an int or a list (generation_config lists several EOS ids).
std::optional<int32_t> token_id(const nlohmann::json& v) {
  if (v.is_number_integer()) return v.get<int32_t>();
  if (v.is_array() && !v.empty() && v[0].is_number_integer()) return v[0].get<int32_t>();
  return std::nullopt;
}

// The regexes below are the split patterns the tokenizer families publish in their
// tokenizer.json; a few characteristic fragments are enough to tell them apart.
bool contains(const std::string& s, const char* frag) { return s.find(frag) != std::string::npos; }

void collect_pre(const nlohmann::json& p, std::vector<std::string>& splits, bool& byte_level_regex, bool& digits) {
  if (!p.is_object()) return;
  const std::string type = p.value("type", "");
  if (type == "Sequence" && p.contains("pretokenizers")) {
    for (const auto& q : p["pretokenizers"]) collect_pre(q, splits, byte_level_regex, digits);
  } else if (type == "Split" && p.contains("pattern")) {
    const auto& pat = p["pattern"];
    if (pat.is_object() && pat.contains("Regex") && pat["Regex"].is_string()) splits.push_back(pat["Regex"]);
    if (pat.is_object() && pat.contains("String") && pat["String"].is_string()) splits.push_back(pat["String"]);
  } else if (type == "ByteLevel") {
    byte_level_regex = byte_level_regex || p.value("use_regex", true);
  } else if (type == "Digits") {
    digits = digits || p.value("individual_digits", false);
  }
}

// Protobuf wire format, bounds-checked: a cursor over one message's bytes.
struct Wire {
  const uint8_t* p;
  const uint8_t* end;
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p >= end) throw Error("tokenizer.model: truncated varint");
      const uint8_t b = *p++;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    throw Error("tokenizer.model: varint longer than 10 bytes");
  }
  Wire bytes() {
    const uint64_t n = varint();
    if (n > static_cast<uint64_t>(end - p)) throw Error("tokenizer.model: a field runs past the end of its message");
    Wire w{p, p + n};
    p += n;
    return w;
  }
  float fixed32() {
    if (end - p < 4) throw Error("tokenizer.model: truncated fixed32");
    float f;
    std::memcpy(&f, p, 4);
    p += 4;
    return f;
  }
  void skip(uint32_t wire_type) {
    switch (wire_type) {
      case 0: varint(); return;
      case 1: if (end - p < 8) throw Error("tokenizer.model: truncated fixed64"); p += 8; return;
      case 2: bytes(); return;
      case 5: fixed32(); return;
      default: throw Error("tokenizer.model: unknown wire type " + std::to_string(wire_type));
    }
  }
};

}  // namespace

SpmModel parse_spm_model(const std::vector<uint8_t>& bytes) {
  SpmModel m;
  Wire top{bytes.data(), bytes.data() + bytes.size()};
  while (top.p < top.end) {
    const uint64_t tag = top.varint();
    const uint32_t field = static_cast<uint32_t>(tag >> 3), wt = static_cast<uint32_t>(tag & 7);
    if (field == 1 && wt == 2) {  // repeated SentencePiece pieces
      Wire sp = top.bytes();
      std::string piece;
      float score = 0;
      int32_t type = 1;  // NORMAL
      while (sp.p < sp.end) {
        const uint64_t t = sp.varint();
        const uint32_t f = static_cast<uint32_t>(t >> 3), w = static_cast<uint32_t>(t & 7);
        if (f == 1 && w == 2) {
          Wire s = sp.bytes();
          piece.assign(reinterpret_cast<const char*>(s.p), static_cast<size_t>(s.end - s.p));
        } else if (f == 2 && w == 5) {
          score = sp.fixed32();
        } else if (f == 3 && w == 0) {
          type = static_cast<int32_t>(sp.varint());
          if (type < 1 || type > 6) throw Error("tokenizer.model: piece type " + std::to_string(type) + " is unknown");
        } else {
          sp.skip(w);
        }
      }
      m.pieces.push_back(std::move(piece));
      m.scores.push_back(score);
      m.types.push_back(type);
      if (m.pieces.size() > (size_t{1} << 24)) throw Error("tokenizer.model: too many pieces");
    } else if (field == 3 && wt == 2) {  // NormalizerSpec
      Wire ns = top.bytes();
      while (ns.p < ns.end) {
        const uint64_t t = ns.varint();
        const uint32_t f = static_cast<uint32_t>(t >> 3), w = static_cast<uint32_t>(t & 7);
        if (f == 3 && w == 0) m.add_dummy_prefix = ns.varint() != 0;
        else ns.skip(w);
      }
    } else {
      top.skip(wt);
    }
  }
  if (m.pieces.empty()) throw Error("tokenizer.model has no pieces");
  return m;
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open '" + path + "'");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error("'" + path + "' is not valid JSON: " + e.what());
  }
}

nlohmann::json read_json_if_exists(const std::string& path) {
  if (!fs::exists(path)) return nlohmann::json::object();
  return read_json_file(path);
}

Config Config::load(const std::string& dir) {
  Config c;
  const std::string path = join(dir, "config.json");
  if (!fs::exists(path)) throw Error("'" + dir + "' has no config.json (is it a Hugging Face checkpoint folder?)");
  c.json = read_json_file(path);
  if (!c.json.is_object()) throw Error("'" + path + "' is not a JSON object");
  if (c.json.contains("architectures") && c.json["architectures"].is_array() && !c.json["architectures"].empty() &&
      c.json["architectures"][0].is_string())
    c.architecture = c.json["architectures"][0].get<std::string>();
  if (c.json.contains("model_type") && !c.json["model_type"].is_null()) {
    if (!c.json["model_type"].is_string()) throw Error("'" + path + "': model_type is not a string");
    c.model_type = c.json["model_type"].get<std::string>();
  }
  return c;
}

std::optional<int64_t> Config::find_int(std::initializer_list<const char*> keys) const {
  for (const char* k : keys) {
    auto it = json.find(k);
    if (it != json.end() && it->is_number_integer()) return it->get<int64_t>();
  }
  return std::nullopt;
}

int64_t Config::get_int(std::initializer_list<const char*> keys) const {
  if (auto v = find_int(keys)) return *v;
  std::string names;
  for (const char* k : keys) names += (names.empty() ? "" : " / ") + std::string(k);
  throw Error("config.json: missing integer " + names);
}

std::optional<double> Config::find_float(std::initializer_list<const char*> keys) const {
  for (const char* k : keys) {
    auto it = json.find(k);
    if (it != json.end() && it->is_number()) return it->get<double>();
  }
  return std::nullopt;
}

bool Config::get_bool_or(const char* key, bool fallback) const {
  auto it = json.find(key);
  return it != json.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

std::string identify_pre_tokenizer(const nlohmann::json& pre_tokenizer) {
  std::vector<std::string> splits;
  bool byte_level_regex = false, digits = false;
  collect_pre(pre_tokenizer, splits, byte_level_regex, digits);
  for (const std::string& r : splits) {
    // GPT-4o (Phi-4-mini) and Tekken (Mistral Nemo): words split at case changes; GPT-4o
    // keeps contractions and groups digits by three, Tekken splits every digit.
    if (contains(r, "[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+")) {
      if (contains(r, "\\p{N}{1,3}") && contains(r, "(?i:'s|'t|'re|'ve|'m|'ll|'d)?")) return "gpt-4o";
      if (contains(r, "|\\p{N}|") && !contains(r, "'s|'t")) return "tekken";
    }
    // Llama 3: numbers in groups of up to three digits.
    if (contains(r, "\\p{N}{1,3}") && contains(r, "(?i:'s|'t|'re|'ve|'m|'ll|'d)")) return "llama-bpe";
    // Qwen2: the Llama 3 pattern with single digits.
    if (contains(r, "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|")) return "qwen2";
    // GPT-2's own pattern written out as a Split.
    if (contains(r, "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+")) return "gpt-2";
  }
  if (splits.empty() && byte_level_regex) return digits ? "smollm" : "gpt-2";
  return "";
}

namespace {
Vocab read_vocab_files(const std::string& dir, const Config& config, int64_t n_vocab, const std::string& default_pre,
                       const std::string& pre_override) {
  Vocab v;
  std::map<int64_t, std::pair<std::string, int32_t>> by_id;  // id -> (text, type)
  std::unordered_map<std::string, int32_t> id_of;
  std::string detected_pre;

  const std::string tj_path = join(dir, "tokenizer.json");
  const std::string spm_path = join(dir, "tokenizer.model");
  std::map<int64_t, float> score_of;
  if (fs::exists(spm_path)) {
    std::ifstream in(spm_path, std::ios::binary);
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const SpmModel m = parse_spm_model(bytes);
    v.model = "llama";
    v.add_space_prefix = m.add_dummy_prefix;
    for (size_t i = 0; i < m.pieces.size(); ++i) {
      by_id[static_cast<int64_t>(i)] = {m.pieces[i], m.types[i]};
      score_of[static_cast<int64_t>(i)] = m.scores[i];
    }
    // Tokens added on top of the SentencePiece model (chat markers): tokenizer.json's
    // added_tokens, else tokenizer_config.json's added_tokens_decoder.
    const nlohmann::json tj = read_json_if_exists(tj_path);
    const nlohmann::json tcj = read_json_if_exists(join(dir, "tokenizer_config.json"));
    auto add = [&](int64_t id, const std::string& text, bool special) {
      if (id < 0 || id >= (int64_t{1} << 24)) throw Error("added token '" + text + "' has an id out of range");
      auto it = by_id.find(id);
      if (it != by_id.end() && it->second.first == text && it->second.second == kControl) return;
      by_id[id] = {text, special ? kControl : kUserDefined};
      score_of.erase(id);  // an added token scores below every piece
    };
    if (tj.is_object() && tj.contains("added_tokens") && tj["added_tokens"].is_array()) {
      for (const auto& a : tj["added_tokens"])
        if (a.contains("id") && a["id"].is_number_integer() && a.contains("content") && a["content"].is_string())
          add(a["id"].get<int64_t>(), a["content"].get<std::string>(), a.value("special", false));
    } else if (tcj.is_object() && tcj.contains("added_tokens_decoder") && tcj["added_tokens_decoder"].is_object()) {
      for (auto it = tcj["added_tokens_decoder"].begin(); it != tcj["added_tokens_decoder"].end(); ++it)
        if (it.value().is_object() && it.value().contains("content") && it.value()["content"].is_string())
          add(std::stoll(it.key()), it.value()["content"].get<std::string>(), it.value().value("special", false));
    }
  } else if (fs::exists(tj_path)) {
    const nlohmann::json tj = read_json_file(tj_path);
    const auto& model = tj.contains("model") ? tj["model"] : nlohmann::json();
    const std::string type = model.is_object() ? model.value("type", "") : "";
    if (type != "BPE")
      throw Error("tokenizer.json: model type '" + type + "' is not supported (byte-level BPE only)");
    if (model.value("byte_fallback", false))
      throw Error("tokenizer.json: BPE with byte_fallback (a SentencePiece-style vocabulary) is not supported yet");
    if (!model.contains("vocab") || !model["vocab"].is_object()) throw Error("tokenizer.json: model.vocab missing");
    for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
      if (!it.value().is_number_integer()) throw Error("tokenizer.json: vocab id of '" + it.key() + "' is not an integer");
      by_id[it.value().get<int64_t>()] = {it.key(), kNormal};
    }
    if (model.contains("merges") && model["merges"].is_array()) {
      for (const auto& m : model["merges"]) {
        if (m.is_string()) {
          v.merges.push_back(m.get<std::string>());
        } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
          v.merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
        } else {
          throw Error("tokenizer.json: merge " + std::to_string(v.merges.size()) + " is neither \"a b\" nor [a, b]");
        }
      }
    }
    if (tj.contains("added_tokens") && tj["added_tokens"].is_array()) {
      for (const auto& a : tj["added_tokens"]) {
        if (!a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") || !a["content"].is_string())
          throw Error("tokenizer.json: an added token lacks id or content");
        by_id[a["id"].get<int64_t>()] = {a["content"].get<std::string>(), a.value("special", false) ? kControl : kUserDefined};
      }
    }
    if (tj.contains("pre_tokenizer")) detected_pre = identify_pre_tokenizer(tj["pre_tokenizer"]);
    if (detected_pre.empty())
      throw Error("tokenizer.json: pre-tokenizer not recognised (known: gpt-2, llama-bpe, qwen2, smollm); name one with --pre");
  } else if (fs::exists(join(dir, "vocab.json")) && fs::exists(join(dir, "merges.txt"))) {
    const nlohmann::json vj = read_json_file(join(dir, "vocab.json"));
    if (!vj.is_object()) throw Error("vocab.json is not an object");
    for (auto it = vj.begin(); it != vj.end(); ++it) {
      if (!it.value().is_number_integer()) throw Error("vocab.json: id of '" + it.key() + "' is not an integer");
      by_id[it.value().get<int64_t>()] = {it.key(), kNormal};
    }
    std::ifstream in(join(dir, "merges.txt"), std::ios::binary);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty() || line.rfind("#version", 0) == 0) continue;
      if (line.find(' ') == std::string::npos) throw Error("merges.txt: line '" + line + "' is not \"a b\"");
      v.merges.push_back(line);
    }
    detected_pre = "gpt-2";  // vocab.json + merges.txt is the original GPT-2 tokenizer format
  } else {
    throw Error("'" + dir + "' has no tokenizer (tokenizer.json, or vocab.json + merges.txt)");
  }
  if (by_id.empty()) throw Error("the tokenizer has no tokens");
  if (by_id.begin()->first < 0) throw Error("the tokenizer has a negative token id");
  const int64_t max_id = by_id.rbegin()->first;
  if (max_id >= (int64_t{1} << 31) - 1) throw Error("token id " + std::to_string(max_id) + " is too large");
  const int64_t n = std::max(n_vocab, max_id + 1);
  v.tokens.resize(static_cast<size_t>(n));
  v.token_types.assign(static_cast<size_t>(n), kUnused);
  for (int64_t i = 0; i < n; ++i) v.tokens[i] = "[PAD" + std::to_string(i) + "]";
  for (const auto& [id, tt] : by_id) {
    v.tokens[id] = tt.first;
    v.token_types[id] = tt.second;
    id_of[tt.first] = static_cast<int32_t>(id);
  }
  if (v.model == "llama") {
    // Padding and added tokens score below every piece, as other converters write them.
    v.scores.assign(static_cast<size_t>(n), -1000.0f);
    for (const auto& [id, sc] : score_of)
      if (id < n) v.scores[static_cast<size_t>(id)] = sc;
  }

  // The GPT-2 regex is the default of byte-level BPE, so a tokenizer.json without its own
  // split pattern does not say which family it belongs to; the architecture does.
  v.pre = v.model == "llama"         ? (pre_override.empty() ? "default" : pre_override)
          : !pre_override.empty()    ? pre_override
          : (detected_pre == "gpt-2" && !default_pre.empty()) ? default_pre : detected_pre;

  // Special tokens: tokenizer_config.json, then special_tokens_map.json (texts), then
  // config.json and generation_config.json (ids). The first source that names one wins.
  const nlohmann::json tc = read_json_if_exists(join(dir, "tokenizer_config.json"));
  const nlohmann::json stm = read_json_if_exists(join(dir, "special_tokens_map.json"));
  const nlohmann::json gc = read_json_if_exists(join(dir, "generation_config.json"));
  struct Slot {
    const char* name;
    std::optional<int32_t>* id;
  };
  for (Slot s : {Slot{"bos", &v.bos}, Slot{"eos", &v.eos}, Slot{"unk", &v.unk}, Slot{"pad", &v.pad}}) {
    const std::string key = std::string(s.name) + "_token";
    for (const nlohmann::json* src : {&tc, &stm}) {
      if (s.id->has_value() || !src->is_object() || !src->contains(key)) continue;
      if (auto text = token_text((*src)[key])) {
        auto it = id_of.find(*text);
        if (it != id_of.end()) *s.id = it->second;
      }
    }
    for (const nlohmann::json* src : {&config.json, &gc}) {
      if (s.id->has_value() || !src->is_object() || !src->contains(key + "_id")) continue;
      if (auto id = token_id((*src)[key + "_id"]); id && *id >= 0 && *id < n) *s.id = *id;
    }
  }
  // End of turn: the chat families' turn terminators, when they differ from EOS.
  for (const char* t : {"<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|end_of_turn|>"}) {
    auto it = id_of.find(t);
    if (it != id_of.end() && v.token_types[it->second] == kControl && v.eos != it->second) {
      v.eot = it->second;
      break;
    }
  }
  // Without tokenizer.json nothing marks special tokens; the ones named above are.
  for (const auto& id : {v.bos, v.eos, v.eot, v.unk, v.pad})
    if (id && v.token_types[*id] == kNormal && v.tokens[*id].size() > 2 && v.tokens[*id].front() == '<' &&
        v.tokens[*id].back() == '>')
      v.token_types[*id] = kControl;

  if (tc.is_object()) {
    if (tc.contains("add_bos_token") && tc["add_bos_token"].is_boolean()) v.add_bos = tc["add_bos_token"].get<bool>();
    if (tc.contains("add_eos_token") && tc["add_eos_token"].is_boolean()) v.add_eos = tc["add_eos_token"].get<bool>();
    if (tc.contains("chat_template")) {
      const auto& ct = tc["chat_template"];
      if (ct.is_string()) {
        v.chat_template = ct.get<std::string>();
      } else if (ct.is_array()) {  // [{"name": "default", "template": ...}, ...]
        for (const auto& e : ct)
          if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e["template"].is_string())
            v.chat_template = e["template"].get<std::string>();
      }
    }
  }
  if (v.chat_template.empty() && fs::exists(join(dir, "chat_template.jinja"))) {
    std::ifstream in(join(dir, "chat_template.jinja"), std::ios::binary);
    v.chat_template.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return v;
}
}  // namespace

// The tokenizer files are JSON from anywhere: a field of the wrong JSON type (an id that is a
// string, a token text that is a number) is a clear error naming the folder, whichever field it is.
Vocab read_vocab(const std::string& dir, const Config& config, int64_t n_vocab, const std::string& default_pre,
                 const std::string& pre_override) {
  try {
    return read_vocab_files(dir, config, n_vocab, default_pre, pre_override);
  } catch (const nlohmann::json::exception& e) {
    throw Error("'" + dir + "': a tokenizer file has a field of the wrong type: " + e.what());
  }
}

}  // namespace xent::hf
