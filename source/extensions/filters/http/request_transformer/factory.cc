#include "source/common/http/filter.h"
#include "source/extensions/filters/http/request_transformer/config.h"
#include "source/extensions/filters/http/request_transformer/filter.h"

namespace sluice {
namespace Extensions {
namespace RequestTransformer {

// `request_transformer`: Kong's request-transformer plugin.
class RequestTransformerFactory : public Http::NamedHttpFilterConfigFactory {
 public:
  std::string name() const override { return kFilterName; }
  absl::StatusOr<Http::FilterFactoryCb> createFilterFactory(const google::protobuf::Message& config,
                                                            const std::string& path,
                                                            Http::FactoryContext&) override {
    sluice::Config::ErrorList errors;
    TransformConfigConstSharedPtr compiled = TransformConfig::create(
        static_cast<
            const sluice::extensions::filters::http::request_transformer::v1::RequestTransformer&>(
            config),
        path, errors);
    if (!errors.empty()) return errors.status();
    return Http::FilterFactoryCb([compiled](Http::FilterChainFactoryCallbacks& cb) {
      cb.addStreamDecoderFilter(std::make_shared<RequestTransformerFilter>(compiled));
    });
  }
};

REGISTER_HTTP_FILTER(RequestTransformerFactory);

}  // namespace RequestTransformer
}  // namespace Extensions
}  // namespace sluice
