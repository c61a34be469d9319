#include "source/common/grpc/common.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace sluice {
namespace Grpc {
namespace {

constexpr absl::string_view kGrpcWeb = "application/grpc-web";
constexpr absl::string_view kGrpcWebText = "application/grpc-web-text";

// `type` is `base` or `base+<subtype>` (case-insensitive).
bool isTypeOrSubtype(absl::string_view type, absl::string_view base) {
  if (type.size() < base.size() || !absl::EqualsIgnoreCase(type.substr(0, base.size()), base)) {
    return false;
  }
  return type.size() == base.size() || type[base.size()] == '+';
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

absl::string_view mediaType(absl::string_view content_type) {
  const size_t semi = content_type.find(';');
  if (semi != absl::string_view::npos) content_type = content_type.substr(0, semi);
  return absl::StripAsciiWhitespace(content_type);
}

bool isGrpcContentType(absl::string_view content_type) {
  return isTypeOrSubtype(mediaType(content_type), kContentTypeGrpc);
}

bool isGrpcWebContentType(absl::string_view content_type) {
  const absl::string_view type = mediaType(content_type);
  return isTypeOrSubtype(type, kGrpcWeb) || isTypeOrSubtype(type, kGrpcWebText);
}

bool isGrpcWebTextContentType(absl::string_view content_type) {
  return isTypeOrSubtype(mediaType(content_type), kGrpcWebText);
}

absl::string_view contentTypeSuffix(absl::string_view content_type) {
  const absl::string_view type = mediaType(content_type);
  const size_t plus = type.find('+');
  return plus == absl::string_view::npos ? absl::string_view() : type.substr(plus);
}

bool isGrpcRequest(const Http::RequestHeaderMap& headers) {
  const Http::HeaderEntry* ct = headers.find("content-type");
  return ct != nullptr && isGrpcContentType(ct->value);
}

bool isGrpcWebRequest(const Http::RequestHeaderMap& headers) {
  const Http::HeaderEntry* ct = headers.find("content-type");
  return ct != nullptr && isGrpcWebContentType(ct->value);
}

Status httpToGrpcStatus(uint32_t http_status) {
  switch (http_status) {
    case 200:
      return Status::Ok;
    case 400:
      return Status::Internal;
    case 401:
      return Status::Unauthenticated;
    case 403:
      return Status::PermissionDenied;
    case 404:
      return Status::Unimplemented;
    case 429:
      return Status::ResourceExhausted;
    case 502:
    case 503:
      return Status::Unavailable;
    case 504:
      return Status::DeadlineExceeded;
    default:
      return Status::Unknown;
  }
}

Status localReplyStatus(uint32_t http_status, const Http::ResponseFlags& flags) {
  if (flags.has(Http::ResponseFlag::UpstreamRequestTimeout) ||
      flags.has(Http::ResponseFlag::RequestTimeout)) {
    return Status::DeadlineExceeded;
  }
  const Status s = httpToGrpcStatus(http_status);
  // A local reply is an error: never OK.
  return s == Status::Ok ? Status::Unknown : s;
}

absl::optional<uint32_t> parseStatus(absl::string_view value) {
  value = absl::StripAsciiWhitespace(value);
  if (value.empty() || value.size() > 9) return absl::nullopt;
  uint32_t out = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return absl::nullopt;
    out = out * 10 + static_cast<uint32_t>(c - '0');
  }
  return out;
}

absl::optional<std::chrono::milliseconds> parseTimeout(absl::string_view value) {
  // TimeoutValue: 1*8DIGIT; TimeoutUnit: one of H M S m u n.
  if (value.size() < 2 || value.size() > 9) return absl::nullopt;
  uint64_t n = 0;
  for (char c : value.substr(0, value.size() - 1)) {
    if (c < '0' || c > '9') return absl::nullopt;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  // n < 10^8, so even hours in ms (3.6e14) fit in 64 bits.
  uint64_t ms = 0;
  switch (value.back()) {
    case 'H':
      ms = n * 3600 * 1000;
      break;
    case 'M':
      ms = n * 60 * 1000;
      break;
    case 'S':
      ms = n * 1000;
      break;
    case 'm':
      ms = n;
      break;
    case 'u':
      ms = (n + 999) / 1000;
      break;
    case 'n':
      ms = (n + 999999) / 1000000;
      break;
    default:
      return absl::nullopt;
  }
  return std::chrono::milliseconds(std::max<uint64_t>(ms, 1));
}

std::string formatTimeout(std::chrono::milliseconds timeout) {
  constexpr uint64_t kMax = 99999999;  // 8 digits
  uint64_t v = static_cast<uint64_t>(std::max<int64_t>(timeout.count(), 1));
  if (v <= kMax) return absl::StrCat(v, "m");
  v = (v + 999) / 1000;
  if (v <= kMax) return absl::StrCat(v, "S");
  v = (v + 59) / 60;
  if (v <= kMax) return absl::StrCat(v, "M");
  v = (v + 59) / 60;
  return absl::StrCat(std::min(v, kMax), "H");
}

std::string percentEncodeMessage(absl::string_view message) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(message.size());
  for (char ch : message) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c > 0x7e || c == '%') {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += ch;
    }
  }
  return out;
}

std::string percentDecodeMessage(absl::string_view encoded) {
  std::string out;
  out.reserve(encoded.size());
  for (size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] == '%' && i + 2 < encoded.size()) {
      const int hi = hexValue(encoded[i + 1]);
      const int lo = hexValue(encoded[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>((hi << 4) | lo);
        i += 2;
        continue;
      }
    }
    out += encoded[i];
  }
  return out;
}

bool parseServicePath(absl::string_view path, absl::string_view* service,
                      absl::string_view* method) {
  if (path.size() < 4 || path[0] != '/') return false;
  const size_t slash = path.find('/', 1);
  if (slash == absl::string_view::npos || slash == 1 || slash + 1 == path.size()) return false;
  const absl::string_view m = path.substr(slash + 1);
  if (m.find_first_of("/?#") != absl::string_view::npos) return false;
  *service = path.substr(1, slash - 1);
  *method = m;
  return true;
}

void setTrailersOnlyReply(Http::ResponseHeaderMap& headers, uint32_t http_status,
                          const Http::ResponseFlags& flags, absl::string_view message,
                          absl::string_view content_type) {
  headers.status = 200;
  headers.set("content-type", content_type);
  headers.set(kGrpcStatus,
              absl::StrCat(static_cast<uint32_t>(localReplyStatus(http_status, flags))));
  if (!message.empty()) {
    headers.set(kGrpcMessage, percentEncodeMessage(message));
  }
}

}  // namespace Grpc
}  // namespace sluice
