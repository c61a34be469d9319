// The cors filter's config side: its config messages and their validation (origins compiled,
// regexes included). Linked by sluice and sluice-cp.
#include "source/extensions/filters/http/cors/config.h"

#include "source/common/http/filter_config.h"

namespace sluice {
namespace Extensions {
namespace Cors {
namespace {

// The listener's policy in http_filters[].config; a whole policy, or `disabled: true`, per
// route and virtual host in filter_config.cors.
class CorsFilterType : public Http::FilterType {
 public:
  std::string name() const override { return kFilterName; }
  std::unique_ptr<google::protobuf::Message> createEmptyConfigProto() const override {
    return std::make_unique<CorsProto>();
  }
  void validateConfig(const google::protobuf::Message& message, const std::string& path,
                      const Http::FilterValidationContext&,
                      Config::ErrorList& errors) const override {
    CorsPolicy::create(settingsOf(static_cast<const CorsProto&>(message)), path, errors);
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
    out->policy = CorsPolicy::create(settingsOf(config), prefix, errors);
    if (out->policy == nullptr) return nullptr;
    return out;
  }
  std::string describeRouteConfig(const google::protobuf::Message& message) const override {
    // Switching the filter off asks nothing of the listener.
    return static_cast<const PerRouteProto&>(message).disabled() ? "" : "a cors policy";
  }
};

REGISTER_HTTP_FILTER_TYPE(CorsFilterType);

}  // namespace
}  // namespace Cors
}  // namespace Extensions
}  // namespace sluice
