// The rate_limit filter's config side: its config messages, its policy resource type
// (RateLimitPolicy), their validation. Linked by sluice and sluice-cp; no Redis client here.
#include "source/extensions/filters/http/rate_limit/config.h"

#include "absl/strings/str_cat.h"
#include "source/common/http/policy_filter_type.h"
#include "source/extensions/filters/http/rate_limit/config.pb.h"
#include "source/extensions/filters/http/rate_limit/policy.h"

namespace sluice {
namespace Extensions {
namespace RateLimit {
namespace {

using RateLimitProto = sluice::extensions::filters::http::rate_limit::v1::RateLimit;
using PerRouteProto = sluice::extensions::filters::http::rate_limit::v1::RateLimitPerRoute;

// {policy} on the listener, {policy | disabled} per route, `rate_limit: NAME` on a route.
class RateLimitFilterType
    : public Http::PolicyFilterType<RateLimitProto, PerRouteProto, PolicyProto> {
 public:
  RateLimitFilterType() : PolicyFilterType(kFilterName, "rate_limit") {}

  // {policy | disabled} as every policy filter, plus consumer_policies (Kong's rate-limiting
  // scoped to a consumer): each must exist and satisfy what a route's policy must.
  Router::RouteSpecificFilterConfigConstSharedPtr createRouteConfig(
      const google::protobuf::Message& message, const Http::RouteConfigContext& ctx,
      Config::ErrorList& errors) const override {
    const auto& config = static_cast<const PerRouteProto&>(message);
    auto out = std::make_shared<RouteConfig>();
    if (!compileRouteConfig(config, ctx, errors, *out)) return nullptr;
    for (const auto& [consumer, name] : config.consumer_policies()) {
      const std::string field =
          absl::StrCat(ctx.field_path("consumer_policies"), "[\"", consumer, "\"]");
      if (consumer.empty() || name.empty()) {
        errors.add(field, "a consumer name and a policy name are required");
        continue;
      }
      const PolicyProto* policy = findPolicy(name, field, ctx, errors);
      if (policy != nullptr) checkRoutePolicy(*policy, ctx, errors);
      out->consumer_policies[consumer] = name;
    }
    return out;
  }
  std::string describeRouteConfig(const google::protobuf::Message& message) const override {
    const auto& config = static_cast<const PerRouteProto&>(message);
    if (config.disabled() && !config.consumer_policies().empty()) {
      // Still asks for the filter: its consumers are limited.
      return absl::StrCat("rate limit policy \"", config.consumer_policies().begin()->second, "\"");
    }
    return PolicyFilterType::describeRouteConfig(message);
  }
  void routeConfigReferences(
      const google::protobuf::Message& message,
      const std::function<void(const std::string&, const std::string&)>& fn) const override {
    PolicyFilterType::routeConfigReferences(message, fn);
    const auto& config = static_cast<const PerRouteProto&>(message);
    for (const auto& [consumer, name] : config.consumer_policies()) {
      if (!name.empty()) fn(PolicyProto::descriptor()->name(), name);
    }
  }

 protected:
  void checkRoutePolicy(const PolicyProto& policy, const Http::RouteConfigContext& ctx,
                        Config::ErrorList& errors) const override {
    // Counters keyed by route need a name that stays when routes are reordered.
    if (policy.limit_by() == PolicyProto::ROUTE && !ctx.virtual_host && ctx.route_name.empty()) {
      errors.add(ctx.route_path + ".name", absl::StrCat("is required: rate limit policy \"",
                                                        policy.name(), "\" limits by ROUTE"));
    }
  }
};

// RateLimitPolicy resources: `static_resources.rate_limit_policies`, or pushed.
class RateLimitPolicyType : public Config::PolicyType {
 public:
  std::string field() const override { return "rate_limit_policies"; }
  void validate(const google::protobuf::Message& message, const std::string& path,
                const Config::PolicyValidationOptions&, Config::ErrorList& errors) const override {
    // Windows, limit_by, Redis address and timeout.
    validatePolicy(static_cast<const PolicyProto&>(message), path, errors);
  }
};

REGISTER_HTTP_FILTER_TYPE(RateLimitFilterType);
REGISTER_POLICY_TYPE(RateLimitPolicyType);

}  // namespace
}  // namespace RateLimit
}  // namespace Extensions
}  // namespace sluice
