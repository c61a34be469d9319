#include "absl/strings/str_cat.h"
#include "source/common/http/filter.h"
#include "source/extensions/filters/http/response_transformer/config.h"
#include "source/extensions/filters/http/response_transformer/filter.h"

namespace sluice {
namespace Extensions {
namespace ResponseTransformer {

// `response_transformer`: Kong's response-transformer (header and JSON body rules).
class ResponseTransformerFactory : public Http::NamedHttpFilterConfigFactory {
 public:
  std::string name() const override { return kFilterName; }

  absl::StatusOr<Http::FilterFactoryCb> createFilterFactory(const google::protobuf::Message& config,
                                                            const std::string& path,
                                                            Http::FactoryContext& ctx) override {
    // Validated already (validateConfig); compiled again for this listener's streams. `path`
    // is the filter's (http_filters[N]).
    Config::ErrorList errors;
    RulesConstSharedPtr rules = compileRules(
        static_cast<const ConfigProto&>(config),
        [&path](absl::string_view f) { return absl::StrCat(path, ".config.", f); }, errors);
    RETURN_IF_ERRORS(errors);
    auto fc = std::make_shared<FilterConfig>();
    fc->rules = std::move(rules);
    // The counters belong to the process (the store keeps them across config versions).
    fc->stats = ctx.stats != nullptr ? ResponseTransformerStats::create(*ctx.stats)
                                     : ResponseTransformerStats::discarded();
    FilterConfigConstSharedPtr shared = std::move(fc);
    return Http::FilterFactoryCb([shared](Http::FilterChainFactoryCallbacks& cb) {
      cb.addStreamFilter(std::make_shared<ResponseTransformerFilter>(shared));
    });
  }
};

REGISTER_HTTP_FILTER(ResponseTransformerFactory);

}  // namespace ResponseTransformer
}  // namespace Extensions
}  // namespace sluice
