#include "runtime/sampling/grammar.h"

#include <algorithm>
#include <functional>
#include <map>
#include <unordered_map>

#include "formats/error.h"

namespace xent {

// ---- character classes ---------------------------------------------------------

bool Grammar::CharClass::matches(uint32_t cp) const {
  // ranges are sorted: find the last range starting at or before cp.
  auto it = std::upper_bound(ranges.begin(), ranges.end(), cp,
                             [](uint32_t v, const std::pair<uint32_t, uint32_t>& r) { return v < r.first; });
  const bool in = it != ranges.begin() && cp <= std::prev(it)->second;
  return in != negated;
}

bool Grammar::CharClass::intersects(uint32_t lo, uint32_t hi) const {
  if (!negated) {
    for (const auto& r : ranges)
      if (r.first <= hi && lo <= r.second) return true;
    return false;
  }
  // Merged ranges: [lo, hi] is excluded only if one range covers it whole.
  for (const auto& r : ranges)
    if (r.first <= lo && hi <= r.second) return false;
  return true;
}

// ---- parsing -------------------------------------------------------------------

namespace {

constexpr uint32_t kMaxRepeat = 10000;  // {m,n} bounds past this are refused, not expanded
// Parse-stack steps one matcher operation may take (see GrammarMatcher::Arena::spend): a
// JSON grammar over a 128K vocabulary took at most 2.6M for a whole mask (test-grammar
// "[grammar-bench]"), and this limit about 0.2 s.
constexpr uint64_t kMaxWork = uint64_t{1} << 25;

struct Sym {
  bool is_ref;
  uint32_t value;  // class index or rule index
};
using Sequence = std::vector<Sym>;

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

}  // namespace

// Builds a Grammar from GBNF text: a recursive-descent parser writing rules as sequences of
// symbols, then flattened into Grammar's element array.
class GrammarBuilder {
 public:
  explicit GrammarBuilder(std::string_view src) : src_(src) {}

  std::shared_ptr<const Grammar> build(std::string_view root_name) {
    skip_space(true);
    while (pos_ < src_.size()) {
      const size_t name_at = pos_;
      const std::string name = parse_name();
      skip_space(false);
      if (src_.substr(pos_, 3) != "::=") fail("expected '::=' after rule name '" + name + "'");
      pos_ += 3;
      skip_space(true);
      const uint32_t id = rule_id(name);
      if (defined_[id]) fail_at(name_at, "rule '" + name + "' is defined twice");
      defined_[id] = true;
      alts_[id] = parse_alternates(name, false);
      if (pos_ < src_.size() && src_[pos_] != '\n') fail("expected the end of the line after rule '" + name + "'");
      skip_space(true);
    }
    for (size_t r = 0; r < names_.size(); ++r)
      if (!defined_[r])
        fail_at(first_use_[r], "rule '" + names_[r] + "' is used but never defined");
    auto root = by_name_.find(std::string(root_name));
    if (root == by_name_.end() || !defined_[root->second])
      throw Error("grammar: no rule named '" + std::string(root_name) + "' (the start rule)");
    check_left_recursion();
    return flatten(root->second);
  }

 private:
  [[noreturn]] void fail_at(size_t at, const std::string& what) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < src_.size(); ++i) {
      if (src_[i] == '\n') ++line, col = 1;
      else ++col;
    }
    throw Error("grammar: line " + std::to_string(line) + ", column " + std::to_string(col) + ": " + what);
  }
  [[noreturn]] void fail(const std::string& what) const { fail_at(pos_, what); }

  // Spaces, tabs, carriage returns and # comments; newlines too when newline_ok (inside
  // parentheses, after '::=' and '|', between rules).
  void skip_space(bool newline_ok) {
    while (pos_ < src_.size()) {
      const char c = src_[pos_];
      if (c == ' ' || c == '\t' || c == '\r') ++pos_;
      else if (c == '\n' && newline_ok) ++pos_;
      else if (c == '#') {
        while (pos_ < src_.size() && src_[pos_] != '\n') ++pos_;
      } else break;
    }
  }

  std::string parse_name() {
    const size_t start = pos_;
    while (pos_ < src_.size() && is_name_char(src_[pos_])) ++pos_;
    if (pos_ == start) fail("expected a rule name");
    return std::string(src_.substr(start, pos_ - start));
  }

  uint32_t rule_id(const std::string& name) {
    auto it = by_name_.find(name);
    if (it != by_name_.end()) return it->second;
    return new_rule(name);
  }
  uint32_t new_rule(const std::string& name) {
    const auto id = static_cast<uint32_t>(names_.size());
    names_.push_back(name);
    alts_.emplace_back();
    defined_.push_back(false);
    first_use_.push_back(pos_);
    by_name_[name] = id;
    return id;
  }
  // A rule made by the parser (a group, a repetition), named after the rule it serves.
  uint32_t helper_rule(const std::string& owner, std::vector<Sequence> alts) {
    std::string name;
    do name = owner + "_" + std::to_string(++n_helpers_);
    while (by_name_.count(name));
    const uint32_t id = new_rule(name);
    alts_[id] = std::move(alts);
    defined_[id] = true;
    return id;
  }

  std::vector<Sequence> parse_alternates(const std::string& owner, bool nested) {
    std::vector<Sequence> alts;
    alts.push_back(parse_sequence(owner, nested));
    while (pos_ < src_.size() && src_[pos_] == '|') {
      ++pos_;
      skip_space(true);
      alts.push_back(parse_sequence(owner, nested));
    }
    return alts;
  }

  Sequence parse_sequence(const std::string& owner, bool nested) {
    Sequence seq;
    while (pos_ < src_.size()) {
      const char c = src_[pos_];
      const size_t unit_start = seq.size();
      if (c == '"') {
        ++pos_;
        while (true) {
          if (pos_ >= src_.size() || src_[pos_] == '\n') fail("unterminated string literal");
          if (src_[pos_] == '"') break;
          seq.push_back({false, single_class(parse_char())});
        }
        ++pos_;
      } else if (c == '[') {
        seq.push_back({false, parse_class()});
      } else if (c == '.') {
        ++pos_;
        Grammar::CharClass any;
        any.negated = true;  // excludes nothing
        seq.push_back({false, add_class(std::move(any))});
      } else if (c == '(') {
        ++pos_;
        skip_space(true);
        std::vector<Sequence> alts = parse_alternates(owner, true);
        if (pos_ >= src_.size() || src_[pos_] != ')') fail("expected ')'");
        ++pos_;
        seq.push_back({true, helper_rule(owner, std::move(alts))});
      } else if (is_name_char(c)) {
        const size_t at = pos_;
        const std::string name = parse_name();
        const uint32_t id = rule_id(name);
        if (!defined_[id] && first_use_[id] > at) first_use_[id] = at;
        seq.push_back({true, id});
      } else if (c == '<') {
        fail("token references (<...>) are not supported; write the token's text as a string");
      } else {
        break;  // '|', ')', a newline or the end: the caller decides
      }
      skip_space(nested);
      while (pos_ < src_.size() && (src_[pos_] == '*' || src_[pos_] == '+' || src_[pos_] == '?' || src_[pos_] == '{')) {
        if (seq.size() == unit_start) fail("a repetition with nothing before it");
        apply_repetition(owner, seq, unit_start);
        skip_space(nested);
      }
    }
    if (pos_ < src_.size() && !(src_[pos_] == '|' || src_[pos_] == ')' || src_[pos_] == '\n'))
      fail(std::string("unexpected character '") + src_[pos_] + "'");
    return seq;
  }

  // Replaces seq[unit_start..] (one primary: a class, a reference or a whole literal) by a
  // reference to a rule that repeats it.
  void apply_repetition(const std::string& owner, Sequence& seq, size_t unit_start) {
    const Sequence unit(seq.begin() + static_cast<std::ptrdiff_t>(unit_start), seq.end());
    seq.resize(unit_start);
    uint32_t min = 0, max = 0;
    bool unbounded = false;
    const char op = src_[pos_++];
    if (op == '*') unbounded = true;
    else if (op == '+') min = 1, unbounded = true;
    else if (op == '?') max = 1;
    else {
      skip_space(false);
      const bool has_min = pos_ < src_.size() && src_[pos_] >= '0' && src_[pos_] <= '9';
      if (has_min) min = parse_uint();
      skip_space(false);
      if (pos_ < src_.size() && src_[pos_] == ',') {
        ++pos_;
        skip_space(false);
        if (pos_ < src_.size() && src_[pos_] >= '0' && src_[pos_] <= '9') max = parse_uint();
        else unbounded = true;
      } else {
        if (!has_min) fail("expected a number in '{...}'");
        max = min;
      }
      skip_space(false);
      if (pos_ >= src_.size() || src_[pos_] != '}') fail("expected '}'");
      ++pos_;
      if (!unbounded && max < min) fail("repetition '{m,n}' with n < m");
    }
    // tail: what follows the `min` mandatory copies.
    std::vector<Sym> tail;
    if (unbounded) {
      // star ::= unit star | ε
      const uint32_t star = helper_rule(owner, {});
      Sequence again = unit;
      again.push_back({true, star});
      alts_[star] = {again, {}};
      tail.push_back({true, star});
    } else if (max > min) {
      // opt_k ::= unit opt_{k-1} | ε, opt_1 ::= unit | ε: at most max - min more copies.
      uint32_t inner = helper_rule(owner, {unit, {}});
      for (uint32_t k = 2; k <= max - min; ++k) {
        Sequence more = unit;
        more.push_back({true, inner});
        inner = helper_rule(owner, {more, {}});
      }
      tail.push_back({true, inner});
    }
    Sequence body;
    for (uint32_t i = 0; i < min; ++i) body.insert(body.end(), unit.begin(), unit.end());
    body.insert(body.end(), tail.begin(), tail.end());
    seq.push_back({true, helper_rule(owner, {body})});
  }

  uint32_t parse_uint() {
    uint64_t v = 0;
    while (pos_ < src_.size() && src_[pos_] >= '0' && src_[pos_] <= '9') {
      v = v * 10 + static_cast<uint64_t>(src_[pos_++] - '0');
      if (v > kMaxRepeat) fail("repetition count past " + std::to_string(kMaxRepeat));
    }
    return static_cast<uint32_t>(v);
  }

  uint32_t parse_hex(int digits) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      if (pos_ >= src_.size()) fail("short hexadecimal escape");
      const char h = src_[pos_++];
      uint32_t d;
      if (h >= '0' && h <= '9') d = static_cast<uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f') d = static_cast<uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') d = static_cast<uint32_t>(h - 'A' + 10);
      else fail("bad hexadecimal digit in an escape");
      v = v * 16 + d;
    }
    if (v > 0x10FFFF) fail("escape past U+10FFFF");
    return v;
  }

  // One character of a literal or class: an escape or one UTF-8 code point.
  uint32_t parse_char() {
    if (pos_ >= src_.size()) fail("unexpected end of input");
    const auto b = static_cast<unsigned char>(src_[pos_]);
    if (b == '\\') {
      ++pos_;
      if (pos_ >= src_.size()) fail("unterminated escape");
      const char e = src_[pos_++];
      switch (e) {
        case 'n': return '\n';
        case 'r': return '\r';
        case 't': return '\t';
        case '0': return 0;
        case '\\': case '"': case '\'': case '[': case ']': case '-': case '^': case '/': case '.':
          return static_cast<unsigned char>(e);
        case 'x': return parse_hex(2);
        case 'u': return parse_hex(4);
        case 'U': return parse_hex(8);
        default: --pos_; fail(std::string("unknown escape '\\") + e + "'");
      }
    }
    int n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (n == 0 || pos_ + static_cast<size_t>(n) > src_.size()) fail("invalid UTF-8 in the grammar");
    uint32_t cp = n == 1 ? b : n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
    for (int i = 1; i < n; ++i) {
      const auto c = static_cast<unsigned char>(src_[pos_ + static_cast<size_t>(i)]);
      if ((c & 0xC0) != 0x80) fail("invalid UTF-8 in the grammar");
      cp = (cp << 6) | (c & 0x3F);
    }
    pos_ += static_cast<size_t>(n);
    return cp;
  }

  uint32_t parse_class() {
    ++pos_;  // '['
    Grammar::CharClass cls;
    if (pos_ < src_.size() && src_[pos_] == '^') cls.negated = true, ++pos_;
    while (true) {
      if (pos_ >= src_.size() || src_[pos_] == '\n') fail("unterminated character class");
      if (src_[pos_] == ']') break;
      const uint32_t lo = parse_char();
      uint32_t hi = lo;
      if (pos_ + 1 < src_.size() && src_[pos_] == '-' && src_[pos_ + 1] != ']') {
        ++pos_;
        hi = parse_char();
        if (hi < lo) fail("character range with its end before its start");
      }
      cls.ranges.emplace_back(lo, hi);
    }
    ++pos_;
    if (cls.ranges.empty()) fail("empty character class");
    return add_class(std::move(cls));
  }

  uint32_t single_class(uint32_t cp) {
    Grammar::CharClass cls;
    cls.ranges.emplace_back(cp, cp);
    return add_class(std::move(cls));
  }

  uint32_t add_class(Grammar::CharClass cls) {
    std::sort(cls.ranges.begin(), cls.ranges.end());
    std::vector<std::pair<uint32_t, uint32_t>> merged;
    for (const auto& r : cls.ranges) {
      if (!merged.empty() && r.first <= merged.back().second + 1) merged.back().second = std::max(merged.back().second, r.second);
      else merged.push_back(r);
    }
    cls.ranges = std::move(merged);
    // Literals repeat the same few characters: share their classes.
    const std::string key = std::string(cls.negated ? "^" : "") + [&] {
      std::string k;
      for (const auto& r : cls.ranges) k += std::to_string(r.first) + "-" + std::to_string(r.second) + ",";
      return k;
    }();
    auto it = class_ids_.find(key);
    if (it != class_ids_.end()) return it->second;
    const auto id = static_cast<uint32_t>(classes_.size());
    classes_.push_back(std::move(cls));
    class_ids_[key] = id;
    return id;
  }

  // A rule that can reach itself again before reading any character would make the
  // recogniser expand forever: refuse it, naming the rule.
  void check_left_recursion() const {
    const size_t n = names_.size();
    std::vector<bool> nullable(n, false);
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t r = 0; r < n; ++r) {
        if (nullable[r]) continue;
        for (const Sequence& alt : alts_[r]) {
          bool all = true;
          for (const Sym& s : alt)
            if (!s.is_ref || !nullable[s.value]) { all = false; break; }
          if (all) { nullable[r] = true, changed = true; break; }
        }
      }
    }
    std::vector<std::vector<uint32_t>> left(n);  // rules reachable with no character read
    for (size_t r = 0; r < n; ++r)
      for (const Sequence& alt : alts_[r])
        for (const Sym& s : alt) {
          if (!s.is_ref) break;
          left[r].push_back(s.value);
          if (!nullable[s.value]) break;
        }
    std::vector<int> mark(n, 0);  // 0 new, 1 on the path, 2 done
    std::function<void(uint32_t)> visit = [&](uint32_t r) {
      mark[r] = 1;
      for (uint32_t next : left[r]) {
        if (mark[next] == 1) {
          // Report the user's rule, not a helper made for a group or repetition.
          std::string who = names_[next];
          throw Error("grammar: left recursion through rule '" + who +
                      "' (a rule that can reach itself before reading a character); rewrite it right-recursively");
        }
        if (mark[next] == 0) visit(next);
      }
      mark[r] = 2;
    };
    for (uint32_t r = 0; r < n; ++r)
      if (mark[r] == 0) visit(r);
  }

  std::shared_ptr<const Grammar> flatten(uint32_t root) {
    auto g = std::make_shared<Grammar>();
    g->classes_ = classes_;
    g->names_ = names_;
    g->root_ = root;
    g->rules_.resize(names_.size());
    for (size_t r = 0; r < names_.size(); ++r) {
      for (const Sequence& alt : alts_[r]) {
        g->rules_[r].push_back(static_cast<uint32_t>(g->elements_.size()));
        for (const Sym& s : alt)
          g->elements_.push_back({s.is_ref ? Grammar::Kind::Ref : Grammar::Kind::Chars, s.value});
        g->elements_.push_back({Grammar::Kind::End, 0});
      }
    }
    return g;
  }

  std::string_view src_;
  size_t pos_ = 0;
  std::vector<std::string> names_;
  std::vector<std::vector<Sequence>> alts_;
  std::vector<bool> defined_;
  std::vector<size_t> first_use_;
  std::map<std::string, uint32_t> by_name_;
  std::vector<Grammar::CharClass> classes_;
  std::unordered_map<std::string, uint32_t> class_ids_;
  uint32_t n_helpers_ = 0;
};

std::shared_ptr<const Grammar> Grammar::parse(std::string_view gbnf, std::string_view root) {
  return GrammarBuilder(gbnf).build(root);
}

bool Grammar::accepts(std::string_view text) const {
  // A matcher needs a shared_ptr; this grammar may not be owned by one, so borrow it.
  GrammarMatcher m(std::shared_ptr<const Grammar>(std::shared_ptr<const Grammar>(), this));
  return m.accept(text) && m.is_accepting();
}

// ---- vocabulary trie ------------------------------------------------------------

GrammarVocab::GrammarVocab(std::vector<std::string> pieces, std::vector<uint8_t> end_of_generation)
    : pieces_(std::move(pieces)), eog_(std::move(end_of_generation)) {
  eog_.resize(pieces_.size(), 0);
  // Sorting the pieces puts each trie node's subtree in one contiguous run; build the
  // trie depth-first from the sorted order, children in byte order.
  std::vector<int32_t> order;
  for (int32_t id = 0; id < n_vocab(); ++id) {
    if (eog_[static_cast<size_t>(id)]) end_tokens_.push_back(id);
    else if (!pieces_[static_cast<size_t>(id)].empty()) order.push_back(id);
    max_piece_bytes_ = std::max(max_piece_bytes_, pieces_[static_cast<size_t>(id)].size());
  }
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return pieces_[static_cast<size_t>(a)] < pieces_[static_cast<size_t>(b)];
  });
  // Node of each prefix while building: a tree of temporary child maps.
  struct Tmp {
    std::map<uint8_t, uint32_t> kids;
    std::vector<int32_t> tokens;
  };
  std::vector<Tmp> tmp(1);
  for (int32_t id : order) {
    uint32_t at = 0;
    for (char ch : pieces_[static_cast<size_t>(id)]) {
      const auto b = static_cast<uint8_t>(ch);
      auto it = tmp[at].kids.find(b);
      if (it == tmp[at].kids.end()) {
        tmp.emplace_back();
        it = tmp[at].kids.emplace(b, static_cast<uint32_t>(tmp.size() - 1)).first;
      }
      at = it->second;
    }
    tmp[at].tokens.push_back(id);
  }
  nodes_.resize(tmp.size());
  for (size_t n = 0; n < tmp.size(); ++n) {
    Node& node = nodes_[n];
    node.first_child = static_cast<uint32_t>(child_byte_.size());
    node.n_children = static_cast<uint32_t>(tmp[n].kids.size());
    for (const auto& [b, child] : tmp[n].kids) {
      child_byte_.push_back(b);
      child_node_.push_back(child);
    }
    node.first_token = static_cast<uint32_t>(node_tokens_.size());
    node.n_tokens = static_cast<uint32_t>(tmp[n].tokens.size());
    node_tokens_.insert(node_tokens_.end(), tmp[n].tokens.begin(), tmp[n].tokens.end());
  }
}

// ---- matching -------------------------------------------------------------------

// Parse stacks as linked frames (a position and the frame below it), hash-consed so that
// equal stacks get equal ids: stacks are deduplicated by comparing ids, and advancing one
// pushes or pops a frame without copying the rest. Frame 0 is the empty stack.
struct GrammarMatcher::Arena {
  struct Frame {
    uint32_t pos, parent;
  };
  std::vector<Frame> frames;
  // Open addressing, key = (pos + 1) << 32 | parent; a slot is live only when its stamp is
  // the current one, so clearing is O(1) however large the last mask walk made the table.
  std::vector<uint64_t> keys;
  std::vector<uint32_t> ids, stamps;
  uint32_t stamp = 1;
  size_t n_used = 0;
  // Frames expand() has reached in this pass (one advance or reset): a frame reached again by
  // another path through nested optional rules ("x?{1,24}") adds nothing new, and expanding it
  // again would make the work exponential in the nesting.
  std::vector<uint32_t> seen;
  uint32_t pass = 0;
  // Work left in the current operation (one accept, check, forced-bytes run or mask walk),
  // counted in stack steps. An ambiguous grammar ("item{0,40}" with "item ::= [ -~]{1,24}")
  // keeps hundreds of stacks open, and a mask walk advances each of them at every trie
  // node; the budget turns that into a clear error instead of seconds per token.
  uint64_t work_left = 0;
  void start_work() { work_left = kMaxWork; }
  void spend(uint64_t n) {
    if (n > work_left) {
      throw Error("grammar: matching one step needs more than " + std::to_string(kMaxWork) +
                  " parse-stack steps (the grammar is too ambiguous, e.g. a repetition of items that can "
                  "split the same text in many ways such as (x{1,24}){0,40}); make the repetitions unambiguous");
    }
    work_left -= n;
  }

  void new_pass() {
    if (++pass == 0) std::fill(seen.begin(), seen.end(), 0), pass = 1;
  }
  bool first_visit(uint32_t id) {
    if (id >= seen.size()) seen.resize(std::max<size_t>(frames.size(), size_t{id} + 1) * 2, 0);
    if (seen[id] == pass) return false;
    seen[id] = pass;
    return true;
  }

  void clear() {
    frames.assign(1, Frame{0, 0});
    if (keys.empty()) keys.assign(1024, 0), ids.assign(1024, 0), stamps.assign(1024, 0);
    if (++stamp == 0) std::fill(stamps.begin(), stamps.end(), 0), stamp = 1;
    n_used = 0;
  }
  static size_t slot(uint64_t key, size_t mask) {
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 24) & mask;
  }
  uint32_t intern(uint32_t pos, uint32_t parent) {
    if ((n_used + 1) * 2 > keys.size()) grow();
    const uint64_t key = (static_cast<uint64_t>(pos) + 1) << 32 | parent;
    const size_t mask = keys.size() - 1;
    size_t h = slot(key, mask);
    while (stamps[h] == stamp) {
      if (keys[h] == key) return ids[h];
      h = (h + 1) & mask;
    }
    keys[h] = key;
    stamps[h] = stamp;
    ids[h] = static_cast<uint32_t>(frames.size());
    ++n_used;
    frames.push_back({pos, parent});
    return ids[h];
  }
  void grow() {
    std::vector<uint64_t> old_keys(keys.size() * 2, 0);
    std::vector<uint32_t> old_ids(keys.size() * 2, 0), old_stamps(keys.size() * 2, 0);
    old_keys.swap(keys);
    old_ids.swap(ids);
    old_stamps.swap(stamps);
    const size_t mask = keys.size() - 1;
    for (size_t i = 0; i < old_keys.size(); ++i) {
      if (old_stamps[i] != stamp) continue;
      size_t h = slot(old_keys[i], mask);
      while (stamps[h] == stamp) h = (h + 1) & mask;
      keys[h] = old_keys[i];
      ids[h] = old_ids[i];
      stamps[h] = stamp;
    }
  }
};

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> grammar)
    : grammar_(std::move(grammar)), arena_(std::make_unique<Arena>()) {
  reset();
}

GrammarMatcher::~GrammarMatcher() = default;

uint64_t GrammarMatcher::max_work() { return kMaxWork; }
uint64_t GrammarMatcher::work_of_last_operation() const { return kMaxWork - arena_->work_left; }

// Moves a stack forward until its top is a character class or it is empty (frame 0: the
// sentence may end here), adding each resulting stack to out. A reference branches into
// one stack per alternative of the rule, above the position after the reference.
void GrammarMatcher::expand(uint32_t id, std::vector<uint32_t>& out) const {
  const auto& elements = grammar_->elements();
  while (true) {
    arena_->spend(1);
    if (!arena_->first_visit(id)) return;
    if (id == 0) {
      out.push_back(0);
      return;
    }
    const Arena::Frame f = arena_->frames[id];
    const Grammar::Element e = elements[f.pos];
    if (e.kind == Grammar::Kind::End) {
      id = f.parent;
      continue;
    }
    if (e.kind == Grammar::Kind::Chars) {
      out.push_back(id);
      return;
    }
    const uint32_t after = elements[f.pos + 1].kind == Grammar::Kind::End ? f.parent : arena_->intern(f.pos + 1, f.parent);
    for (uint32_t alt : grammar_->alternatives(e.value)) expand(arena_->intern(alt, after), out);
    return;
  }
}

void GrammarMatcher::advance(const std::vector<uint32_t>& tops, uint32_t cp, std::vector<uint32_t>& out) const {
  out.clear();
  arena_->new_pass();
  arena_->spend(tops.size());
  const auto& elements = grammar_->elements();
  const auto& classes = grammar_->classes();
  for (uint32_t id : tops) {
    if (id == 0) continue;
    const Arena::Frame f = arena_->frames[id];
    if (classes[elements[f.pos].value].matches(cp)) expand(arena_->intern(f.pos + 1, f.parent), out);
  }
  if (out.size() > 1) {
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
  }
}

void GrammarMatcher::load(std::vector<uint32_t>& tops) const {
  arena_->clear();
  arena_->start_work();
  tops.clear();
  for (const auto& stack : stacks_) {
    uint32_t id = 0;
    for (uint32_t pos : stack) id = arena_->intern(pos, id);
    tops.push_back(id);
  }
}

void GrammarMatcher::reset() {
  arena_->clear();
  arena_->start_work();
  arena_->new_pass();
  std::vector<uint32_t> tops;
  for (uint32_t alt : grammar_->alternatives(grammar_->root())) expand(arena_->intern(alt, 0), tops);
  std::sort(tops.begin(), tops.end());
  tops.erase(std::unique(tops.begin(), tops.end()), tops.end());
  stacks_.clear();
  for (uint32_t id : tops) {
    std::vector<uint32_t> stack;
    for (uint32_t at = id; at != 0; at = arena_->frames[at].parent) stack.push_back(arena_->frames[at].pos);
    std::reverse(stack.begin(), stack.end());
    stacks_.push_back(std::move(stack));
  }
  partial_ = Utf8{};
}

GrammarMatcher::Step GrammarMatcher::push_byte(Utf8& u, uint8_t b, uint32_t* cp) {
  if (u.n == 0) {
    if (b < 0x80) {
      *cp = b;
      return Step::Complete;
    }
    if (b >= 0xC2 && b <= 0xDF) u.need = 2;
    else if (b >= 0xE0 && b <= 0xEF) u.need = 3;
    else if (b >= 0xF0 && b <= 0xF4) u.need = 4;
    else return Step::Invalid;
    u.bytes[0] = b;
    u.n = 1;
    return Step::Partial;
  }
  // The second byte is narrower after four lead bytes (RFC 3629): that keeps out overlong
  // forms (E0 80 A2 would decode to '"' and close a JSON string that a JSON parser sees
  // still open), surrogates (ED A0..) and code points past U+10FFFF (F4 90..).
  const uint8_t lo = u.n == 1 && u.bytes[0] == 0xE0 ? 0xA0 : u.n == 1 && u.bytes[0] == 0xF0 ? 0x90 : 0x80;
  const uint8_t hi = u.n == 1 && u.bytes[0] == 0xED ? 0x9F : u.n == 1 && u.bytes[0] == 0xF4 ? 0x8F : 0xBF;
  if (b < lo || b > hi) return Step::Invalid;
  u.bytes[u.n++] = b;
  if (u.n < u.need) return Step::Partial;
  uint32_t v = u.bytes[0] & (u.need == 2 ? 0x1F : u.need == 3 ? 0x0F : 0x07);
  for (int i = 1; i < u.need; ++i) v = (v << 6) | (u.bytes[i] & 0x3F);
  u = Utf8{};
  *cp = v;
  return Step::Complete;
}

// Whether some stack can take a code point that starts with the held bytes: the valid
// code points they can still become form one range, from the smallest and the largest
// continuation bytes that push_byte admits.
bool GrammarMatcher::partial_fits(const std::vector<uint32_t>& tops, const Utf8& u) const {
  uint32_t lo = u.bytes[0] & (u.need == 2 ? 0x1F : u.need == 3 ? 0x0F : 0x07), hi = lo;
  for (int i = 1; i < u.need; ++i) {
    uint32_t min_c = 0x00, max_c = 0x3F;
    if (i < u.n) min_c = max_c = u.bytes[i] & 0x3Fu;
    else if (i == 1 && u.bytes[0] == 0xE0) min_c = 0x20;  // A0
    else if (i == 1 && u.bytes[0] == 0xF0) min_c = 0x10;  // 90
    else if (i == 1 && u.bytes[0] == 0xED) max_c = 0x1F;  // 9F
    else if (i == 1 && u.bytes[0] == 0xF4) max_c = 0x0F;  // 8F
    lo = (lo << 6) | min_c;
    hi = (hi << 6) | max_c;
  }
  const auto& elements = grammar_->elements();
  const auto& classes = grammar_->classes();
  for (uint32_t id : tops)
    if (id != 0 && classes[elements[arena_->frames[id].pos].value].intersects(lo, hi)) return true;
  return false;
}

bool GrammarMatcher::feed(std::vector<uint32_t>& tops, Utf8& u, std::string_view bytes) const {
  std::vector<uint32_t> next;
  for (char ch : bytes) {
    uint32_t cp = 0;
    const Step step = push_byte(u, static_cast<uint8_t>(ch), &cp);
    if (step == Step::Invalid) return false;
    if (step == Step::Partial) continue;
    advance(tops, cp, next);
    tops.swap(next);
    if (tops.empty()) return false;
  }
  if (u.n > 0 && !partial_fits(tops, u)) return false;
  return !tops.empty();
}

bool GrammarMatcher::can_accept(std::string_view bytes) const {
  if (stacks_.empty()) return false;
  std::vector<uint32_t> tops;
  load(tops);
  Utf8 u = partial_;
  return feed(tops, u, bytes);
}

bool GrammarMatcher::accept(std::string_view bytes) {
  if (stacks_.empty()) return false;
  std::vector<uint32_t> tops;
  load(tops);
  Utf8 u = partial_;
  if (!feed(tops, u, bytes)) {
    stacks_.clear();
    partial_ = Utf8{};
    return false;
  }
  stacks_.clear();
  for (uint32_t id : tops) {
    std::vector<uint32_t> stack;
    for (uint32_t at = id; at != 0; at = arena_->frames[at].parent) stack.push_back(arena_->frames[at].pos);
    std::reverse(stack.begin(), stack.end());
    stacks_.push_back(std::move(stack));
  }
  partial_ = u;
  return true;
}

bool GrammarMatcher::is_accepting() const {
  if (partial_.n != 0) return false;
  for (const auto& s : stacks_)
    if (s.empty()) return true;
  return false;
}

bool GrammarMatcher::is_done() const { return stacks_.size() == 1 && stacks_[0].empty() && partial_.n == 0; }

bool GrammarMatcher::is_dead() const { return stacks_.empty(); }

std::string GrammarMatcher::forced_bytes(size_t max_bytes) const {
  std::string out;
  if (stacks_.empty() || partial_.n != 0) return out;
  std::vector<uint32_t> tops, next;
  load(tops);
  const auto& elements = grammar_->elements();
  const auto& classes = grammar_->classes();
  while (!tops.empty()) {
    uint32_t cp = 0;
    bool first = true;
    for (uint32_t id : tops) {
      if (id == 0) return out;  // the output may end here
      const Grammar::CharClass& c = classes[elements[arena_->frames[id].pos].value];
      if (c.negated || c.ranges.size() != 1 || c.ranges[0].first != c.ranges[0].second) return out;
      if (!first && c.ranges[0].first != cp) return out;
      cp = c.ranges[0].first, first = false;
    }
    char utf8[4];
    size_t n = 0;
    if (cp < 0x80) utf8[n++] = static_cast<char>(cp);
    else if (cp < 0x800) utf8[n++] = static_cast<char>(0xC0 | (cp >> 6)), utf8[n++] = static_cast<char>(0x80 | (cp & 0x3F));
    else if (cp < 0x10000)
      utf8[n++] = static_cast<char>(0xE0 | (cp >> 12)), utf8[n++] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F)),
      utf8[n++] = static_cast<char>(0x80 | (cp & 0x3F));
    else
      utf8[n++] = static_cast<char>(0xF0 | (cp >> 18)), utf8[n++] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F)),
      utf8[n++] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F)), utf8[n++] = static_cast<char>(0x80 | (cp & 0x3F));
    if (out.size() + n > max_bytes) return out;
    out.append(utf8, n);
    advance(tops, cp, next);
    tops.swap(next);
  }
  return out;
}

bool GrammarMatcher::allows(const GrammarVocab& vocab, int32_t token) const {
  if (token < 0 || token >= vocab.n_vocab()) return false;
  if (vocab.is_end_of_generation(token)) return is_accepting();
  const std::string& piece = vocab.piece(token);
  return !piece.empty() && can_accept(piece);
}

int32_t GrammarMatcher::allowed_tokens(const GrammarVocab& vocab, std::vector<uint8_t>& allowed) const {
  const GrammarVocab* which = &vocab;
  const uint64_t sizes[2] = {static_cast<uint64_t>(vocab.n_vocab()), vocab.nodes().size()};
  std::string key(reinterpret_cast<const char*>(&which), sizeof which);
  key.append(reinterpret_cast<const char*>(sizes), sizeof sizes);
  key.append(reinterpret_cast<const char*>(partial_.bytes), partial_.n);
  key += static_cast<char>(partial_.n);
  for (const auto& stack : stacks_) {
    const auto depth = static_cast<uint32_t>(stack.size());
    key.append(reinterpret_cast<const char*>(&depth), sizeof depth);
    key.append(reinterpret_cast<const char*>(stack.data()), stack.size() * sizeof(uint32_t));
  }
  auto hit = mask_cache_.find(key);
  if (hit != mask_cache_.end()) {
    arena_->start_work();  // nothing matched: the last operation took no steps
    allowed = hit->second.allowed;
    return hit->second.n_allowed;
  }
  const int32_t n = walk_mask(vocab, allowed);
  constexpr size_t kCacheBytes = size_t{4} << 20;
  if (mask_cache_bytes_ + allowed.size() > kCacheBytes) mask_cache_.clear(), mask_cache_bytes_ = 0;
  mask_cache_.emplace(std::move(key), CachedMask{allowed, n});
  mask_cache_bytes_ += allowed.size();
  return n;
}

int32_t GrammarMatcher::walk_mask(const GrammarVocab& vocab, std::vector<uint8_t>& allowed) const {
  allowed.assign(static_cast<size_t>(vocab.n_vocab()), 0);
  int32_t n = 0;
  if (is_accepting())
    for (int32_t id : vocab.end_tokens()) allowed[static_cast<size_t>(id)] = 1, ++n;
  if (stacks_.empty()) return n;
  if (depth_tops_.size() < vocab.max_piece_bytes() + 2) depth_tops_.resize(vocab.max_piece_bytes() + 2);
  load(depth_tops_[0]);
  walk(vocab, 0, 0, partial_, allowed, &n);
  return n;
}

// Depth-first over the trie: a child is visited only while the grammar can take the
// bytes on its path, so a rejected first byte prunes every token that starts with it.
void GrammarMatcher::walk(const GrammarVocab& vocab, uint32_t node, size_t depth, const Utf8& u,
                          std::vector<uint8_t>& allowed, int32_t* n_allowed) const {
  const GrammarVocab::Node& nd = vocab.nodes()[node];
  for (uint32_t c = nd.first_child; c < nd.first_child + nd.n_children; ++c) {
    Utf8 next_u = u;
    uint32_t cp = 0;
    const Step step = push_byte(next_u, vocab.child_byte()[c], &cp);
    if (step == Step::Invalid) continue;
    std::vector<uint32_t>& next = depth_tops_[depth + 1];
    if (step == Step::Complete) {
      advance(depth_tops_[depth], cp, next);
      if (next.empty()) continue;
    } else {
      if (!partial_fits(depth_tops_[depth], next_u)) continue;
      next = depth_tops_[depth];
    }
    const uint32_t child = vocab.child_node()[c];
    const GrammarVocab::Node& cn = vocab.nodes()[child];
    for (uint32_t t = cn.first_token; t < cn.first_token + cn.n_tokens; ++t) {
      allowed[static_cast<size_t>(vocab.node_tokens()[t])] = 1;
      ++*n_allowed;
    }
    if (cn.n_children) walk(vocab, child, depth + 1, next_u, allowed, n_allowed);
  }
}

}  // namespace xent
