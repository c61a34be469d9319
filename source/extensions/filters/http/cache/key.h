#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "source/common/http/headers.h"
#include "source/extensions/filters/http/cache/config.h"

namespace sluice {
namespace Extensions {
namespace Cache {

// The cache key of a request, as text (never sent anywhere; X-Cache-Key is its SHA-256). Kong's
// key parts, method-independent (GET and HEAD share entries): the route, the consumer auth
// identified (one consumer never gets another's response), the host (lower case), the path
// (lower case with ignore_uri_case), the query in a normal order (every parameter, or only
// `vary_query_params`), and the `vary_headers` values. Fields are length-prefixed or separated
// by bytes they can't contain: different requests never share a key text.
void appendBaseKey(const CacheConfig& config, const Http::RequestHeaderMap& request,
                   absl::string_view route_name, absl::string_view consumer, std::string& out);

// The query part: raw `name=value` pairs (as sent, not decoded; empty pairs dropped), sorted,
// joined with '&'. With `params`, only pairs with those names, in the configured order.
void appendQueryKey(absl::string_view query, const std::vector<std::string>& params,
                    std::string& out);

// The values of request headers `names` (each name's lines sorted), for the configured
// vary_headers and a response's Vary. An absent header adds nothing but its name's slot.
void appendHeadersKey(const Http::HeaderMap& request, const std::vector<std::string>& names,
                      std::string& out);

// The suffix of a variant's key: the request's values of the headers a response varied on.
void appendVariantKey(const Http::HeaderMap& request, const std::vector<std::string>& vary,
                      std::string& out);

// SHA-256 of `key`, 64 lower-case hex digits.
std::string keyDigest(absl::string_view key);

// The header names of a response's Vary lines (lower case, deduplicated, sorted). False for
// `Vary: *` (never stored).
bool parseVary(const Http::HeaderMap& response, std::vector<std::string>& names);

}  // namespace Cache
}  // namespace Extensions
}  // namespace sluice
