// The router's config side: its (empty) config message. Linked by sluice and sluice-cp.
#include "source/common/http/filter_config.h"
#include "source/extensions/filters/http/router/config.pb.h"

namespace sluice {
namespace Extensions {
namespace Router {
namespace {

class RouterFilterType : public Http::FilterType {
 public:
  std::string name() const override { return "router"; }
  bool isTerminal() const override { return true; }
  std::unique_ptr<google::protobuf::Message> createEmptyConfigProto() const override {
    return std::make_unique<sluice::extensions::filters::http::router::v1::Router>();
  }
};

REGISTER_HTTP_FILTER_TYPE(RouterFilterType);

}  // namespace
}  // namespace Router
}  // namespace Extensions
}  // namespace sluice
