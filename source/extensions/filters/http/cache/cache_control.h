#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "source/common/http/headers.h"

namespace sluice {
namespace Extensions {
namespace Cache {

// RFC 9111 section 1.2.2: delta-seconds larger than this are taken as this.
inline constexpr int64_t kMaxDeltaSeconds = 2147483648;

// The directives of a request's Cache-Control (RFC 9111 5.2.1) the cache acts on. Every field
// line of the header counts (they are one comma-separated list). Names are compared without
// case; unknown directives are ignored.
struct RequestCacheControl {
  bool no_cache = false;
  bool no_store = false;
  bool only_if_cached = false;
  // delta-seconds; a malformed value counts as 0 (the most restrictive reading, 5.2.1.1).
  absl::optional<int64_t> max_age;
  absl::optional<int64_t> min_fresh;
  // max-stale without a value: any staleness is accepted (max_stale_any).
  bool max_stale_any = false;
  absl::optional<int64_t> max_stale;
};

// The directives of a response's Cache-Control (RFC 9111 5.2.2, RFC 5861) the cache acts on.
// `no-cache` and `private` count in their qualified forms too (`private="set-cookie"`).
struct ResponseCacheControl {
  bool no_cache = false;
  bool no_store = false;
  bool is_private = false;
  bool is_public = false;
  bool must_revalidate = false;
  bool proxy_revalidate = false;
  // delta-seconds; a malformed value counts as 0 (stale: RFC 9111 4.2.1); when a directive
  // appears twice, the smaller value counts (the most restrictive).
  absl::optional<int64_t> max_age;
  absl::optional<int64_t> s_maxage;
  absl::optional<int64_t> stale_while_revalidate;
  absl::optional<int64_t> stale_if_error;
};

// Parses one Cache-Control value (or several joined with ","). Never fails: what it can't
// read is skipped. Linear in the input, whatever it holds (unterminated quotes, control bytes,
// megabytes of commas).
RequestCacheControl parseRequestCacheControl(absl::string_view value);
ResponseCacheControl parseResponseCacheControl(absl::string_view value);

// Every `name` line of `headers` joined with ", " (the list the lines make, RFC 9110 5.3);
// a view of the single line when there is one (`scratch` holds the join otherwise).
absl::string_view joinedHeader(const Http::HeaderMap& headers, absl::string_view name,
                               std::string& scratch);

// An HTTP-date (RFC 9110 5.6.7): IMF-fixdate, and the obsolete RFC 850 and asctime forms, as
// seconds since the epoch. nullopt when the value is none of them (a recipient then treats an
// Expires as already expired).
absl::optional<int64_t> parseHttpDate(absl::string_view value);
// IMF-fixdate of `seconds` since the epoch ("Sun, 06 Nov 1994 08:49:37 GMT").
std::string formatHttpDate(int64_t seconds);

// If-None-Match (RFC 9110 13.1.2) against a stored ETag, with the weak comparison: true when
// the list is `*` or names an entity-tag whose opaque part equals the stored one's. A list that
// can't be read matches nothing.
bool ifNoneMatchMatches(absl::string_view if_none_match, absl::string_view etag);

}  // namespace Cache
}  // namespace Extensions
}  // namespace sluice
