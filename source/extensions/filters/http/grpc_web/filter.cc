#include "source/extensions/filters/http/grpc_web/filter.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "source/common/grpc/common.h"

namespace sluice {
namespace Extensions {
namespace GrpcWeb {
namespace {

constexpr uint8_t kTrailerFlag = 0x80;

// The 6-bit value of a base64 character, -1 for anything else (padding included).
int base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// One group of 4 characters: "xxxx", "xxx=" or "xx==".
bool decodeGroup(const char* g, std::string& out) {
  const int a = base64Value(g[0]);
  const int b = base64Value(g[1]);
  if (a < 0 || b < 0) return false;
  out += static_cast<char>((a << 2) | (b >> 4));
  if (g[2] == '=') {
    return g[3] == '=';
  }
  const int c = base64Value(g[2]);
  if (c < 0) return false;
  out += static_cast<char>(((b & 0xf) << 4) | (c >> 2));
  if (g[3] == '=') {
    return true;
  }
  const int d = base64Value(g[3]);
  if (d < 0) return false;
  out += static_cast<char>(((c & 0x3) << 6) | d);
  return true;
}

}  // namespace

bool Base64StreamDecoder::decode(absl::string_view in, std::string& out) {
  out.reserve(out.size() + (pending_len_ + in.size()) / 4 * 3);
  for (char c : in) {
    pending_[pending_len_++] = c;
    if (pending_len_ == 4) {
      pending_len_ = 0;
      if (!decodeGroup(pending_, out)) return false;
    }
  }
  return true;
}

void Base64StreamEncoder::encode(absl::string_view in, std::string& out) {
  if (!pending_.empty()) {
    const size_t take = std::min(3 - pending_.size(), in.size());
    pending_.append(in.data(), take);
    in.remove_prefix(take);
    if (pending_.size() < 3) return;
    out += absl::Base64Escape(pending_);
    pending_.clear();
  }
  const size_t whole = in.size() / 3 * 3;
  out += absl::Base64Escape(in.substr(0, whole));
  pending_.assign(in.data() + whole, in.size() - whole);
}

void Base64StreamEncoder::finish(std::string& out) {
  out += absl::Base64Escape(pending_);  // padded
  pending_.clear();
}

std::string trailerFrame(const Http::HeaderMap& trailers) {
  std::string payload;
  for (const Http::HeaderEntry& e : trailers.entries()) {
    absl::StrAppend(&payload, e.key, ":", e.value, "\r\n");
  }
  const uint32_t n = static_cast<uint32_t>(payload.size());
  std::string frame;
  frame.reserve(5 + payload.size());
  frame += static_cast<char>(kTrailerFlag);
  frame += static_cast<char>((n >> 24) & 0xff);
  frame += static_cast<char>((n >> 16) & 0xff);
  frame += static_cast<char>((n >> 8) & 0xff);
  frame += static_cast<char>(n & 0xff);
  frame += payload;
  return frame;
}

Http::FilterHeadersStatus GrpcWebFilter::decodeHeaders(Http::RequestHeaderMap& headers, bool) {
  const absl::string_view content_type = headers.get("content-type");
  if (!Grpc::isGrpcWebContentType(content_type)) {
    return Http::FilterHeadersStatus::Continue;
  }
  grpc_web_ = true;
  text_request_ = Grpc::isGrpcWebTextContentType(content_type);
  text_response_ = text_request_ || Grpc::isGrpcWebTextContentType(headers.get("accept"));
  const std::string suffix(Grpc::contentTypeSuffix(content_type));
  response_content_type_ =
      absl::StrCat(text_response_ ? "application/grpc-web-text" : "application/grpc-web", suffix);
  headers.set("content-type", absl::StrCat(Grpc::kContentTypeGrpc, suffix));
  // The body's length changes (base64) and an HTTP/2 upstream frames it itself.
  headers.remove("content-length");
  headers.set("te", "trailers");
  return Http::FilterHeadersStatus::Continue;
}

Http::FilterDataStatus GrpcWebFilter::decodeData(Buffer::Instance& data, bool end_stream) {
  if (!grpc_web_ || !text_request_) {
    return Http::FilterDataStatus::Continue;
  }
  std::string decoded;
  bool ok = true;
  data.forEachSlice([&](absl::string_view slice) { ok = ok && decoder_.decode(slice, decoded); });
  data.drain(data.length());
  if (!ok || (end_stream && !decoder_.atGroupBoundary())) {
    invalidBase64();
    return Http::FilterDataStatus::StopIterationNoBuffer;
  }
  if (decoded.empty() && !end_stream) {
    return Http::FilterDataStatus::StopIterationNoBuffer;
  }
  data.add(decoded);
  return Http::FilterDataStatus::Continue;
}

void GrpcWebFilter::invalidBase64() {
  decoder_callbacks_->sendLocalReply(400, "invalid base64 in the gRPC-Web request body",
                                     Http::ResponseFlag::DownstreamProtocolError);
}

Http::FilterHeadersStatus GrpcWebFilter::encodeHeaders(Http::ResponseHeaderMap& headers,
                                                       bool end_stream) {
  if (!grpc_web_) {
    return Http::FilterHeadersStatus::Continue;
  }
  const absl::string_view content_type = headers.get("content-type");
  const bool grpc = Grpc::isGrpcContentType(content_type) ||
                    Grpc::isGrpcWebContentType(content_type) || headers.has(Grpc::kGrpcStatus);
  headers.set("content-type", response_content_type_);
  if (grpc) {
    if (!end_stream) {
      // The body grows by the trailer frame (and base64).
      headers.remove("content-length");
    }
    return Http::FilterHeadersStatus::Continue;
  }
  // Not a gRPC response (an error page from the upstream or a proxy on the way): tell the client
  // in gRPC terms; the body means nothing to a gRPC-Web client.
  Grpc::Status status = Grpc::httpToGrpcStatus(headers.status);
  if (status == Grpc::Status::Ok) status = Grpc::Status::Unknown;
  headers.set(Grpc::kGrpcStatus, absl::StrCat(static_cast<uint32_t>(status)));
  headers.set(Grpc::kGrpcMessage,
              Grpc::percentEncodeMessage(absl::StrCat("upstream answered HTTP ", headers.status,
                                                      " without a gRPC response")));
  headers.set("content-length", "0");
  drop_body_ = !end_stream;
  return Http::FilterHeadersStatus::Continue;
}

Http::FilterDataStatus GrpcWebFilter::encodeData(Buffer::Instance& data, bool end_stream) {
  if (!grpc_web_) {
    return Http::FilterDataStatus::Continue;
  }
  if (drop_body_) {
    data.drain(data.length());
    return Http::FilterDataStatus::Continue;
  }
  if (!text_response_) {
    return Http::FilterDataStatus::Continue;
  }
  std::string encoded;
  data.forEachSlice([&](absl::string_view slice) { encoder_.encode(slice, encoded); });
  if (end_stream) {
    encoder_.finish(encoded);
  }
  data.drain(data.length());
  if (encoded.empty() && !end_stream) {
    return Http::FilterDataStatus::StopIterationNoBuffer;
  }
  data.add(encoded);
  return Http::FilterDataStatus::Continue;
}

Http::FilterTrailersStatus GrpcWebFilter::encodeTrailers(Http::HeaderMap& trailers) {
  if (!grpc_web_) {
    return Http::FilterTrailersStatus::Continue;
  }
  if (!drop_body_) {
    const std::string frame = trailerFrame(trailers);
    Buffer::OwnedImpl body;
    if (text_response_) {
      std::string encoded;
      encoder_.encode(frame, encoded);
      encoder_.finish(encoded);
      body.add(encoded);
    } else {
      body.add(frame);
    }
    encoder_callbacks_->addEncodedData(body);
  }
  // Moved into the body (or dropped with it): the response ends with the data.
  trailers.entries().clear();
  return Http::FilterTrailersStatus::Continue;
}

}  // namespace GrpcWeb
}  // namespace Extensions
}  // namespace sluice
