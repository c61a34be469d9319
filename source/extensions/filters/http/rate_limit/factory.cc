#include "absl/strings/str_cat.h"
#include "source/common/http/filter.h"
#include "source/extensions/filters/http/rate_limit/config.h"
#include "source/extensions/filters/http/rate_limit/config.pb.h"
#include "source/extensions/filters/http/rate_limit/filter.h"

namespace sluice {
namespace Extensions {
namespace RateLimit {

// `rate_limit`: enforces the RateLimitPolicy a route names (or the listener's default). The
// policies are resources (static or pushed), validated with the rest of the snapshot.
class RateLimitFactory : public Http::NamedHttpFilterConfigFactory {
 public:
  std::string name() const override { return kFilterName; }

  absl::StatusOr<Http::FilterFactoryCb> createFilterFactory(const google::protobuf::Message& config,
                                                            const std::string&,
                                                            Http::FactoryContext& ctx) override {
    // LOCAL counters belong to the process, not to a snapshot: a config push keeps them.
    LocalStoreSharedPtr local;
    if (ctx.singletons != nullptr) {
      Stats::Store* stats = ctx.stats;
      local = ctx.singletons->getOrCreate<LocalStore>(
          "rate_limit.local_store", [stats]() { return std::make_shared<LocalStore>(stats); });
    } else {
      local = std::make_shared<LocalStore>(nullptr);
    }
    auto fc = std::make_shared<FilterConfig>(std::move(local), ctx.stats);
    fc->setDnsOptions(ctx.dns_options);
    fc->setDefaultPolicy(
        static_cast<const sluice::extensions::filters::http::rate_limit::v1::RateLimit&>(config)
            .policy());
    if (ctx.policies != nullptr) {
      for (const auto& [name, policy] : ctx.policies->all<PolicyProto>()) {
        // An invalid policy is already reported (with its own path) by snapshot validation.
        fc->addPolicy(*policy, absl::StrCat("rate_limit_policies \"", name, "\""));
      }
    }
    FilterConfigConstSharedPtr shared = std::move(fc);
    return Http::FilterFactoryCb([shared](Http::FilterChainFactoryCallbacks& cb) {
      cb.addStreamFilter(std::make_shared<RateLimitFilter>(shared));
    });
  }
};

REGISTER_HTTP_FILTER(RateLimitFactory);

}  // namespace RateLimit
}  // namespace Extensions
}  // namespace sluice
