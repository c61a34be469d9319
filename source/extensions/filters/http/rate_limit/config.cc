// The rate_limit filter's config side: its config messages, its policy resource type
// (RateLimitPolicy), their validation. Linked by sluice and sluice-cp; no Redis client here.
#include "source/extensions/filters/http/rate_limit/config.h"

#include "absl/strings/str_cat.h"
#include "source/common/http/filter_config.h"
#include "source/extensions/filters/http/rate_limit/config.pb.h"
#include "source/extensions/filters/http/rate_limit/policy.h"

namespace sluice {
namespace Extensions {
namespace RateLimit {
namespace {

using RateLimitProto = sluice::extensions::filters::http::rate_limit::v1::RateLimit;
using PerRouteProto = sluice::extensions::filters::http::rate_limit::v1::RateLimitPerRoute;

// The policy if it exists; reports an unknown one (unless static config may wait for it).
const PolicyProto* findPolicy(const std::string& policy, const std::string& field,
                              const Http::FilterValidationContext& ctx, Config::ErrorList& errors) {
  const auto* found = static_cast<const PolicyProto*>(
      ctx.policies->find(PolicyProto::descriptor()->name(), policy));
  if (found == nullptr && !ctx.lenient) {
    errors.add(field, absl::StrCat("unknown rate limit policy \"", policy, "\""));
  }
  return found;
}

class RateLimitFilterType : public Http::FilterType {
 public:
  std::string name() const override { return kFilterName; }
  std::unique_ptr<google::protobuf::Message> createEmptyConfigProto() const override {
    return std::make_unique<RateLimitProto>();
  }
  void validateConfig(const google::protobuf::Message& message, const std::string& path,
                      const Http::FilterValidationContext& ctx,
                      Config::ErrorList& errors) const override {
    const auto& config = static_cast<const RateLimitProto&>(message);
    if (!config.policy().empty()) findPolicy(config.policy(), path + ".policy", ctx, errors);
  }
  std::unique_ptr<google::protobuf::Message> createEmptyRouteConfigProto() const override {
    return std::make_unique<PerRouteProto>();
  }
  Router::RouteSpecificFilterConfigConstSharedPtr createRouteConfig(
      const google::protobuf::Message& message, const Http::RouteConfigContext& ctx,
      Config::ErrorList& errors) const override {
    const auto& config = static_cast<const PerRouteProto&>(message);
    if (config.disabled() == !config.policy().empty()) {
      errors.add(ctx.field_path("policy"), "set either policy or disabled: true");
      return nullptr;
    }
    if (!config.disabled()) {
      const PolicyProto* p = findPolicy(config.policy(), ctx.field_path("policy"), ctx, errors);
      // Counters keyed by route need a name that stays when routes are reordered.
      if (p != nullptr && p->limit_by() == PolicyProto::ROUTE && !ctx.virtual_host &&
          ctx.route_name.empty()) {
        errors.add(ctx.route_path + ".name", absl::StrCat("is required: rate limit policy \"",
                                                          config.policy(), "\" limits by ROUTE"));
      }
    }
    auto out = std::make_shared<RouteConfig>();
    out->policy = config.policy();
    out->disabled = config.disabled();
    return out;
  }
  std::unique_ptr<google::protobuf::Message> routeShorthand(const sluice::config::v1::Route& route,
                                                            std::string* field) const override {
    if (route.rate_limit().empty()) return nullptr;
    *field = "rate_limit";
    auto config = std::make_unique<PerRouteProto>();
    config->set_policy(route.rate_limit());
    return config;
  }
  std::string describeRouteConfig(const google::protobuf::Message& message) const override {
    const auto& config = static_cast<const PerRouteProto&>(message);
    if (config.disabled()) return "";
    return absl::StrCat("rate limit policy \"", config.policy(), "\"");
  }
  void routeConfigReferences(
      const google::protobuf::Message& message,
      const std::function<void(const std::string&, const std::string&)>& fn) const override {
    const auto& config = static_cast<const PerRouteProto&>(message);
    if (!config.policy().empty()) fn(PolicyProto::descriptor()->name(), config.policy());
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
