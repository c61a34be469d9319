// The ip_restriction filter's config side. Linked by sluice and sluice-cp.
#include "source/extensions/filters/http/ip_restriction/config.h"

#include "absl/strings/str_cat.h"
#include "source/common/http/filter_config.h"

namespace sluice {
namespace Extensions {
namespace IpRestriction {

template <class Proto>
RestrictionConstSharedPtr compileRestriction(const Proto& config, const std::string& path,
                                             Config::ErrorList& errors) {
  auto out = std::make_shared<Restriction>();
  const size_t before = errors.size();
  auto add = [&](const google::protobuf::RepeatedPtrField<std::string>& list, const char* field,
                 Network::CidrSet& set) {
    for (int i = 0; i < list.size(); ++i) {
      auto range = Network::CidrRange::parse(list[i]);
      if (!range.ok()) {
        errors.add(absl::StrCat(path, ".", field, "[", i, "]"),
                   std::string(range.status().message()));
      } else {
        set.add(*range);
      }
    }
  };
  add(config.allow(), "allow", out->allow);
  add(config.deny(), "deny", out->deny);
  if (config.allow().empty() && config.deny().empty()) {
    errors.add(path, "at least one of allow and deny is required");
  }
  if (config.has_status()) {
    if (config.status() < 100 || config.status() > 599) {
      errors.add(path + ".status", "must be 100..599");
    }
    out->status = config.status();
  }
  if (config.has_message()) out->message = config.message();
  if (errors.size() != before) return nullptr;
  return out;
}

template RestrictionConstSharedPtr compileRestriction(const IpRestrictionProto&, const std::string&,
                                                      Config::ErrorList&);
template RestrictionConstSharedPtr compileRestriction(const PerRouteProto&, const std::string&,
                                                      Config::ErrorList&);

namespace {

class IpRestrictionFilterType : public Http::FilterType {
 public:
  std::string name() const override { return kFilterName; }
  std::unique_ptr<google::protobuf::Message> createEmptyConfigProto() const override {
    return std::make_unique<IpRestrictionProto>();
  }
  void validateConfig(const google::protobuf::Message& message, const std::string& path,
                      const Http::FilterValidationContext&,
                      Config::ErrorList& errors) const override {
    compileRestriction(static_cast<const IpRestrictionProto&>(message), path, errors);
  }
  std::unique_ptr<google::protobuf::Message> createEmptyRouteConfigProto() const override {
    return std::make_unique<PerRouteProto>();
  }
  Router::RouteSpecificFilterConfigConstSharedPtr createRouteConfig(
      const google::protobuf::Message& message, const Http::RouteConfigContext& ctx,
      Config::ErrorList& errors) const override {
    const auto& config = static_cast<const PerRouteProto&>(message);
    auto out = std::make_shared<RouteConfig>();
    if (config.disabled()) {
      return Http::disabledStandsAlone(config, ctx, errors) ? out : nullptr;
    }
    const std::string prefix = Http::routeConfigPath(ctx);
    out->restriction = compileRestriction(config, prefix, errors);
    if (out->restriction == nullptr) return nullptr;
    return out;
  }
  std::string describeRouteConfig(const google::protobuf::Message& message) const override {
    return static_cast<const PerRouteProto&>(message).disabled() ? "" : "an ip restriction";
  }
};

REGISTER_HTTP_FILTER_TYPE(IpRestrictionFilterType);

}  // namespace
}  // namespace IpRestriction
}  // namespace Extensions
}  // namespace sluice
