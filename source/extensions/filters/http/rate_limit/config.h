#pragma once

#include <string>

#include "source/common/router/config.h"

namespace sluice {
namespace Extensions {
namespace RateLimit {

// The filter's name in http_filters and filter_config.
inline constexpr char kFilterName[] = "rate_limit";

// A route's (or virtual host's) compiled filter_config.rate_limit.
struct RouteConfig : public Router::RouteSpecificFilterConfig {
  // The RateLimitPolicy applied; empty when `disabled`.
  std::string policy;
  bool disabled = false;
};

}  // namespace RateLimit
}  // namespace Extensions
}  // namespace sluice
