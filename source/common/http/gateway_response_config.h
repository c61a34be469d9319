#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/map.h"
#include "sluice/config/v1/route.pb.h"
#include "source/common/config/utility.h"
#include "source/common/http/gateway_response.h"
#include "source/common/http/headers.h"

namespace sluice {
namespace Http {

// What a gateway response template can name.
struct GatewayResponseVars {
  absl::string_view request_id;  // $request_id
  uint32_t status = 0;           // $status: the status the reply goes out with
  absl::string_view message;     // $message: the gateway's message ("no route matched", ...)
  absl::string_view route;       // $route: the matched route's name, empty when none matched
};

// A body or header-value template, compiled when the config is loaded: literal text and the
// variables $request_id, $status, $message, $route. A variable is `$` and a name made of
// letters, digits and `_`: `$routes` or `$foo` stay literal text, as does a `$` followed by
// anything else. Rendering is one pass over the compiled pieces.
class GatewayResponseTemplate {
 public:
  // How substituted values are written (literal text is always written as configured).
  enum class Escape : uint8_t {
    None,
    Json,         // escaped as the inside of a JSON string (no quotes added)
    HeaderValue,  // control characters (CR, LF, NUL, ...) replaced by spaces
  };
  static GatewayResponseTemplate compile(absl::string_view text);
  // Appends the rendered text to `out`.
  void render(const GatewayResponseVars& vars, Escape escape, std::string& out) const;

 private:
  enum class Var : uint8_t { None, RequestId, Status, Message, Route };
  // Literal text, then (unless None) a variable.
  struct Piece {
    std::string literal;
    Var var = Var::None;
  };
  std::vector<Piece> pieces_;
};

// One type's GatewayResponse, compiled.
struct CompiledGatewayResponse {
  uint32_t status_code = 0;  // 0 = the gateway's status
  // Lower-case names, sorted; each replaces the reply's headers of that name.
  std::vector<std::pair<std::string, GatewayResponseTemplate>> headers;
  // false: the built-in JSON body.
  bool has_body = false;
  GatewayResponseTemplate body;
  std::string content_type;  // with has_body
  bool json = false;         // content_type is JSON: substituted values are JSON-escaped

  // The status the reply goes out with, given the gateway's.
  uint32_t statusFor(uint32_t status) const { return status_code != 0 ? status_code : status; }
  // Appends the body (has_body) to `out`; `vars.status` is the final status.
  void renderBody(const GatewayResponseVars& vars, std::string& out) const;
  // Sets the configured headers on `headers`, replacing those of the same name.
  void applyHeaders(const GatewayResponseVars& vars, ResponseHeaderMap& headers) const;
};

// A listener's or a virtual host's `gateway_responses`, by type. Immutable; shared by every
// worker through the config snapshot.
class GatewayResponses {
 public:
  using ConfigMap = google::protobuf::Map<std::string, sluice::config::v1::GatewayResponse>;
  // Compiles `config` (type name -> GatewayResponse); errors name fields under `path`, the map's
  // own path ("static_resources.listeners[0].gateway_responses"). Null when `config` is empty
  // or had an error.
  static std::shared_ptr<const GatewayResponses> create(const ConfigMap& config,
                                                        const std::string& path,
                                                        Config::ErrorList& errors);
  // The entry for `type`, or null.
  const CompiledGatewayResponse* find(GatewayResponseType type) const {
    return by_type_[static_cast<size_t>(type)].get();
  }

 private:
  std::array<std::unique_ptr<const CompiledGatewayResponse>, kGatewayResponseTypeCount> by_type_;
};
using GatewayResponsesConstSharedPtr = std::shared_ptr<const GatewayResponses>;

// The response configured for a reply of `type` with `status`, in this order: the virtual
// host's entry for `type`, the listener's, the virtual host's DEFAULT_4XX or DEFAULT_5XX (by
// the class of `status`), the listener's. Null (the built-in reply) when none is configured and
// for a status outside 400..599. Either set may be null.
const CompiledGatewayResponse* selectGatewayResponse(GatewayResponseType type, uint32_t status,
                                                     const GatewayResponses* vhost,
                                                     const GatewayResponses* listener);

// Whether a Content-Type is JSON: application/json or */*+json, parameters ignored.
bool isJsonContentType(absl::string_view content_type);

}  // namespace Http
}  // namespace sluice
