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

// YAML or JSON text -> message. Unknown fields and bad values are errors that name the field.
absl::Status loadFromYaml(const std::string& text, google::protobuf::Message& message);
absl::Status loadFromFile(const std::string& path, google::protobuf::Message& message);
// YAML text -> JSON text (YAML 1.2 core schema scalars: unquoted numbers, true/false, null).
// With `type`, Duration fields also accept "250ms", "1.5s", "2m", "1h", "100us", "10ns".
absl::StatusOr<std::string> yamlToJson(const std::string& text,
                                       const google::protobuf::Descriptor* type = nullptr);
// Message -> JSON with the proto field names (the same names the files use).
std::string toJson(const google::protobuf::Message& message, bool pretty = false);

}  // namespace Config
}  // namespace sluice
