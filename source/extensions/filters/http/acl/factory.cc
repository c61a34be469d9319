#include "source/common/http/filter.h"
#include "source/extensions/filters/http/acl/config.h"
#include "source/extensions/filters/http/acl/filter.h"

namespace sluice {
namespace Extensions {
namespace Acl {

// `acl`: the listener's ACL, compiled once per config version and shared by
// every stream of every worker.
class AclFactory : public Http::NamedHttpFilterConfigFactory {
 public:
  std::string name() const override { return kFilterName; }

  absl::StatusOr<Http::FilterFactoryCb> createFilterFactory(const google::protobuf::Message& config,
                                                            const std::string& path,
                                                            Http::FactoryContext&) override {
    Config::ErrorList errors;
    AclRulesConstSharedPtr listener =
        compileAcl(static_cast<const AclProto&>(config), path + ".config", errors);
    RETURN_IF_ERRORS(errors);
    return Http::FilterFactoryCb([listener](Http::FilterChainFactoryCallbacks& cb) {
      cb.addStreamDecoderFilter(std::make_shared<AclFilter>(listener));
    });
  }
};

REGISTER_HTTP_FILTER(AclFactory);

}  // namespace Acl
}  // namespace Extensions
}  // namespace sluice
