#pragma once

#include <string>

#include "source/common/router/config.h"

namespace sluice {
namespace Extensions {
namespace Auth {

// The filter's name in http_filters and filter_config.
inline constexpr char kFilterName[] = "auth";

// A route's (or virtual host's) compiled filter_config.auth.
struct RouteConfig : public Router::RouteSpecificFilterConfig {
  // The AuthPolicy required; empty when `disabled`.
  std::string policy;
  bool disabled = false;
};

}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
