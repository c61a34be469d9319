#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "source/common/http/response_flags.h"

namespace sluice {
namespace Http {

// The kind of a reply the gateway makes itself (AWS API Gateway's gateway response types). A
// listener or virtual host reshapes the replies of a kind with `gateway_responses`, keyed by the
// names in the comments (docs/configuration.md#gatewayresponse has which filter answers with
// which). The filter that answers names the type (`sendLocalReply(..., type)`); otherwise it is
// inferred from the status and response flags (inferGatewayResponseType).
enum class GatewayResponseType : uint8_t {
  ResourceNotFound,      // RESOURCE_NOT_FOUND: no route matched (404 NR).
  Unauthorized,          // UNAUTHORIZED: no valid credential (401).
  AccessDenied,          // ACCESS_DENIED: authenticated, but not allowed (403).
  ExpiredToken,          // EXPIRED_TOKEN: the JWT's `exp` has passed (401).
  InvalidApiKey,         // INVALID_API_KEY: an API key no consumer has (401).
  Throttled,             // THROTTLED: over a rate limit shorter than a day (429).
  QuotaExceeded,         // QUOTA_EXCEEDED: over a limit of a day or longer (429).
  RequestTooLarge,       // REQUEST_TOO_LARGE: the body is over a limit (413).
  BadRequestBody,        // BAD_REQUEST_BODY: a filter refused the body (400).
  BadRequestParameters,  // BAD_REQUEST_PARAMETERS: the path or query is refused (400).
  UnsupportedMediaType,  // UNSUPPORTED_MEDIA_TYPE: the body's content type is refused (415).
  IntegrationFailure,    // INTEGRATION_FAILURE: the upstream could not be used (502, 503).
  IntegrationTimeout,    // INTEGRATION_TIMEOUT: the upstream did not answer in time (504).
  Default4xx,            // DEFAULT_4XX: any other 4xx, and the fallback of the 4xx types.
  Default5xx,            // DEFAULT_5XX: any other 5xx, and the fallback of the 5xx types.
};
inline constexpr size_t kGatewayResponseTypeCount =
    static_cast<size_t>(GatewayResponseType::Default5xx) + 1;

// The config name ("RESOURCE_NOT_FOUND").
absl::string_view gatewayResponseTypeName(GatewayResponseType type);
// The type a config name names (exact, upper case), or nullopt.
absl::optional<GatewayResponseType> parseGatewayResponseType(absl::string_view name);
// Every config name, ", "-separated, for error messages.
std::string gatewayResponseTypeNames();

// The type of a local reply whose sender did not name one: 404 with NR -> RESOURCE_NOT_FOUND,
// 401 UNAUTHORIZED, 403 ACCESS_DENIED, 413 REQUEST_TOO_LARGE, 415 UNSUPPORTED_MEDIA_TYPE,
// 429 THROTTLED, 502/503 with an upstream flag (NC, UH, UO, UF, UPE, UC) INTEGRATION_FAILURE,
// 504 INTEGRATION_TIMEOUT, any other 4xx DEFAULT_4XX and 5xx DEFAULT_5XX. nullopt below 400
// (redirects are never reshaped) and above 599.
absl::optional<GatewayResponseType> inferGatewayResponseType(uint32_t status,
                                                             const ResponseFlags& flags);

}  // namespace Http
}  // namespace sluice
