#include "source/config_import/document.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "re2/re2.h"
#include "source/common/config/utility.h"
#include "yaml-cpp/yaml.h"

namespace sluice {
namespace ConfigImport {

std::string Diagnostic::toString() const {
  std::string out;
  if (line > 0) absl::StrAppend(&out, "line ", line, ": ");
  if (!path.empty()) absl::StrAppend(&out, path, ": ");
  absl::StrAppend(&out, message);
  return out;
}

const Node* Node::find(absl::string_view key) const {
  if (kind_ != Kind::Map) return nullptr;
  for (const auto& [k, v] : entries_) {
    if (k == key) return &v;
  }
  return nullptr;
}

const Node* Node::get(absl::string_view key) const {
  const Node* node = find(key);
  return node == nullptr || node->isNull() ? nullptr : node;
}

std::optional<bool> Node::asBool() const {
  if (kind_ != Kind::Scalar || !plain_) return std::nullopt;
  if (scalar_ == "true" || scalar_ == "True" || scalar_ == "TRUE") return true;
  if (scalar_ == "false" || scalar_ == "False" || scalar_ == "FALSE") return false;
  return std::nullopt;
}

std::optional<int64_t> Node::asInt() const {
  if (kind_ != Kind::Scalar || !plain_) return std::nullopt;
  int64_t v;
  if (absl::SimpleAtoi(scalar_, &v)) return v;
  // 1.0 is an integer in JSON's eyes.
  double d;
  if (absl::SimpleAtod(scalar_, &d) && std::isfinite(d) && d == std::floor(d) &&
      std::fabs(d) < 9.0e15) {
    return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

std::optional<double> Node::asDouble() const {
  if (kind_ != Kind::Scalar || !plain_) return std::nullopt;
  static const LazyRE2 kNumber = {R"([-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)"};
  double d;
  if (RE2::FullMatch(scalar_, *kNumber) && absl::SimpleAtod(scalar_, &d) && std::isfinite(d)) {
    return d;
  }
  return std::nullopt;
}

std::optional<std::string> Node::asString() const {
  if (kind_ != Kind::Scalar) return std::nullopt;
  return scalar_;
}

std::string Node::describe() const {
  switch (kind_) {
    case Kind::Null:
      return "null";
    case Kind::Sequence:
      return "a list";
    case Kind::Map:
      return "a map";
    case Kind::Scalar:
      break;
  }
  if (!plain_) return "a string";
  if (asBool()) return "a boolean";
  if (asInt()) return "an integer";
  if (asDouble()) return "a number";
  return "a string";
}

void Diagnostics::problem(const std::string& path, int line, std::string message) {
  if (lenient_) {
    warning(path, line, std::move(message));
  } else {
    error(path, line, std::move(message));
  }
}

void Diagnostics::error(const std::string& path, int line, std::string message) {
  ++errors_;
  all_.push_back({Diagnostic::Severity::Error, path, line, std::move(message)});
}

void Diagnostics::warning(const std::string& path, int line, std::string message) {
  all_.push_back({Diagnostic::Severity::Warning, path, line, std::move(message)});
}

std::vector<Diagnostic> Diagnostics::sorted() const {
  std::vector<Diagnostic> out = all_;
  std::stable_sort(out.begin(), out.end(),
                   [](const Diagnostic& a, const Diagnostic& b) { return a.line < b.line; });
  return out;
}

std::string pathIndex(const std::string& path, size_t index) {
  return absl::StrCat(path, "[", index, "]");
}

std::string pathField(const std::string& path, absl::string_view field) {
  return path.empty() ? std::string(field) : absl::StrCat(path, ".", field);
}

// yaml-cpp's tree -> ours, with the limits and the duplicate-key check.
class DocumentBuilder {
 public:
  explicit DocumentBuilder(Diagnostics& diagnostics) : diagnostics_(diagnostics) {}

  bool build(const YAML::Node& in, Node& out, const std::string& path, int depth) {
    if (++nodes_ > Config::kMaxAliasNodes) {
      if (!limit_reported_) {
        diagnostics_.error(path, in.Mark().line + 1,
                           absl::StrCat("more than ", Config::kMaxAliasNodes,
                                        " nodes (YAML aliases expanded): refused"));
        limit_reported_ = true;
      }
      return false;
    }
    if (depth > Config::kMaxConfigDepth) {
      diagnostics_.error(path, in.Mark().line + 1,
                         absl::StrCat("nested deeper than ", Config::kMaxConfigDepth, " levels"));
      return false;
    }
    out.line_ = in.Mark().line + 1;
    out.column_ = in.Mark().column + 1;
    switch (in.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        out.kind_ = Node::Kind::Null;
        return true;
      case YAML::NodeType::Scalar:
        out.kind_ = Node::Kind::Scalar;
        out.scalar_ = in.Scalar();
        out.plain_ = in.Tag() == "?";
        return true;
      case YAML::NodeType::Sequence: {
        out.kind_ = Node::Kind::Sequence;
        out.items_.reserve(in.size());
        size_t i = 0;
        for (const YAML::Node& item : in) {
          out.items_.emplace_back();
          if (!build(item, out.items_.back(), pathIndex(path, i++), depth + 1)) return false;
        }
        return true;
      }
      case YAML::NodeType::Map: {
        out.kind_ = Node::Kind::Map;
        std::unordered_map<std::string, size_t> seen;
        for (auto it = in.begin(); it != in.end(); ++it) {
          if (!it->first.IsScalar()) {
            diagnostics_.error(path, it->first.Mark().line + 1, "map keys must be strings");
            return false;
          }
          const std::string key = it->first.Scalar();
          const std::string child = pathField(path, key);
          Node value;
          if (!build(it->second, value, child, depth + 1)) return false;
          auto [pos, inserted] = seen.try_emplace(key, out.entries_.size());
          if (inserted) {
            out.entries_.emplace_back(key, std::move(value));
            continue;
          }
          Node& first = out.entries_[pos->second].second;
          const int first_line = first.line_;
          const int line = it->first.Mark().line + 1;
          diagnostics_.problem(
              child, line,
              diagnostics_.lenient()
                  ? absl::StrCat("duplicate key \"", key, "\" (first at line ", first_line,
                                 "): the last value is used")
                  : absl::StrCat("duplicate key \"", key, "\" (first at line ", first_line, ")"));
          first = std::move(value);
        }
        return true;
      }
    }
    return true;
  }

 private:
  Diagnostics& diagnostics_;
  size_t nodes_ = 0;
  bool limit_reported_ = false;
};

std::optional<Node> parseDocument(const std::string& text, Diagnostics& diagnostics) {
  if (text.size() > Config::kMaxConfigBytes) {
    diagnostics.error(
        "", 0,
        absl::StrCat("more than the ", Config::kMaxConfigBytes >> 20, " MiB a config may have"));
    return std::nullopt;
  }
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    diagnostics.error("", e.mark.is_null() ? 0 : e.mark.line + 1,
                      absl::StrCat("invalid YAML: ", e.msg));
    return std::nullopt;
  } catch (const std::exception& e) {
    diagnostics.error("", 0, absl::StrCat("invalid YAML: ", e.what()));
    return std::nullopt;
  }
  if (documents.size() > 1) {
    diagnostics.error("", documents[1].Mark().line + 1,
                      "more than one YAML document (one file is one config)");
    return std::nullopt;
  }
  Node root;
  if (documents.empty()) return root;
  DocumentBuilder builder(diagnostics);
  if (!builder.build(documents[0], root, "", 0)) return std::nullopt;
  return root;
}

bool checkFields(const Node& node, const std::string& path,
                 std::initializer_list<absl::string_view> known, absl::string_view source,
                 Diagnostics& diagnostics) {
  bool ok = true;
  for (const auto& [key, value] : node.entries()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    ok = false;
    diagnostics.problem(
        pathField(path, key), value.line(),
        absl::StrCat(source, " has no such field (it takes ", absl::StrJoin(known, ", "), ")"));
  }
  return ok;
}

namespace {

template <class T>
std::optional<T> typed(const Node& map, absl::string_view key, const std::string& path,
                       Diagnostics& diagnostics, absl::string_view want,
                       std::optional<T> (Node::*as)() const) {
  const Node* node = map.get(key);
  if (node == nullptr) return std::nullopt;
  std::optional<T> value = (node->*as)();
  if (!value) {
    diagnostics.error(pathField(path, key), *node,
                      absl::StrCat("must be ", want, ", not ", node->describe()));
  }
  return value;
}

}  // namespace

std::optional<std::string> getString(const Node& map, absl::string_view key,
                                     const std::string& path, Diagnostics& diagnostics) {
  return typed<std::string>(map, key, path, diagnostics, "a string", &Node::asString);
}

std::optional<int64_t> getInt(const Node& map, absl::string_view key, const std::string& path,
                              Diagnostics& diagnostics) {
  return typed<int64_t>(map, key, path, diagnostics, "an integer", &Node::asInt);
}

std::optional<double> getNumber(const Node& map, absl::string_view key, const std::string& path,
                                Diagnostics& diagnostics) {
  return typed<double>(map, key, path, diagnostics, "a number", &Node::asDouble);
}

std::optional<bool> getBool(const Node& map, absl::string_view key, const std::string& path,
                            Diagnostics& diagnostics) {
  return typed<bool>(map, key, path, diagnostics, "true or false", &Node::asBool);
}

std::optional<std::vector<std::string>> getStringList(const Node& map, absl::string_view key,
                                                      const std::string& path,
                                                      Diagnostics& diagnostics) {
  const Node* node = getSequence(map, key, path, diagnostics);
  if (node == nullptr) return std::nullopt;
  std::vector<std::string> out;
  const std::string field = pathField(path, key);
  bool ok = true;
  for (size_t i = 0; i < node->items().size(); ++i) {
    const Node& item = node->items()[i];
    if (!item.isScalar()) {
      diagnostics.error(pathIndex(field, i), item,
                        absl::StrCat("must be a string, not ", item.describe()));
      ok = false;
      continue;
    }
    out.push_back(item.scalar());
  }
  if (!ok) return std::nullopt;
  return out;
}

namespace {

const Node* getOfKind(const Node& map, absl::string_view key, const std::string& path,
                      Diagnostics& diagnostics, Node::Kind kind, absl::string_view want) {
  const Node* node = map.get(key);
  if (node == nullptr) return nullptr;
  if (node->kind() != kind) {
    diagnostics.error(pathField(path, key), *node,
                      absl::StrCat("must be ", want, ", not ", node->describe()));
    return nullptr;
  }
  return node;
}

}  // namespace

const Node* getMap(const Node& map, absl::string_view key, const std::string& path,
                   Diagnostics& diagnostics) {
  return getOfKind(map, key, path, diagnostics, Node::Kind::Map, "a map");
}

const Node* getSequence(const Node& map, absl::string_view key, const std::string& path,
                        Diagnostics& diagnostics) {
  return getOfKind(map, key, path, diagnostics, Node::Kind::Sequence, "a list");
}

}  // namespace ConfigImport
}  // namespace sluice
