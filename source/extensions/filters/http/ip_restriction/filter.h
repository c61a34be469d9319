#pragma once

#include "source/common/http/filter.h"
#include "source/extensions/filters/http/ip_restriction/config.h"

namespace sluice {
namespace Extensions {
namespace IpRestriction {

// `ip_restriction`: Kong's ip-restriction plugin. The restriction is the route's
// filter_config.ip_restriction (or its virtual host's), else the listener's. The client's
// address is the TCP peer's. A refused request gets `status` (403) with `message`
// (gateway response type ACCESS_DENIED). Per stream; runs on its worker only.
class IpRestrictionFilter : public Http::StreamDecoderFilter {
 public:
  explicit IpRestrictionFilter(RestrictionConstSharedPtr listener)
      : listener_(std::move(listener)) {}

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
  const RestrictionConstSharedPtr listener_;
  Http::StreamDecoderFilterCallbacks* callbacks_ = nullptr;
};

}  // namespace IpRestriction
}  // namespace Extensions
}  // namespace sluice
