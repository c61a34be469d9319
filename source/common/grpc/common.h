#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "source/common/http/headers.h"
#include "source/common/http/response_flags.h"

namespace sluice {
namespace Grpc {

// gRPC status codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html).
enum class Status : uint32_t {
  Ok = 0,
  Canceled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  DataLoss = 15,
  Unauthenticated = 16,
};
constexpr uint32_t kMaxStatus = static_cast<uint32_t>(Status::Unauthenticated);

// Header names.
inline constexpr absl::string_view kGrpcStatus = "grpc-status";
inline constexpr absl::string_view kGrpcMessage = "grpc-message";
inline constexpr absl::string_view kGrpcTimeout = "grpc-timeout";
inline constexpr absl::string_view kContentTypeGrpc = "application/grpc";

// The media type of a content-type value: parameters (";...") and surrounding blanks removed.
absl::string_view mediaType(absl::string_view content_type);

// `application/grpc` or `application/grpc+<subtype>` (case-insensitive, parameters ignored).
bool isGrpcContentType(absl::string_view content_type);
// gRPC-Web: `application/grpc-web`, `application/grpc-web-text`, each optionally `+<subtype>`.
bool isGrpcWebContentType(absl::string_view content_type);
// The base64 variant: `application/grpc-web-text` or `application/grpc-web-text+<subtype>`.
bool isGrpcWebTextContentType(absl::string_view content_type);
// "+proto" of `application/grpc-web+proto` (or of `application/grpc+proto`); empty if none.
absl::string_view contentTypeSuffix(absl::string_view content_type);

// A gRPC request: its content-type is application/grpc[+...].
bool isGrpcRequest(const Http::RequestHeaderMap& headers);
// A gRPC-Web request (binary or text).
bool isGrpcWebRequest(const Http::RequestHeaderMap& headers);

// The grpc-status of an HTTP status, for responses without one (gRPC's HTTP-to-gRPC mapping,
// with 429 as RESOURCE_EXHAUSTED and 504 as DEADLINE_EXCEEDED): 400 INTERNAL, 401
// UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 UNIMPLEMENTED, 429 RESOURCE_EXHAUSTED, 502/503
// UNAVAILABLE, 504 DEADLINE_EXCEEDED, 200 OK (a gRPC response without grpc-status is UNKNOWN:
// see statusOf), anything else UNKNOWN.
Status httpToGrpcStatus(uint32_t http_status);
// The grpc-status of a local reply: DEADLINE_EXCEEDED when a timeout caused it (flags UT or RT),
// else httpToGrpcStatus().
Status localReplyStatus(uint32_t http_status, const Http::ResponseFlags& flags);

// A grpc-status header value: 1-3 ASCII digits (any value, even past 16, as the peer sent it);
// nullopt when malformed.
absl::optional<uint32_t> parseStatus(absl::string_view value);

// grpc-timeout (gRPC over HTTP/2: 1 to 8 ASCII digits and a unit H, M, S, m, u or n), rounded
// up to whole milliseconds, at least 1 ms (a 0 timeout has already expired). nullopt when the
// value is invalid (such a header is ignored).
absl::optional<std::chrono::milliseconds> parseTimeout(absl::string_view value);

// A grpc-timeout value for `timeout` (> 0): milliseconds while they fit in 8 digits, else the
// next coarser unit, rounded up.
std::string formatTimeout(std::chrono::milliseconds timeout);

// grpc-message's percent-encoding: bytes outside 0x20-0x7E, and '%', become %XX (upper-case
// hex); UTF-8 stays as its bytes.
std::string percentEncodeMessage(absl::string_view message);
// The reverse; a malformed escape is kept as it is (the spec asks receivers not to fail).
std::string percentDecodeMessage(absl::string_view encoded);

// `/package.Service/Method` -> ("package.Service", "Method"). False for any other shape (no
// query, exactly two non-empty segments).
bool parseServicePath(absl::string_view path, absl::string_view* service,
                      absl::string_view* method);

// Fills `headers` as a trailers-only gRPC response (status 200, content-type, grpc-status,
// percent-encoded grpc-message) answering a local reply of `http_status`. The body must be empty.
// `content_type` replaces application/grpc (a gRPC-Web client's own type).
void setTrailersOnlyReply(Http::ResponseHeaderMap& headers, uint32_t http_status,
                          const Http::ResponseFlags& flags, absl::string_view message,
                          absl::string_view content_type = kContentTypeGrpc);

}  // namespace Grpc
}  // namespace sluice
