// The grpc_stats filter's config side. Linked by sluice and sluice-cp.
#include "source/extensions/filters/http/grpc_stats/config.h"

#include "absl/strings/str_cat.h"
#include "source/common/http/filter_config.h"
#include "source/extensions/filters/http/grpc_stats/config.pb.h"

namespace sluice {
namespace Extensions {
namespace GrpcStats {
namespace {

using ConfigProto = sluice::extensions::filters::http::grpc_stats::v1::GrpcStats;

class GrpcStatsFilterType : public Http::FilterType {
 public:
  std::string name() const override { return kFilterName; }
  std::unique_ptr<google::protobuf::Message> createEmptyConfigProto() const override {
    return std::make_unique<ConfigProto>();
  }
  void validateConfig(const google::protobuf::Message& config, const std::string& path,
                      const Http::FilterValidationContext&,
                      Config::ErrorList& errors) const override {
    const auto& c = static_cast<const ConfigProto&>(config);
    if (c.max_methods() > kMaxMaxMethods) {
      errors.add(path + ".max_methods", absl::StrCat("must be <= ", kMaxMaxMethods));
    }
  }
};

REGISTER_HTTP_FILTER_TYPE(GrpcStatsFilterType);

}  // namespace
}  // namespace GrpcStats
}  // namespace Extensions
}  // namespace sluice
