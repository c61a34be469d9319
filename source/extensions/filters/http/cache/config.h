#pragma once

#include <bitset>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "source/common/config/utility.h"
#include "source/common/router/config.h"
#include "source/extensions/filters/http/cache/config.pb.h"

namespace sluice {
namespace Extensions {
namespace Cache {

// The filter's name in http_filters and filter_config.
inline constexpr char kFilterName[] = "cache";

using ConfigProto = sluice::extensions::filters::http::cache::v1::Cache;
using PerRouteProto = sluice::extensions::filters::http::cache::v1::CachePerRoute;

inline constexpr uint64_t kDefaultMaxBytes = 64 << 20;
inline constexpr uint64_t kDefaultMaxObjectBytes = 1 << 20;
inline constexpr uint64_t kMaxMaxObjectBytes = 1 << 30;
inline constexpr std::chrono::milliseconds kDefaultCacheTtl{300000};
inline constexpr std::chrono::milliseconds kDefaultCollapseTimeout{5000};
inline constexpr uint32_t kDefaultCollapseMaxWaiters = 1000;

// One configured content type: "type/subtype" (either may be "*"), lower case, with the
// parameters that must match (names lower case; values compared without case, as a charset).
struct MediaRange {
  std::string type;
  std::string subtype;
  std::vector<std::pair<std::string, std::string>> params;
};

// Whether a response's Content-Type value is one of `ranges` (see MediaRange). A value that is
// not a media type matches nothing.
bool contentTypeMatches(const std::vector<MediaRange>& ranges, absl::string_view content_type);
// Parses "type/subtype; name=value ..." (lower-cased); false when it is not one.
bool parseMediaRange(absl::string_view text, MediaRange& out);

// One compiled config (the listener's, or a route's / virtual host's, which replaces it for its
// routes). Immutable; shared by every worker's streams.
struct CacheConfig : public Router::RouteSpecificFilterConfig {
  bool disabled = false;
  std::bitset<901> response_codes;
  bool get = true;
  bool head = true;
  std::vector<MediaRange> content_types;
  std::chrono::milliseconds cache_ttl = kDefaultCacheTtl;
  bool cache_control = false;
  std::vector<std::string> vary_headers;       // lower case, as configured (order kept)
  std::vector<std::string> vary_query_params;  // as configured
  bool ignore_uri_case = false;
  uint64_t max_bytes = kDefaultMaxBytes;  // the listener's only
  uint64_t max_object_bytes = kDefaultMaxObjectBytes;
  std::chrono::milliseconds stale_while_revalidate{0};
  std::chrono::milliseconds stale_if_error{0};
  bool expose_cache_key = false;
  std::chrono::milliseconds collapse_timeout = kDefaultCollapseTimeout;
  uint32_t collapse_max_waiters = kDefaultCollapseMaxWaiters;

  bool cacheableStatus(uint32_t status) const {
    return status < response_codes.size() && response_codes.test(status);
  }
};
using CacheConfigConstSharedPtr = std::shared_ptr<const CacheConfig>;

// Compiles a listener config. Errors go to `errors` at `field(<field inside the config>)`;
// every error is reported. Null when there was one.
CacheConfigConstSharedPtr compileConfig(const ConfigProto& config,
                                        const std::function<std::string(absl::string_view)>& field,
                                        Config::ErrorList& errors);
// The same for a route's or virtual host's (max_bytes is the listener's; `disabled` alone).
CacheConfigConstSharedPtr compileRouteConfig(
    const PerRouteProto& config, const std::function<std::string(absl::string_view)>& field,
    Config::ErrorList& errors);

}  // namespace Cache
}  // namespace Extensions
}  // namespace sluice
