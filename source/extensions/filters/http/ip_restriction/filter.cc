#include "source/extensions/filters/http/ip_restriction/filter.h"

namespace sluice {
namespace Extensions {
namespace IpRestriction {

Http::FilterHeadersStatus IpRestrictionFilter::decodeHeaders(Http::RequestHeaderMap&, bool) {
  const Restriction* r = listener_.get();
  if (const Router::RouteEntry* route = callbacks_->route(); route != nullptr) {
    // The most specific config wins: route, virtual host, then the listener's.
    if (const RouteConfig* per_route = route->perFilterConfig<RouteConfig>(kFilterName)) {
      r = per_route->restriction.get();
    }
  }
  if (r == nullptr) return Http::FilterHeadersStatus::Continue;
  Network::IpBytes ip;
  if (!Network::parseIp(callbacks_->downstreamAddress(), ip)) {
    // Not an IP peer (never on TCP listeners): nothing to match, so nothing is let through.
    callbacks_->sendLocalReply(403, "Cannot identify the client IP address",
                               Http::GatewayResponseType::AccessDenied);
    return Http::FilterHeadersStatus::StopIteration;
  }
  if (r->refuses(ip)) {
    callbacks_->sendLocalReply(r->status, r->message, Http::GatewayResponseType::AccessDenied);
    return Http::FilterHeadersStatus::StopIteration;
  }
  return Http::FilterHeadersStatus::Continue;
}

}  // namespace IpRestriction
}  // namespace Extensions
}  // namespace sluice
