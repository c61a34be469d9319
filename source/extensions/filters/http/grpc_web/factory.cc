#include "source/common/http/filter.h"
#include "source/extensions/filters/http/grpc_web/config.h"
#include "source/extensions/filters/http/grpc_web/filter.h"

namespace sluice {
namespace Extensions {
namespace GrpcWeb {

// `grpc_web`: gRPC-Web clients (browsers) to gRPC upstreams. No settings.
class GrpcWebFactory : public Http::NamedHttpFilterConfigFactory {
 public:
  std::string name() const override { return kFilterName; }
  absl::StatusOr<Http::FilterFactoryCb> createFilterFactory(const google::protobuf::Message&,
                                                            const std::string&,
                                                            Http::FactoryContext&) override {
    return Http::FilterFactoryCb([](Http::FilterChainFactoryCallbacks& cb) {
      cb.addStreamFilter(std::make_shared<GrpcWebFilter>());
    });
  }
};

REGISTER_HTTP_FILTER(GrpcWebFactory);

}  // namespace GrpcWeb
}  // namespace Extensions
}  // namespace sluice
