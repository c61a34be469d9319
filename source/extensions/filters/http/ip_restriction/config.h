#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "source/common/config/utility.h"
#include "source/common/network/cidr.h"
#include "source/common/router/config.h"
#include "source/extensions/filters/http/ip_restriction/config.pb.h"

namespace sluice {
namespace Extensions {
namespace IpRestriction {

inline constexpr char kFilterName[] = "ip_restriction";

using IpRestrictionProto = sluice::extensions::filters::http::ip_restriction::v1::IpRestriction;
using PerRouteProto = sluice::extensions::filters::http::ip_restriction::v1::IpRestrictionPerRoute;

// A compiled restriction; immutable, shared by every worker.
struct Restriction {
  Network::CidrSet allow;
  Network::CidrSet deny;
  uint32_t status = 403;
  std::string message = "Your IP address is not allowed";
  // Kong's order: a denied address is refused; with an allow list, so is any address not on it.
  bool refuses(const Network::IpBytes& ip) const {
    return deny.contains(ip) || (!allow.empty() && !allow.contains(ip));
  }
};
using RestrictionConstSharedPtr = std::shared_ptr<const Restriction>;

// A route's (or virtual host's) filter_config.ip_restriction: the restriction there, or null
// for `disabled: true`.
struct RouteConfig : public Router::RouteSpecificFilterConfig {
  RestrictionConstSharedPtr restriction;
};

// Compiles either message (they share their fields); errors name fields under `path`.
template <class Proto>
RestrictionConstSharedPtr compileRestriction(const Proto& config, const std::string& path,
                                             Config::ErrorList& errors);

}  // namespace IpRestriction
}  // namespace Extensions
}  // namespace sluice
