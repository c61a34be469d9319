#include "source/common/http/filter.h"
#include "source/extensions/filters/http/cors/config.h"
#include "source/extensions/filters/http/cors/filter.h"

namespace sluice {
namespace Extensions {
namespace Cors {

// `cors`: the listener's CORS policy, compiled once per config version and shared by every
// stream of every worker.
class CorsFactory : public Http::NamedHttpFilterConfigFactory {
 public:
  std::string name() const override { return kFilterName; }

  absl::StatusOr<Http::FilterFactoryCb> createFilterFactory(const google::protobuf::Message& config,
                                                            const std::string& path,
                                                            Http::FactoryContext&) override {
    Config::ErrorList errors;
    CorsPolicyConstSharedPtr policy = CorsPolicy::create(
        settingsOf(static_cast<const CorsProto&>(config)), path + ".config", errors);
    RETURN_IF_ERRORS(errors);
    return Http::FilterFactoryCb([policy](Http::FilterChainFactoryCallbacks& cb) {
      cb.addStreamFilter(std::make_shared<CorsFilter>(policy));
    });
  }
};

REGISTER_HTTP_FILTER(CorsFactory);

}  // namespace Cors
}  // namespace Extensions
}  // namespace sluice
