#include "source/extensions/filters/http/auth/json.h"

#include <cmath>

#include "absl/strings/numbers.h"

namespace sluice {
namespace Extensions {
namespace Auth {

absl::StatusOr<int64_t> jsonNumericDate(const JsonValue& v) {
  if (!v.isNumber()) return absl::InvalidArgumentError("not a number");
  double d;
  if (!absl::SimpleAtod(v.str(), &d) || !std::isfinite(d) || std::fabs(d) >= 1e13) {
    return absl::InvalidArgumentError("number out of range");
  }
  return static_cast<int64_t>(std::floor(d));
}

}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
