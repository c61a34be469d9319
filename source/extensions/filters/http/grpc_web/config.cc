// The grpc_web filter's config side: its (empty) config message. Linked by sluice and sluice-cp.
#include "source/extensions/filters/http/grpc_web/config.h"

#include "source/common/http/filter_config.h"
#include "source/extensions/filters/http/grpc_web/config.pb.h"

namespace sluice {
namespace Extensions {
namespace GrpcWeb {
namespace {

class GrpcWebFilterType : public Http::FilterType {
 public:
  std::string name() const override { return kFilterName; }
  std::unique_ptr<google::protobuf::Message> createEmptyConfigProto() const override {
    return std::make_unique<sluice::extensions::filters::http::grpc_web::v1::GrpcWeb>();
  }
};

REGISTER_HTTP_FILTER_TYPE(GrpcWebFilterType);

}  // namespace
}  // namespace GrpcWeb
}  // namespace Extensions
}  // namespace sluice
