#include "absl/strings/str_cat.h"
#include "source/common/http/filter.h"
#include "source/extensions/filters/http/http_log/config.h"
#include "source/extensions/filters/http/http_log/filter.h"

namespace sluice {
namespace Extensions {
namespace HttpLog {

// `http_log`: Kong's http-log. Entries go to a process-wide BatchSink per endpoint and settings
// (kept across config versions, drained at shutdown).
class HttpLogFactory : public Http::NamedHttpFilterConfigFactory {
 public:
  std::string name() const override { return kFilterName; }

  absl::StatusOr<Http::FilterFactoryCb> createFilterFactory(const google::protobuf::Message& config,
                                                            const std::string& path,
                                                            Http::FactoryContext& ctx) override {
    // Validated already (validateConfig); compiled again for this listener's streams.
    Config::ErrorList errors;
    LogConfigConstSharedPtr compiled = compileConfig(
        static_cast<const ConfigProto&>(config),
        [&path](absl::string_view f) { return absl::StrCat(path, ".config.", f); }, true, errors);
    RETURN_IF_ERRORS(errors);
    Http::CredentialNames secrets;
    if (ctx.policies != nullptr) secrets.addPolicies(*ctx.policies);
    // Only a running data plane starts sinks (not `sluice --validate`).
    Http::SingletonManager* singletons = ctx.main_dispatcher != nullptr ? ctx.singletons : nullptr;
    auto fc = std::make_shared<FilterConfig>(compiled, std::move(secrets), singletons, ctx.stats,
                                             ctx.dns_options);
    if (!compiled->disabled) fc->sinkFor(*compiled);  // started now, not by the first request
    // `request.uri` is the target as the client sent it.
    ctx.keep_original_path = true;
    FilterConfigConstSharedPtr shared = std::move(fc);
    return Http::FilterFactoryCb([shared](Http::FilterChainFactoryCallbacks& cb) {
      cb.addStreamDecoderFilter(std::make_shared<HttpLogFilter>(shared));
    });
  }
};

REGISTER_HTTP_FILTER(HttpLogFactory);

}  // namespace HttpLog
}  // namespace Extensions
}  // namespace sluice
