#include "source/common/http/filter.h"
#include "source/extensions/filters/http/request_validator/config.h"
#include "source/extensions/filters/http/request_validator/filter.h"

namespace sluice {
namespace Extensions {
namespace RequestValidator {

// `request_validator`: the per-route configs (the operations' schemas) were compiled with the
// route table; the listener's config holds only the body bound.
class RequestValidatorFactory : public Http::NamedHttpFilterConfigFactory {
 public:
  std::string name() const override { return kFilterName; }

  absl::StatusOr<Http::FilterFactoryCb> createFilterFactory(const google::protobuf::Message& config,
                                                            const std::string&,
                                                            Http::FactoryContext&) override {
    const auto& c = static_cast<const RequestValidatorProto&>(config);
    const uint32_t max_body_bytes = c.has_max_body_bytes() ? c.max_body_bytes() : 1024 * 1024;
    return Http::FilterFactoryCb([max_body_bytes](Http::FilterChainFactoryCallbacks& cb) {
      cb.addStreamDecoderFilter(std::make_shared<RequestValidatorFilter>(max_body_bytes));
    });
  }
};

REGISTER_HTTP_FILTER(RequestValidatorFactory);

}  // namespace RequestValidator
}  // namespace Extensions
}  // namespace sluice
