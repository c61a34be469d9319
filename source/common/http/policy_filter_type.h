#pragma once

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "source/common/config/policy_registry.h"
#include "source/common/http/filter_config.h"

namespace sluice {
namespace Http {

// A route's (or virtual host's) compiled config of a policy filter.
struct PolicyRouteConfig : public Router::RouteSpecificFilterConfig {
  // The policy applied; empty when `disabled`.
  std::string policy;
  bool disabled = false;
};

// The FilterType of a filter that enforces a named policy resource (auth: AuthPolicy,
// rate_limit: RateLimitPolicy). Its listener config names a default policy (`{policy: NAME}`,
// ConfigProto has `string policy`); a route or virtual host names its own or switches the filter
// off (`{policy: NAME}` or `{disabled: true}`, PerRouteProto has `string policy` and
// `bool disabled`); and a string field of Route may stand for `{policy: NAME}` (`auth: NAME`).
// Every policy named must exist (unless the context is lenient), and a listener serving a route
// that names one must have the filter. The per-route config is a PolicyRouteConfig.
template <class ConfigProto, class PerRouteProto, class PolicyProto>
class PolicyFilterType : public FilterType {
 public:
  // `shorthand`: the Route field that is shorthand for `{policy: NAME}`; empty for none.
  PolicyFilterType(std::string name, std::string shorthand)
      : name_(std::move(name)), shorthand_(std::move(shorthand)) {}

  std::string name() const override { return name_; }
  std::unique_ptr<google::protobuf::Message> createEmptyConfigProto() const override {
    return std::make_unique<ConfigProto>();
  }
  void validateConfig(const google::protobuf::Message& message, const std::string& path,
                      const FilterValidationContext& ctx,
                      Config::ErrorList& errors) const override {
    const auto& config = static_cast<const ConfigProto&>(message);
    if (!config.policy().empty()) findPolicy(config.policy(), path + ".policy", ctx, errors);
  }
  std::unique_ptr<google::protobuf::Message> createEmptyRouteConfigProto() const override {
    return std::make_unique<PerRouteProto>();
  }
  Router::RouteSpecificFilterConfigConstSharedPtr createRouteConfig(
      const google::protobuf::Message& message, const RouteConfigContext& ctx,
      Config::ErrorList& errors) const override {
    auto out = std::make_shared<PolicyRouteConfig>();
    if (!compileRouteConfig(static_cast<const PerRouteProto&>(message), ctx, errors, *out)) {
      return nullptr;
    }
    return out;
  }
  std::unique_ptr<google::protobuf::Message> routeShorthand(const sluice::config::v1::Route& route,
                                                            std::string* field) const override {
    if (shorthand_.empty()) return nullptr;
    const auto* f = route.GetDescriptor()->FindFieldByName(shorthand_);
    const std::string& name = route.GetReflection()->GetStringReference(route, f, nullptr);
    if (name.empty()) return nullptr;
    *field = shorthand_;
    auto config = std::make_unique<PerRouteProto>();
    config->set_policy(name);
    return config;
  }
  std::string describeRouteConfig(const google::protobuf::Message& message) const override {
    const auto& config = static_cast<const PerRouteProto&>(message);
    if (config.disabled()) return "";  // asks nothing of the listener
    return absl::StrCat(Config::describeType(PolicyProto::descriptor()->name()), " \"",
                        config.policy(), "\"");
  }
  void routeConfigReferences(
      const google::protobuf::Message& message,
      const std::function<void(const std::string&, const std::string&)>& fn) const override {
    const auto& config = static_cast<const PerRouteProto&>(message);
    if (!config.policy().empty()) fn(PolicyProto::descriptor()->name(), config.policy());
  }
  void configReferences(
      const google::protobuf::Message& message,
      const std::function<void(const std::string&, const std::string&)>& fn) const override {
    const auto& config = static_cast<const ConfigProto&>(message);
    if (!config.policy().empty()) fn(PolicyProto::descriptor()->name(), config.policy());
  }

 protected:
  // A route's {policy | disabled} checked (exactly one; the policy exists and passes
  // checkRoutePolicy()) into `out`; false after the error when neither or both are set.
  bool compileRouteConfig(const PerRouteProto& config, const RouteConfigContext& ctx,
                          Config::ErrorList& errors, PolicyRouteConfig& out) const {
    if (config.disabled() == !config.policy().empty()) {
      errors.add(ctx.field_path("policy"), "set either policy or disabled: true");
      return false;
    }
    if (!config.disabled()) {
      const PolicyProto* policy =
          findPolicy(config.policy(), ctx.field_path("policy"), ctx, errors);
      if (policy != nullptr) checkRoutePolicy(*policy, ctx, errors);
    }
    out.policy = config.policy();
    out.disabled = config.disabled();
    return true;
  }

  // What a route naming `policy` must satisfy beyond its existence (rate_limit: a ROUTE policy
  // needs a named route).
  virtual void checkRoutePolicy(const PolicyProto& /*policy*/, const RouteConfigContext&,
                                Config::ErrorList&) const {}

  // The policy, or null (reported as unknown unless static config may wait for it).
  const PolicyProto* findPolicy(const std::string& name, const std::string& field,
                                const FilterValidationContext& ctx,
                                Config::ErrorList& errors) const {
    const std::string& type = PolicyProto::descriptor()->name();
    const auto* found = static_cast<const PolicyProto*>(ctx.policies->find(type, name));
    if (found == nullptr && !ctx.lenient) {
      errors.add(field, absl::StrCat("unknown ", Config::describeType(type), " \"", name, "\""));
    }
    return found;
  }

 private:
  const std::string name_;
  const std::string shorthand_;
};

}  // namespace Http
}  // namespace sluice
