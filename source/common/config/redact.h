#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace sluice {
namespace Config {

// Secrets in config (private keys) are the string fields marked
// `[(sluice.config.v1.sensitive) = true]` in api/ (sluice/config/v1/options.proto): that mark is
// the one list of them. Everything that prints config (the data plane's /config_dump, sluice-cp's
// ControlService answers behind `sluicectl get` and `diff`) prints it through
// toRedactedJson(); sluice-cp's state file encrypts them through forEachSensitive().
//
// Filter configs (google.protobuf.Struct) are untyped: redact() and toRedactedJson() redact in
// them what is a secret by its name (a string under a key containing password, secret, token,
// authorization, cookie or api key; every value of a `headers` map) and the password of a URL's
// user info; redactedPlaceholders() finds placeholders there too. The state file does not
// encrypt them (forEachSensitive() does not reach them).

// The field is marked sensitive.
bool isSensitive(const google::protobuf::FieldDescriptor& field);

// Messages of this type can hold a sensitive field, directly or in a nested message. Computed
// once per type, so walking a 10,000-route table (which cannot) costs nothing.
bool mayHoldSensitive(const google::protobuf::Descriptor& type);

// Calls `fn` on every non-empty sensitive value in `message` (recursively, repeated fields and
// maps included) with its path ("secrets[0].tls_certificate.private_key", relative to
// `message`); `fn` may change the value. Stops at the first error and returns it.
using SensitiveFn = std::function<absl::Status(const std::string& path, std::string& value)>;
absl::Status forEachSensitive(google::protobuf::Message& message, const SensitiveFn& fn);
// The same, reading only.
using SensitiveConstFn =
    std::function<absl::Status(const std::string& path, const std::string& value)>;
absl::Status forEachSensitive(const google::protobuf::Message& message, const SensitiveConstFn& fn);

// Errors for sensitive values that are redactedValue() placeholders (`sluicectl get` output
// applied again): "secrets[0].tls_certificate.private_key: is a redacted placeholder, not a
// value; ...", relative to `message`.
std::vector<std::string> redactedPlaceholders(const google::protobuf::Message& message);

// "[redacted sha256:ab12cd34]": the first 8 hex digits of the value's SHA-256, enough to tell
// two versions of a key apart, useless to recover it.
std::string redactedValue(absl::string_view value);

// Replaces every sensitive value in `message` by redactedValue() of it, and the secrets of
// filter configs (above).
void redact(google::protobuf::Message& message);

// toJson() (proto field names) of a redacted copy of `message`. Copies only when the message
// holds a sensitive value.
std::string toRedactedJson(const google::protobuf::Message& message, bool pretty = false);

}  // namespace Config
}  // namespace sluice
