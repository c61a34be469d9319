#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace sluice {
namespace Http {

// Why a response is not simply the upstream's answer, for the access log's `response_flags`
// (Envoy's short names). Each names where the problem came from: the downstream client, the
// upstream, or the gateway itself. The declaration order is the order the access log lists them
// in: the cause (a filter's or the router's answer) before how the stream then ended (LR, DPE, DC).
enum class ResponseFlag : uint8_t {
  // Gateway (routing and configuration).
  NoRouteFound,    // NR: no route matched the request.
  NoClusterFound,  // NC: the route's cluster does not exist.
  // Upstream.
  NoHealthyUpstream,              // UH: the cluster had no healthy endpoint to pick.
  UpstreamOverflow,               // UO: a circuit breaker or the slot queue refused the request.
  UpstreamConnectionFailure,      // UF: connecting to the upstream failed or timed out.
  UpstreamRequestTimeout,         // UT: the route's (or a try's) timeout expired.
  UpstreamProtocolError,          // UPE: the upstream sent an invalid response.
  UpstreamConnectionTermination,  // UC: the upstream closed before its response was complete.
  // Filters.
  RateLimited,                  // RL: over a rate limit.
  RateLimitServiceError,        // RLSE: the rate-limit store failed (fail closed).
  UnauthorizedExternalService,  // UAEX: the auth filter refused the request.
  // Downstream.
  RequestTimeout,                   // RT: request (headers, body) not received in time.
  StreamIdleTimeout,                // SI: no activity on the stream for stream_idle_timeout.
  DownstreamProtocolError,          // DPE: the client sent something invalid.
  LocalReset,                       // LR: the gateway aborted a response already started.
  DownstreamConnectionTermination,  // DC: the client went away mid-request.
};
constexpr int kResponseFlagCount =
    static_cast<int>(ResponseFlag::DownstreamConnectionTermination) + 1;

// The access log's short name ("UF", "NR", ...).
absl::string_view shortName(ResponseFlag flag);

// The set of flags of one stream: a bitset, no allocation.
class ResponseFlags {
 public:
  constexpr ResponseFlags() = default;
  void set(ResponseFlag flag) { bits_ |= bit(flag); }
  bool has(ResponseFlag flag) const { return (bits_ & bit(flag)) != 0; }
  bool empty() const { return bits_ == 0; }
  // Appends the short names, comma separated, in ResponseFlag order ("UT,LR"); nothing if empty.
  void appendTo(std::string& out) const;
  std::string toString() const {
    std::string out;
    appendTo(out);
    return out;
  }

 private:
  static constexpr uint32_t bit(ResponseFlag flag) { return 1u << static_cast<uint32_t>(flag); }
  static_assert(kResponseFlagCount <= 32, "ResponseFlags holds 32 flags");
  uint32_t bits_ = 0;
};

}  // namespace Http
}  // namespace sluice
