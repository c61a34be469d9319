#pragma once

#include <string>

#include "absl/container/flat_hash_map.h"
#include "source/common/http/policy_filter_type.h"

namespace sluice {
namespace Extensions {
namespace RateLimit {

// The filter's name in http_filters and filter_config.
inline constexpr char kFilterName[] = "rate_limit";

// A route's (or virtual host's) compiled filter_config.rate_limit: the RateLimitPolicy applied,
// and the policies of particular consumers (Kong's consumer-scoped rate-limiting).
struct RouteConfig : public Http::PolicyRouteConfig {
  absl::flat_hash_map<std::string, std::string> consumer_policies;
};

}  // namespace RateLimit
}  // namespace Extensions
}  // namespace sluice
