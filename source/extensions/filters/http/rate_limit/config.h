#pragma once

#include <string>

#include "source/common/http/policy_filter_type.h"

namespace sluice {
namespace Extensions {
namespace RateLimit {

// The filter's name in http_filters and filter_config.
inline constexpr char kFilterName[] = "rate_limit";

// A route's (or virtual host's) compiled filter_config.rate_limit: the RateLimitPolicy applied.
using RouteConfig = Http::PolicyRouteConfig;

}  // namespace RateLimit
}  // namespace Extensions
}  // namespace sluice
