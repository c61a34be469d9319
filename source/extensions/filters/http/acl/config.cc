// The acl filter's config side. Linked by sluice and sluice-cp.
#include "source/extensions/filters/http/acl/config.h"

#include "source/common/http/filter_config.h"

namespace sluice {
namespace Extensions {
namespace Acl {

template <class Proto>
AclRulesConstSharedPtr compileAcl(const Proto& config, const std::string& path,
                                  Config::ErrorList& errors) {
  if (config.allow().empty() == config.deny().empty()) {
    errors.add(path, "exactly one of allow and deny is required");
    return nullptr;
  }
  auto out = std::make_shared<AclRules>();
  out->deny = !config.deny().empty();
  const auto& list = out->deny ? config.deny() : config.allow();
  for (const std::string& g : list) out->groups.insert(g);
  out->hide_groups_header = config.hide_groups_header();
  return out;
}

template AclRulesConstSharedPtr compileAcl(const AclProto&, const std::string&, Config::ErrorList&);
template AclRulesConstSharedPtr compileAcl(const PerRouteProto&, const std::string&,
                                           Config::ErrorList&);

namespace {

class AclFilterType : public Http::FilterType {
 public:
  std::string name() const override { return kFilterName; }
  std::unique_ptr<google::protobuf::Message> createEmptyConfigProto() const override {
    return std::make_unique<AclProto>();
  }
  void validateConfig(const google::protobuf::Message& message, const std::string& path,
                      const Http::FilterValidationContext&,
                      Config::ErrorList& errors) const override {
    compileAcl(static_cast<const AclProto&>(message), path, errors);
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
    out->rules = compileAcl(config, prefix, errors);
    if (out->rules == nullptr) return nullptr;
    return out;
  }
  std::string describeRouteConfig(const google::protobuf::Message& message) const override {
    return static_cast<const PerRouteProto&>(message).disabled() ? "" : "an acl";
  }
};

REGISTER_HTTP_FILTER_TYPE(AclFilterType);

}  // namespace
}  // namespace Acl
}  // namespace Extensions
}  // namespace sluice
