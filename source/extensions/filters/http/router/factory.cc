#include "source/common/http/filter.h"
#include "source/extensions/filters/http/router/filter.h"

namespace sluice {
namespace Extensions {
namespace Router {

// `router`: the terminal filter. Takes no settings: routing is the route table's job.
class RouterFactory : public Http::NamedHttpFilterConfigFactory {
 public:
  std::string name() const override { return "router"; }
  absl::StatusOr<Http::FilterFactoryCb> createFilterFactory(const google::protobuf::Message&,
                                                            const std::string&,
                                                            Http::FactoryContext&) override {
    return Http::FilterFactoryCb([](Http::FilterChainFactoryCallbacks& cb) {
      cb.addStreamDecoderFilter(std::make_shared<RouterFilter>());
    });
  }
};

REGISTER_HTTP_FILTER(RouterFactory);

}  // namespace Router
}  // namespace Extensions
}  // namespace sluice
