#pragma once

#include "source/common/router/config.h"
#include "source/extensions/filters/http/cors/config.pb.h"
#include "source/extensions/filters/http/cors/policy.h"

namespace sluice {
namespace Extensions {
namespace Cors {

// The filter's name in http_filters and filter_config.
inline constexpr char kFilterName[] = "cors";

using CorsProto = sluice::extensions::filters::http::cors::v1::Cors;
using PerRouteProto = sluice::extensions::filters::http::cors::v1::CorsPerRoute;

// A route's (or virtual host's) compiled filter_config.cors: the policy that replaces the
// listener's there, or null for `disabled: true`.
struct RouteConfig : public Router::RouteSpecificFilterConfig {
  CorsPolicyConstSharedPtr policy;
};

// The policy settings of either config message (they share their fields).
template <class Proto>
CorsSettings settingsOf(const Proto& config) {
  CorsSettings s;
  s.origins.assign(config.origins().begin(), config.origins().end());
  s.methods.assign(config.methods().begin(), config.methods().end());
  s.headers.assign(config.headers().begin(), config.headers().end());
  s.exposed_headers.assign(config.exposed_headers().begin(), config.exposed_headers().end());
  s.credentials = config.credentials();
  if (config.has_max_age()) s.max_age = config.max_age();
  s.preflight_continue = config.preflight_continue();
  s.private_network = config.private_network();
  return s;
}

}  // namespace Cors
}  // namespace Extensions
}  // namespace sluice
