#pragma once

#include <string>

#include "source/common/http/policy_filter_type.h"

namespace sluice {
namespace Extensions {
namespace Auth {

// The filter's name in http_filters and filter_config.
inline constexpr char kFilterName[] = "auth";

// A route's (or virtual host's) compiled filter_config.auth: the AuthPolicy it requires.
using RouteConfig = Http::PolicyRouteConfig;

}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
