#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "source/common/buffer/buffer.h"
#include "source/common/http/filter.h"

namespace sluice {
namespace Extensions {
namespace GrpcWeb {

// Base64 of a body that arrives in pieces, decoded in whole 4-character groups (an incomplete
// group waits for the next piece). A group may end in padding, wherever it is in the stream: a
// gRPC-Web-text client may encode each message on its own.
class Base64StreamDecoder {
 public:
  // Appends the bytes of the complete groups of `in` to `out`. False on a character outside the
  // base64 alphabet or misplaced padding.
  bool decode(absl::string_view in, std::string& out);
  // No incomplete group is waiting (the body may end here).
  bool atGroupBoundary() const { return pending_len_ == 0; }

 private:
  char pending_[4] = {};
  size_t pending_len_ = 0;
};

// Base64 of a body produced in pieces, encoded in whole 3-byte groups; finish() pads the rest.
class Base64StreamEncoder {
 public:
  void encode(absl::string_view in, std::string& out);
  void finish(std::string& out);

 private:
  std::string pending_;  // < 3 bytes
};

// The gRPC-Web trailer frame of `trailers`: flag byte 0x80, 4-byte big-endian length, then
// `name:value\r\n` for each trailer.
std::string trailerFrame(const Http::HeaderMap& trailers);

// gRPC-Web (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-WEB.md) from browsers to gRPC
// upstreams, as Envoy's grpc_web filter does. A request with content-type
// application/grpc-web[+proto] or application/grpc-web-text[+proto] goes upstream as
// application/grpc[+proto] with `te: trailers` and no content-length (a text body is base64
// decoded). The response gets the client's gRPC-Web content-type back (base64 encoded for text
// clients: a text request, or `accept: application/grpc-web-text`), and its trailers travel at
// the end of the body as a trailer frame. A trailers-only response stays headers only. A
// response that is not gRPC at all (an error page) becomes a status the client can read: its
// HTTP status mapped to grpc-status, the body dropped. Other requests pass untouched (CORS
// preflights included: a CORS filter answers those).
class GrpcWebFilter : public Http::StreamFilter {
 public:
  // StreamDecoderFilter
  Http::FilterHeadersStatus decodeHeaders(Http::RequestHeaderMap& headers,
                                          bool end_stream) override;
  Http::FilterDataStatus decodeData(Buffer::Instance& data, bool end_stream) override;
  Http::FilterTrailersStatus decodeTrailers(Http::HeaderMap&) override {
    return Http::FilterTrailersStatus::Continue;
  }
  void setDecoderFilterCallbacks(Http::StreamDecoderFilterCallbacks& cb) override {
    decoder_callbacks_ = &cb;
  }

  // StreamEncoderFilter
  Http::FilterHeadersStatus encodeHeaders(Http::ResponseHeaderMap& headers,
                                          bool end_stream) override;
  Http::FilterDataStatus encodeData(Buffer::Instance& data, bool end_stream) override;
  Http::FilterTrailersStatus encodeTrailers(Http::HeaderMap& trailers) override;
  void setEncoderFilterCallbacks(Http::StreamEncoderFilterCallbacks& cb) override {
    encoder_callbacks_ = &cb;
  }

 private:
  void invalidBase64();

  Http::StreamDecoderFilterCallbacks* decoder_callbacks_ = nullptr;
  Http::StreamEncoderFilterCallbacks* encoder_callbacks_ = nullptr;
  bool grpc_web_ = false;       // a gRPC-Web request: the response is transformed
  bool text_request_ = false;   // its body is base64
  bool text_response_ = false;  // the response body is sent base64
  bool drop_body_ = false;      // the response is not gRPC: its status is in the headers
  std::string response_content_type_;
  Base64StreamDecoder decoder_;
  Base64StreamEncoder encoder_;
};

}  // namespace GrpcWeb
}  // namespace Extensions
}  // namespace sluice
