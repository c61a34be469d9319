#include "source/extensions/filters/http/grpc_stats/filter.h"

#include "source/common/grpc/common.h"

namespace sluice {
namespace Extensions {
namespace GrpcStats {

Http::FilterHeadersStatus GrpcStatsFilter::decodeHeaders(Http::RequestHeaderMap& headers, bool) {
  if (Grpc::isGrpcRequest(headers) || Grpc::isGrpcWebRequest(headers)) {
    stats_ = &config_->registry->forPath(headers.pathOnly(), config_->max_methods);
    stats_->total().inc();
  }
  return Http::FilterHeadersStatus::Continue;
}

Http::FilterHeadersStatus GrpcStatsFilter::encodeHeaders(Http::ResponseHeaderMap& headers,
                                                         bool end_stream) {
  if (stats_ == nullptr) {
    return Http::FilterHeadersStatus::Continue;
  }
  http_status_ = headers.status;
  const Http::HeaderEntry* status = headers.find(Grpc::kGrpcStatus);
  if (status != nullptr) {
    // Trailers-only.
    charge(Grpc::parseStatus(status->value).value_or(static_cast<uint32_t>(Grpc::Status::Unknown)));
  } else if (end_stream) {
    charge(static_cast<uint32_t>(Grpc::httpToGrpcStatus(http_status_)));
  }
  return Http::FilterHeadersStatus::Continue;
}

Http::FilterDataStatus GrpcStatsFilter::encodeData(Buffer::Instance&, bool end_stream) {
  if (end_stream && stats_ != nullptr) {
    // Ended without trailers: no grpc-status; an HTTP 200 then says UNKNOWN.
    Grpc::Status s = Grpc::httpToGrpcStatus(http_status_);
    charge(static_cast<uint32_t>(s == Grpc::Status::Ok ? Grpc::Status::Unknown : s));
  }
  return Http::FilterDataStatus::Continue;
}

Http::FilterTrailersStatus GrpcStatsFilter::encodeTrailers(Http::HeaderMap& trailers) {
  if (stats_ != nullptr) {
    const Http::HeaderEntry* status = trailers.find(Grpc::kGrpcStatus);
    charge(status == nullptr ? static_cast<uint32_t>(Grpc::Status::Unknown)
                             : Grpc::parseStatus(status->value)
                                   .value_or(static_cast<uint32_t>(Grpc::Status::Unknown)));
  }
  return Http::FilterTrailersStatus::Continue;
}

void GrpcStatsFilter::charge(uint32_t code) {
  config_->registry->chargeStatus(*stats_, code);
  stats_ = nullptr;
}

}  // namespace GrpcStats
}  // namespace Extensions
}  // namespace sluice
