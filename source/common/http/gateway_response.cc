#include "source/common/http/gateway_response.h"

namespace sluice {
namespace Http {
namespace {

// Indexed by GatewayResponseType.
constexpr absl::string_view kNames[kGatewayResponseTypeCount] = {
    "RESOURCE_NOT_FOUND",
    "UNAUTHORIZED",
    "ACCESS_DENIED",
    "EXPIRED_TOKEN",
    "INVALID_API_KEY",
    "THROTTLED",
    "QUOTA_EXCEEDED",
    "REQUEST_TOO_LARGE",
    "BAD_REQUEST_BODY",
    "BAD_REQUEST_PARAMETERS",
    "UNSUPPORTED_MEDIA_TYPE",
    "INTEGRATION_FAILURE",
    "INTEGRATION_TIMEOUT",
    "DEFAULT_4XX",
    "DEFAULT_5XX",
};

}  // namespace

absl::string_view gatewayResponseTypeName(GatewayResponseType type) {
  return kNames[static_cast<size_t>(type)];
}

absl::optional<GatewayResponseType> parseGatewayResponseType(absl::string_view name) {
  for (size_t i = 0; i < kGatewayResponseTypeCount; ++i) {
    if (kNames[i] == name) return static_cast<GatewayResponseType>(i);
  }
  return absl::nullopt;
}

std::string gatewayResponseTypeNames() {
  std::string out;
  for (size_t i = 0; i < kGatewayResponseTypeCount; ++i) {
    if (i > 0) out += ", ";
    out.append(kNames[i].data(), kNames[i].size());
  }
  return out;
}

absl::optional<GatewayResponseType> inferGatewayResponseType(uint32_t status,
                                                             const ResponseFlags& flags) {
  if (status < 400 || status > 599) return absl::nullopt;
  switch (status) {
    case 404:
      if (flags.has(ResponseFlag::NoRouteFound)) return GatewayResponseType::ResourceNotFound;
      break;
    case 401:
      return GatewayResponseType::Unauthorized;
    case 403:
      return GatewayResponseType::AccessDenied;
    case 413:
      return GatewayResponseType::RequestTooLarge;
    case 415:
      return GatewayResponseType::UnsupportedMediaType;
    case 429:
      return GatewayResponseType::Throttled;
    case 502:
    case 503:
      // The router's failures; a filter's 503 (auth policy missing, rate-limit store down) is
      // not the integration's.
      if (flags.has(ResponseFlag::NoClusterFound) || flags.has(ResponseFlag::NoHealthyUpstream) ||
          flags.has(ResponseFlag::UpstreamOverflow) ||
          flags.has(ResponseFlag::UpstreamConnectionFailure) ||
          flags.has(ResponseFlag::UpstreamProtocolError) ||
          flags.has(ResponseFlag::UpstreamConnectionTermination)) {
        return GatewayResponseType::IntegrationFailure;
      }
      break;
    case 504:
      return GatewayResponseType::IntegrationTimeout;
    default:
      break;
  }
  return status < 500 ? GatewayResponseType::Default4xx : GatewayResponseType::Default5xx;
}

}  // namespace Http
}  // namespace sluice
