#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/message.h"

namespace sluice {
namespace Config {

// Collects every error of a config so a user sees all of them at once.
class ErrorList {
 public:
  void add(const std::string& field, const std::string& message) {
    errors_.push_back(field + ": " + message);
  }
  void add(const absl::Status& status) {
    if (!status.ok()) errors_.push_back(std::string(status.message()));
  }
  bool empty() const { return errors_.empty(); }
  size_t size() const { return errors_.size(); }
  absl::Status status() const {
    return errors_.empty() ? absl::OkStatus()
                           : absl::InvalidArgumentError(absl::StrJoin(errors_, "\n"));
  }

 private:
  std::vector<std::string> errors_;
};

#define RETURN_IF_ERRORS(errors) \
  do {                           \
    if (!(errors).empty()) {     \
      return (errors).status();  \
    }                            \
  } while (0)

// A non-negative duration in milliseconds; errors name `field`.
absl::StatusOr<std::chrono::milliseconds> durationMs(const google::protobuf::Duration& d,
                                                     const std::string& field);
// Duration field with a default when unset.
std::chrono::milliseconds durationOr(bool has, const google::protobuf::Duration& d,
                                     std::chrono::milliseconds def);

// Limits of a config text (docs/configuration.md, "Limits of a config file"). Each is far above
// what a real config needs (sluice-cp's 10,000-route tables are a few MB) and keeps a hostile
// or broken file from costing more than a second or two and a few hundred MB.
//
// Bytes in a config file or text.
constexpr size_t kMaxConfigBytes = 16 << 20;
// Nested maps and lists.
constexpr int kMaxConfigDepth = 64;
// What YAML aliases (`*name`) may add to a config when they are expanded: nodes (maps, lists
// and scalars) and bytes of JSON. A "billion laughs" bomb hits these within milliseconds.
constexpr size_t kMaxAliasNodes = 1000000;
constexpr size_t kMaxAliasBytes = 64 << 20;

// YAML or JSON text -> message. Unknown fields and bad values are errors that name the field;
// duplicate keys, a second YAML document (or anything after a JSON object), nesting deeper than
// kMaxConfigDepth, alias expansion beyond kMaxAlias* and enum numbers that name no value are
// errors too, with their line where the text has one.
absl::Status loadFromYaml(const std::string& text, google::protobuf::Message& message);
// readConfigFile() then loadFromYaml().
absl::Status loadFromFile(const std::string& path, google::protobuf::Message& message);
// The text of a config file: a regular file (or a pipe, as in `-c /dev/stdin`) of at most
// kMaxConfigBytes. Directories, devices and bigger files are refused without reading them.
absl::StatusOr<std::string> readConfigFile(const std::string& path);
// YAML text -> JSON text (YAML 1.2 core schema scalars: unquoted numbers, true/false, null).
// With `type`, Duration fields also accept "250ms", "1.5s", "2m", "1h", "100us", "10ns", two keys
// naming the same field ("connect_timeout" and "connectTimeout") are duplicates, and an enum
// number that names no value of its enum is an error. The same limits as loadFromYaml().
absl::StatusOr<std::string> yamlToJson(const std::string& text,
                                       const google::protobuf::Descriptor* type = nullptr);
// Every enum field set in `message` (recursively) holds a value its enum defines: protobuf's
// JSON parser accepts any number for an open enum. Errors name the field path ("a.b[2].c").
absl::Status checkEnumValues(const google::protobuf::Message& message);
// Message -> JSON with the proto field names (the same names the files use).
std::string toJson(const google::protobuf::Message& message, bool pretty = false);

}  // namespace Config
}  // namespace sluice
