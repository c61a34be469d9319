#include "source/extensions/filters/http/acl/filter.h"

namespace sluice {
namespace Extensions {
namespace Acl {
namespace {
constexpr absl::string_view kGroupsHeader = "x-consumer-groups";
constexpr absl::string_view kRefused = "You cannot consume this service";
}  // namespace

Http::FilterHeadersStatus AclFilter::decodeHeaders(Http::RequestHeaderMap& headers, bool) {
  // Only the gateway says which groups a consumer is in.
  headers.remove(kGroupsHeader);
  const AclRules* rules = listener_.get();
  if (const Router::RouteEntry* route = callbacks_->route(); route != nullptr) {
    // The most specific config wins: route, virtual host, then the listener's.
    if (const RouteConfig* per_route = route->perFilterConfig<RouteConfig>(kFilterName)) {
      rules = per_route->rules.get();
    }
  }
  if (rules == nullptr) return Http::FilterHeadersStatus::Continue;
  const Http::FilterState& state = callbacks_->streamInfo().filter_state;
  if (state.getString(Http::FilterStateNames::kConsumer).empty()) {
    if (!state.getString(Http::FilterStateNames::kCredential).empty()) {
      callbacks_->sendLocalReply(403, kRefused, Http::GatewayResponseType::AccessDenied);
    } else {
      callbacks_->sendLocalReply(401, "Unauthorized", Http::GatewayResponseType::Unauthorized);
    }
    return Http::FilterHeadersStatus::StopIteration;
  }
  const auto* groups =
      state.get<Http::FilterState::StringListObject>(Http::FilterStateNames::kConsumerGroups);
  bool listed = false;
  if (groups != nullptr) {
    for (const std::string& g : groups->values()) {
      if (rules->groups.contains(g)) {
        listed = true;
        break;
      }
    }
  }
  if (listed == rules->deny) {
    callbacks_->sendLocalReply(403, kRefused, Http::GatewayResponseType::AccessDenied);
    return Http::FilterHeadersStatus::StopIteration;
  }
  if (!rules->hide_groups_header && groups != nullptr) {
    headers.add(kGroupsHeader, groups->joined());
  }
  return Http::FilterHeadersStatus::Continue;
}

}  // namespace Acl
}  // namespace Extensions
}  // namespace sluice
