#pragma once

// The input side of the config importers (Kong declarative files, OpenAPI specs): a YAML/JSON
// document as a tree that remembers where each node was written, and the diagnostics an import
// reports (errors and warnings, each with the path of the field and its line).

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace sluice {
namespace ConfigImport {

// One problem found in an imported file.
struct Diagnostic {
  enum class Severity { Error, Warning };
  Severity severity = Severity::Error;
  // The field, as a path from the document's root: "services[0].routes[1].paths[0]". Empty: the
  // document as a whole.
  std::string path;
  // 1-based line of the field in the file; 0 when unknown.
  int line = 0;
  std::string message;

  // "line 12: services[0].url: not a URL" (no "line" part when unknown, no path part when
  // empty).
  std::string toString() const;
};

// A node of the document. Maps keep their keys in file order; a key written twice keeps its
// last value (after a diagnostic, see parseDocument()).
class Node {
 public:
  enum class Kind { Null, Scalar, Sequence, Map };

  Kind kind() const { return kind_; }
  bool isNull() const { return kind_ == Kind::Null; }
  bool isScalar() const { return kind_ == Kind::Scalar; }
  bool isSequence() const { return kind_ == Kind::Sequence; }
  bool isMap() const { return kind_ == Kind::Map; }
  // 1-based line and column where the node starts.
  int line() const { return line_; }
  int column() const { return column_; }
  // The text of a scalar ("" for others).
  const std::string& scalar() const { return scalar_; }
  // A scalar written without quotes (so `5`, `true` and `null` are a number, a bool and null,
  // and `"5"` is a string).
  bool plain() const { return plain_; }
  // Map entries in file order.
  const std::vector<std::pair<std::string, Node>>& entries() const { return entries_; }
  // Sequence items.
  const std::vector<Node>& items() const { return items_; }
  // The value of `key` in a map; nullptr when absent, when the value is null, or when this is
  // not a map.
  const Node* get(absl::string_view key) const;
  // Same, but a null value is returned too (to tell `key: null` from no key).
  const Node* find(absl::string_view key) const;
  size_t size() const { return kind_ == Kind::Map ? entries_.size() : items_.size(); }

  // Typed views of a scalar; nullopt when the node is not one of that type. Numbers must be
  // plain scalars (a quoted "5" is a string); strings accept any scalar (`port: 80` read as a
  // string is "80").
  std::optional<bool> asBool() const;
  std::optional<int64_t> asInt() const;
  std::optional<double> asDouble() const;
  std::optional<std::string> asString() const;

  // "a string", "an integer", "a map", ...: what the node is, for error messages.
  std::string describe() const;

 private:
  friend class DocumentBuilder;
  Kind kind_ = Kind::Null;
  int line_ = 0;
  int column_ = 0;
  bool plain_ = false;
  std::string scalar_;
  std::vector<std::pair<std::string, Node>> entries_;
  std::vector<Node> items_;
};

// The diagnostics of one import. `problem()` is for what strict mode refuses and lenient mode
// skips (an unknown field, an unsupported plugin, a reference to nothing): an error, or with
// `lenient` a warning. `error()` is always an error (the file cannot be understood);
// `warning()` always a warning (what the source gateway would silently ignore).
class Diagnostics {
 public:
  explicit Diagnostics(bool lenient) : lenient_(lenient) {}

  bool lenient() const { return lenient_; }
  void problem(const std::string& path, int line, std::string message);
  void error(const std::string& path, int line, std::string message);
  void warning(const std::string& path, int line, std::string message);
  void problem(const std::string& path, const Node& at, std::string message) {
    problem(path, at.line(), std::move(message));
  }
  void error(const std::string& path, const Node& at, std::string message) {
    error(path, at.line(), std::move(message));
  }
  void warning(const std::string& path, const Node& at, std::string message) {
    warning(path, at.line(), std::move(message));
  }

  bool hasErrors() const { return errors_ > 0; }
  size_t errorCount() const { return errors_; }
  // In the order reported.
  const std::vector<Diagnostic>& all() const { return all_; }
  // Sorted by line (stable), for printing.
  std::vector<Diagnostic> sorted() const;

 private:
  bool lenient_;
  size_t errors_ = 0;
  std::vector<Diagnostic> all_;
};

// Paths: "services" + 0 -> "services[0]", "services[0]" + "routes" -> "services[0].routes".
std::string pathIndex(const std::string& path, size_t index);
std::string pathField(const std::string& path, absl::string_view field);

// Parses YAML (or JSON) text. Limits as for Sluice's own files (Config::kMaxConfigBytes, depth
// Config::kMaxConfigDepth, alias expansion Config::kMaxAliasNodes). A key written twice in one
// map is a problem (strict: an error naming both lines; lenient: a warning, the last value
// kept). A syntax error is an error with its line; then nullopt is returned.
std::optional<Node> parseDocument(const std::string& text, Diagnostics& diagnostics);

// Reports every key of the map `node` (at `path`) that is not in `known` as a problem:
// "<path>.<key>: <source> has no such field (it takes a, b, c)". `source` names the format
// ("Kong", "OpenAPI"). Returns false when there was one.
bool checkFields(const Node& node, const std::string& path,
                 std::initializer_list<absl::string_view> known, absl::string_view source,
                 Diagnostics& diagnostics);

// Typed reads of `map[key]` with an error naming the field when it has the wrong type.
// nullopt when absent, null, or of the wrong type (after the error).
std::optional<std::string> getString(const Node& map, absl::string_view key,
                                     const std::string& path, Diagnostics& diagnostics);
std::optional<int64_t> getInt(const Node& map, absl::string_view key, const std::string& path,
                              Diagnostics& diagnostics);
std::optional<double> getNumber(const Node& map, absl::string_view key, const std::string& path,
                                Diagnostics& diagnostics);
std::optional<bool> getBool(const Node& map, absl::string_view key, const std::string& path,
                            Diagnostics& diagnostics);
// A sequence of strings (each item checked); a lone string is refused.
std::optional<std::vector<std::string>> getStringList(const Node& map, absl::string_view key,
                                                      const std::string& path,
                                                      Diagnostics& diagnostics);
// map[key] when it is a map / a sequence (an error when it is something else); nullptr when
// absent or null.
const Node* getMap(const Node& map, absl::string_view key, const std::string& path,
                   Diagnostics& diagnostics);
const Node* getSequence(const Node& map, absl::string_view key, const std::string& path,
                        Diagnostics& diagnostics);

}  // namespace ConfigImport
}  // namespace sluice
