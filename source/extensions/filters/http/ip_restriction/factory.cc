#include "source/common/http/filter.h"
#include "source/extensions/filters/http/ip_restriction/config.h"
#include "source/extensions/filters/http/ip_restriction/filter.h"

namespace sluice {
namespace Extensions {
namespace IpRestriction {

// `ip_restriction`: the listener's restriction, compiled once per config version and shared by
// every stream of every worker.
class IpRestrictionFactory : public Http::NamedHttpFilterConfigFactory {
 public:
  std::string name() const override { return kFilterName; }

  absl::StatusOr<Http::FilterFactoryCb> createFilterFactory(const google::protobuf::Message& config,
                                                            const std::string& path,
                                                            Http::FactoryContext&) override {
    Config::ErrorList errors;
    RestrictionConstSharedPtr listener = compileRestriction(
        static_cast<const IpRestrictionProto&>(config), path + ".config", errors);
    RETURN_IF_ERRORS(errors);
    return Http::FilterFactoryCb([listener](Http::FilterChainFactoryCallbacks& cb) {
      cb.addStreamDecoderFilter(std::make_shared<IpRestrictionFilter>(listener));
    });
  }
};

REGISTER_HTTP_FILTER(IpRestrictionFactory);

}  // namespace IpRestriction
}  // namespace Extensions
}  // namespace sluice
