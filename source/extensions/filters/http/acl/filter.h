#pragma once

#include "source/common/http/filter.h"
#include "source/extensions/filters/http/acl/config.h"

namespace sluice {
namespace Extensions {
namespace Acl {

// `acl`: Kong's acl plugin. Goes after `auth` in the chain: it reads the consumer auth
// identified and that consumer's groups (AuthPolicy consumers[].groups). The ACL is the route's
// filter_config.acl (or its virtual host's), else the listener's. No consumer: 401, or 403
// when a credential was presented; a consumer the ACL refuses: 403 "You cannot consume this
// service" (both as Kong answers). An allowed consumer's groups go upstream in
// X-Consumer-Groups (", "-joined) unless hide_groups_header; a client's own X-Consumer-Groups
// never does. Per stream; runs on its worker only.
class AclFilter : public Http::StreamDecoderFilter {
 public:
  explicit AclFilter(AclRulesConstSharedPtr listener) : listener_(std::move(listener)) {}

  Http::FilterHeadersStatus decodeHeaders(Http::RequestHeaderMap& headers,
                                          bool end_stream) override;
  Http::FilterDataStatus decodeData(Buffer::Instance&, bool) override {
    return Http::FilterDataStatus::Continue;
  }
  Http::FilterTrailersStatus decodeTrailers(Http::HeaderMap&) override {
    return Http::FilterTrailersStatus::Continue;
  }
  void setDecoderFilterCallbacks(Http::StreamDecoderFilterCallbacks& cb) override {
    callbacks_ = &cb;
  }

 private:
  const AclRulesConstSharedPtr listener_;
  Http::StreamDecoderFilterCallbacks* callbacks_ = nullptr;
};

}  // namespace Acl
}  // namespace Extensions
}  // namespace sluice
