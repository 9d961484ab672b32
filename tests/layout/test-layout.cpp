// Holds the source tree to docs/architecture.md: the folders its include rules name exist,
// every source folder has a rule, and no file includes a header its folder may not.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const fs::path kRoot = XENT_SOURCE_DIR;

struct Rules {
  std::map<std::string, std::vector<std::string>> allowed;  // folder -> allowed prefixes
  std::set<std::string> generated;                         // headers made in the build tree
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The fenced block after the "include-rules" marker of docs/architecture.md.
Rules parse_rules(const std::string& doc) {
  Rules r;
  const size_t marker = doc.find("<!-- include-rules");
  REQUIRE(marker != std::string::npos);
  const size_t open = doc.find("```", marker);
  REQUIRE(open != std::string::npos);
  const size_t body = doc.find('\n', open) + 1;
  const size_t close = doc.find("```", body);
  REQUIRE(close != std::string::npos);
  std::istringstream lines(doc.substr(body, close - body));
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string first;
    if (!(words >> first)) continue;
    if (first == "generated:") {
      for (std::string w; words >> w;) r.generated.insert(w);
      continue;
    }
    std::string arrow;
    words >> arrow;
    INFO("rule line: " << line);
    REQUIRE(arrow == "->");
    std::vector<std::string>& to = r.allowed[first];
    for (std::string w; words >> w;) to.push_back(w);
    REQUIRE(!to.empty());
  }
  return r;
}

bool under(const std::string& path, const std::string& prefix) {
  return path == prefix || (path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0 &&
                            path[prefix.size()] == '/');
}

// The deepest rule covering `folder`, or "" when none does.
std::string rule_for(const Rules& r, const std::string& folder) {
  std::string best;
  for (const auto& [f, _] : r.allowed)
    if (under(folder, f) && f.size() > best.size()) best = f;
  return best;
}

const std::vector<std::string> kSourceTops = {"formats", "core", "backends", "runtime", "models",
                                              "include", "apps", "tools", "examples"};

bool is_source(const fs::path& p) {
  const std::string e = p.extension().string();
  return e == ".cpp" || e == ".h" || e == ".c" || e == ".cu" || e == ".cuh";
}

std::string rel(const fs::path& p) { return fs::relative(p, kRoot).generic_string(); }

// Where `#include "inc"` in a file of `folder` resolves, as the build's include paths do:
// the repository root, the including file's folder, include/, and apps/ (tools share
// its headers). "" when it resolves nowhere in the tree.
std::string resolve(const std::string& folder, const std::string& inc) {
  for (const fs::path& base : {kRoot, kRoot / folder, kRoot / "include", kRoot / "apps"}) {
    const fs::path p = base / inc;
    if (fs::is_regular_file(p)) return rel(fs::weakly_canonical(p));
  }
  return "";
}

std::string parent_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

struct Walk {
  std::vector<std::string> violations, unruled, unresolved;
  size_t n_files = 0, n_includes = 0;
};

// Every quoted include of every source file under the source folders, judged by `rules`.
Walk walk_tree(const Rules& rules) {
  const std::regex include_re(R"re(^\s*#\s*include\s+"([^"]+)")re");
  Walk w;
  for (const std::string& top : kSourceTops) {
    if (!fs::is_directory(kRoot / top)) continue;
    for (const auto& entry : fs::recursive_directory_iterator(kRoot / top)) {
      if (!entry.is_regular_file() || !is_source(entry.path())) continue;
      const std::string file = rel(entry.path());
      const std::string folder = parent_of(file);
      const std::string rule = rule_for(rules, folder);
      if (rule.empty()) {
        w.unruled.push_back(file);
        continue;
      }
      ++w.n_files;
      std::istringstream text(read_file(entry.path()));
      std::string line;
      std::smatch m;
      while (std::getline(text, line)) {
        if (!std::regex_search(line, m, include_re)) continue;
        const std::string inc = m[1];
        if (rules.generated.count(inc)) continue;
        const std::string target = resolve(folder, inc);
        if (target.empty()) {
          w.unresolved.push_back(file + " includes \"" + inc + "\"");
          continue;
        }
        ++w.n_includes;
        const auto& to = rules.allowed.at(rule);
        const bool ok = std::any_of(to.begin(), to.end(), [&](const std::string& t) { return under(target, t); });
        if (!ok) w.violations.push_back(file + " -> " + target + " (rule: " + rule + ")");
      }
    }
  }
  return w;
}

}  // namespace

TEST_CASE("docs/architecture.md's include rules hold in the tree", "[layout]") {
  const Rules rules = parse_rules(read_file(kRoot / "docs" / "architecture.md"));
  REQUIRE(rules.allowed.size() >= 10);

  for (const auto& [folder, to] : rules.allowed) {
    INFO("rule for " << folder);
    CHECK(fs::is_directory(kRoot / folder));
    for (const std::string& t : to) {
      INFO("allowed entry " << t);
      CHECK(fs::exists(kRoot / t));
    }
  }

  const Walk w = walk_tree(rules);
  for (const auto& u : w.unruled) UNSCOPED_INFO("no rule: " << u);
  CHECK(w.unruled.empty());
  for (const auto& u : w.unresolved) UNSCOPED_INFO("unresolved: " << u);
  CHECK(w.unresolved.empty());
  for (const auto& v : w.violations) UNSCOPED_INFO("forbidden include: " << v);
  CHECK(w.violations.empty());
  // The walk really saw the tree (a wrong root would make the checks above vacuous).
  CHECK(w.n_files > 100);
  CHECK(w.n_includes > 200);
}

TEST_CASE("the layout check reports a forbidden arrow and a folder without a rule", "[layout]") {
  // Rules stricter than the real ones: core may not include formats (core/tensor.h does),
  // and runtime/ has no rule at all.
  const Rules rules = parse_rules(
      "<!-- include-rules -->\n```\nformats -> formats\ncore -> core\nbackends -> backends core formats\n"
      "models -> models runtime core formats\ninclude -> include\napps -> apps include\n"
      "tools -> tools apps runtime backends core formats include\nexamples -> include\n"
      "generated: web-index.h\n```\n");
  CHECK(rule_for(rules, "backends/cpu/ref") == "backends");
  CHECK(rule_for(rules, "runtime/chat") == "");
  const Walk w = walk_tree(rules);
  CHECK(std::find(w.violations.begin(), w.violations.end(),
                  "core/tensor.h -> formats/dtype.h (rule: core)") != w.violations.end());
  CHECK(std::find(w.unruled.begin(), w.unruled.end(), "runtime/chat/jinja.h") != w.unruled.end());
  CHECK(w.unresolved.empty());
}
