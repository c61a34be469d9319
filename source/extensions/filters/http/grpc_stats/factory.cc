#include "source/common/http/filter.h"
#include "source/extensions/filters/http/grpc_stats/config.h"
#include "source/extensions/filters/http/grpc_stats/config.pb.h"
#include "source/extensions/filters/http/grpc_stats/filter.h"

namespace sluice {
namespace Extensions {
namespace GrpcStats {

// `grpc_stats`: per service/method call and grpc-status counters in /stats.
class GrpcStatsFactory : public Http::NamedHttpFilterConfigFactory {
 public:
  std::string name() const override { return kFilterName; }
  absl::StatusOr<Http::FilterFactoryCb> createFilterFactory(const google::protobuf::Message& config,
                                                            const std::string&,
                                                            Http::FactoryContext& ctx) override {
    if (ctx.stats == nullptr) {
      // Validating only: nothing to count into.
      return Http::FilterFactoryCb([](Http::FilterChainFactoryCallbacks&) {});
    }
    const auto& proto =
        static_cast<const sluice::extensions::filters::http::grpc_stats::v1::GrpcStats&>(config);
    auto fc = std::make_shared<FilterConfig>();
    fc->max_methods = proto.max_methods() == 0 ? kDefaultMaxMethods : proto.max_methods();
    Stats::Store* store = ctx.stats;
    auto create = [store]() { return std::make_shared<MethodStatsRegistry>(*store); };
    // The counters belong to the process, not to a snapshot: a config push keeps them.
    fc->registry = ctx.singletons != nullptr ? ctx.singletons->getOrCreate<MethodStatsRegistry>(
                                                   "grpc_stats.registry", create)
                                             : create();
    FilterConfigConstSharedPtr shared = std::move(fc);
    return Http::FilterFactoryCb([shared](Http::FilterChainFactoryCallbacks& cb) {
      cb.addStreamFilter(std::make_shared<GrpcStatsFilter>(shared));
    });
  }
};

REGISTER_HTTP_FILTER(GrpcStatsFactory);

}  // namespace GrpcStats
}  // namespace Extensions
}  // namespace sluice
