#pragma once

#include <cstdint>

#include "source/common/buffer/buffer.h"
#include "source/common/http/filter.h"
#include "source/extensions/filters/http/request_validator/config.h"

namespace sluice {
namespace Extensions {
namespace RequestValidator {

// Parses a parameter's text as its kind says (integer, number, boolean, array of those, or a
// string). False, with `*error` set, when the text is not of that kind.
bool parameterValue(const CompiledParameter& p, const std::vector<absl::string_view>& texts,
                    Json::Value& out, std::string* error);

// `request_validator`: validates a request against its route's OpenAPI operation
// (filter_config.request_validator): parameters at header time (400 BAD_REQUEST_PARAMETERS,
// naming the parameter and what is wrong), then a JSON body, held whole (at most
// max_body_bytes, else 413) and validated before it goes on unchanged (400 BAD_REQUEST_BODY,
// naming the field). A media type the operation doesn't take gets 415. Routes without a config
// pass untouched. Per stream; runs on its worker only.
class RequestValidatorFilter : public Http::StreamDecoderFilter {
 public:
  explicit RequestValidatorFilter(uint32_t max_body_bytes) : max_body_bytes_(max_body_bytes) {}

  Http::FilterHeadersStatus decodeHeaders(Http::RequestHeaderMap& headers,
                                          bool end_stream) override;
  Http::FilterDataStatus decodeData(Buffer::Instance& data, bool end_stream) override;
  Http::FilterTrailersStatus decodeTrailers(Http::HeaderMap& trailers) override;
  void setDecoderFilterCallbacks(Http::StreamDecoderFilterCallbacks& cb) override {
    callbacks_ = &cb;
  }

 private:
  bool checkParameters(const Http::RequestHeaderMap& headers);
  // Validates the held body; false after a refusal. The body stays in body_.
  bool checkBody();

  const uint32_t max_body_bytes_;
  Http::StreamDecoderFilterCallbacks* callbacks_ = nullptr;
  const RouteConfig* config_ = nullptr;
  bool buffering_ = false;
  Buffer::OwnedImpl body_;
};

}  // namespace RequestValidator
}  // namespace Extensions
}  // namespace sluice
