#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "source/common/config/utility.h"
#include "source/common/router/config.h"
#include "source/extensions/filters/http/common/transform.h"
#include "source/extensions/filters/http/response_transformer/config.pb.h"

namespace sluice {
namespace Extensions {
namespace ResponseTransformer {

// The filter's name in http_filters and filter_config.
inline constexpr char kFilterName[] = "response_transformer";

using ConfigProto =
    sluice::extensions::filters::http::response_transformer::v1::ResponseTransformer;

// max_body_bytes: 0 means this; larger values than the cap are refused.
inline constexpr uint32_t kDefaultMaxBodyBytes = 1 << 20;
inline constexpr uint32_t kMaxMaxBodyBytes = 64 << 20;
// Keys in one dotted JSON path (bounds how deep a rule can nest what it adds).
inline constexpr size_t kMaxJsonPathKeys = 32;

struct HeaderRename {
  std::string from;  // lower case
  std::string to;
};
struct HeaderValue {
  std::string name;  // lower case
  std::string value;
};

// One compiled config (the listener's, or a route's / virtual host's filter_config, which
// replaces it for its routes). Immutable; shared by every worker's streams.
struct Rules : public Router::RouteSpecificFilterConfig {
  std::vector<std::string> remove_headers;
  std::vector<HeaderRename> rename_headers;
  std::vector<HeaderValue> replace_headers;
  std::vector<HeaderValue> add_headers;
  std::vector<HeaderValue> append_headers;
  Transform::JsonRules json;
  uint32_t max_body_bytes = kDefaultMaxBodyBytes;

  bool hasHeaderRules() const {
    return !remove_headers.empty() || !rename_headers.empty() || !replace_headers.empty() ||
           !add_headers.empty() || !append_headers.empty();
  }
};
using RulesConstSharedPtr = std::shared_ptr<const Rules>;

// Compiles `config`. Errors go to `errors` at `field(<field inside the config>)`, e.g.
// field("add.json_types[1]"); every error is reported. Null when there was one.
RulesConstSharedPtr compileRules(const ConfigProto& config,
                                 const std::function<std::string(absl::string_view)>& field,
                                 Config::ErrorList& errors);

}  // namespace ResponseTransformer
}  // namespace Extensions
}  // namespace sluice
