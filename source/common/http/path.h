#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace sluice {
namespace Http {
namespace Path {

// What to do with a path that contains %2F or %5C (an encoded '/' or '\'). Mirrors the
// listener's `path_with_escaped_slashes_action`.
enum class EscapedSlashesAction : uint8_t {
  RejectRequest,        // 400
  KeepUnchanged,        // forwarded (and routed) as %2F / %5C
  UnescapeAndForward,   // decoded to '/' before routing and forwarding
  UnescapeAndRedirect,  // decoded; the client is redirected (307) to the decoded path
};

struct NormalizeOptions {
  // RFC 3986 6.2.2: decode percent-encoded unreserved characters, upper-case the hex digits of
  // the rest, remove dot segments.
  bool normalize = true;
  // Collapse runs of '/' into one.
  bool merge_slashes = true;
  EscapedSlashesAction escaped_slashes = EscapedSlashesAction::RejectRequest;
};

enum class Result : uint8_t {
  Unchanged,  // nothing to do; `target` untouched
  Changed,    // `target` holds the normalised request target
  Redirect,   // `target` holds the normalised target; answer with a redirect to it
  Reject,     // invalid; `error` says why (400)
};

// Normalises the path of an origin-form request target ("/path?query") in place, before it is
// routed: the path a route matched is the path sent upstream, so no encoding can make the
// upstream see a different resource than the one the route (and its auth policy) was chosen
// for. The query is kept byte for byte; a fragment is dropped. Backslashes, %00 and broken
// percent-encodings are rejected. The cost is one scan of the path when it contains no '%',
// '\', '#', "//" or "/.", which is the common case.
Result normalize(std::string& target, const NormalizeOptions& options, absl::string_view& error);

// The RFC 3986 5.2.4 "remove_dot_segments" of an absolute path (starting with '/').
std::string removeDotSegments(absl::string_view path);

// The value of a hex digit, or -1.
int hexValue(char c);
// An RFC 3986 unreserved character (ALPHA / DIGIT / "-" / "." / "_" / "~").
bool isUnreserved(unsigned char c);
// Appends `c` percent-encoded, with upper-case hex digits (RFC 3986 2.1).
void appendPercentEncoded(std::string& out, unsigned char c);

}  // namespace Path
}  // namespace Http
}  // namespace sluice
