#pragma once

#include <cstdint>
#include <memory>

#include "source/common/http/filter.h"
#include "source/extensions/filters/http/grpc_stats/method_stats.h"

namespace sluice {
namespace Extensions {
namespace GrpcStats {

// What every stream of a listener's grpc_stats filter shares.
struct FilterConfig {
  std::shared_ptr<MethodStatsRegistry> registry;
  uint32_t max_methods = 0;
};
using FilterConfigConstSharedPtr = std::shared_ptr<const FilterConfig>;

// Counts gRPC (and gRPC-Web) calls per service/method and their grpc-status: from the response
// trailers, or the headers of a trailers-only response, or mapped from the HTTP status when the
// response carries none. Place it after grpc_web (it then sees the trailers before grpc_web
// moves them into the body). Other requests cost one content-type check.
class GrpcStatsFilter : public Http::StreamFilter {
 public:
  explicit GrpcStatsFilter(FilterConfigConstSharedPtr config) : config_(std::move(config)) {}

  // StreamDecoderFilter
  Http::FilterHeadersStatus decodeHeaders(Http::RequestHeaderMap& headers, bool) override;
  Http::FilterDataStatus decodeData(Buffer::Instance&, bool) override {
    return Http::FilterDataStatus::Continue;
  }
  Http::FilterTrailersStatus decodeTrailers(Http::HeaderMap&) override {
    return Http::FilterTrailersStatus::Continue;
  }
  void setDecoderFilterCallbacks(Http::StreamDecoderFilterCallbacks&) override {}

  // StreamEncoderFilter
  Http::FilterHeadersStatus encodeHeaders(Http::ResponseHeaderMap& headers,
                                          bool end_stream) override;
  Http::FilterDataStatus encodeData(Buffer::Instance&, bool end_stream) override;
  Http::FilterTrailersStatus encodeTrailers(Http::HeaderMap& trailers) override;
  void setEncoderFilterCallbacks(Http::StreamEncoderFilterCallbacks&) override {}

 private:
  void charge(uint32_t code);

  FilterConfigConstSharedPtr config_;
  MethodStats* stats_ = nullptr;  // null: not a gRPC call, or already charged
  uint32_t http_status_ = 0;
};

}  // namespace GrpcStats
}  // namespace Extensions
}  // namespace sluice
