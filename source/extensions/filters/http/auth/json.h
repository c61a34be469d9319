#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "source/common/common/json_value.h"

namespace sluice {
namespace Extensions {
namespace Auth {

// JWTs and JWKS documents are read with the common strict JSON reader (json_value.h): duplicate
// member names refused (RFC 7515 4), nesting at most kMaxJsonDepth.
using JsonValue = Json::Value;

constexpr int kMaxJsonDepth = 32;

inline absl::StatusOr<JsonValue> parseJson(absl::string_view text) {
  Json::ParseOptions options;
  options.max_depth = kMaxJsonDepth;
  options.reject_duplicate_names = true;
  return Json::parse(text, options);
}

// A JSON number as seconds since the epoch (exp, nbf): an integer or decimal whose magnitude is
// below 1e13 (year ~318857), else an error. Fractions are truncated toward negative infinity.
absl::StatusOr<int64_t> jsonNumericDate(const JsonValue& v);

}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
