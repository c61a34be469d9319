#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace sluice {
namespace Http {

struct HeaderEntry {
  std::string key;  // lower case
  std::string value;
};

// Ordered header list (names lower-cased, as HTTP/2 requires). Linear lookups: real requests
// carry a dozen headers, where a vector beats any map.
class HeaderMap {
 public:
  virtual ~HeaderMap() = default;

  // `key` must already be lower case.
  void add(absl::string_view key, absl::string_view value) {
    entries_.push_back(HeaderEntry{std::string(key), std::string(value)});
  }
  void addMove(std::string&& key, std::string&& value) {
    entries_.push_back(HeaderEntry{std::move(key), std::move(value)});
  }
  // Replaces every value of `key` with one.
  void set(absl::string_view key, absl::string_view value);
  const HeaderEntry* find(absl::string_view key) const;
  HeaderEntry* find(absl::string_view key);
  // Value of the first `key`, or empty.
  absl::string_view get(absl::string_view key) const {
    const HeaderEntry* e = find(key);
    return e ? absl::string_view(e->value) : absl::string_view();
  }
  bool has(absl::string_view key) const { return find(key) != nullptr; }
  size_t count(absl::string_view key) const;
  size_t remove(absl::string_view key);
  template <class Pred>
  size_t removeIf(Pred&& pred) {
    size_t before = entries_.size();
    entries_.erase(std::remove_if(entries_.begin(), entries_.end(), pred), entries_.end());
    return before - entries_.size();
  }
  size_t size() const { return entries_.size(); }
  const std::vector<HeaderEntry>& entries() const { return entries_; }
  std::vector<HeaderEntry>& entries() { return entries_; }
  size_t byteSize() const;

 private:
  std::vector<HeaderEntry> entries_;
};

class RequestHeaderMap : public HeaderMap {
 public:
  std::string method;
  // Request target as received (origin-form: path + query).
  std::string path;
  // HTTP/1 minor version (0 or 1); 2 for HTTP/2.
  uint8_t http_minor = 1;
  uint8_t http_major = 1;
  // A header name with '_' was received (set by the codec; a request built otherwise says
  // true so that it is checked).
  bool underscore_in_names = true;

  absl::string_view host() const { return get("host"); }
  // The path without the query string.
  absl::string_view pathOnly() const {
    absl::string_view p = path;
    size_t q = p.find('?');
    return q == absl::string_view::npos ? p : p.substr(0, q);
  }
  absl::string_view query() const {
    absl::string_view p = path;
    size_t q = p.find('?');
    return q == absl::string_view::npos ? absl::string_view() : p.substr(q + 1);
  }
};
using RequestHeaderMapPtr = std::unique_ptr<RequestHeaderMap>;

class ResponseHeaderMap : public HeaderMap {
 public:
  uint32_t status = 0;
};
using ResponseHeaderMapPtr = std::unique_ptr<ResponseHeaderMap>;
using HeaderMapPtr = std::unique_ptr<HeaderMap>;

// Case-insensitive comparison of a header value token.
inline bool equalsIgnoreCase(absl::string_view a, absl::string_view b) {
  return absl::EqualsIgnoreCase(a, b);
}

// Removes the hop-by-hop headers of RFC 9110 section 7.6.1, including every header named in
// Connection. Returns true if "close" was among the Connection options.
bool removeHopByHopHeaders(HeaderMap& headers);
// One of the fixed hop-by-hop header names (lower case).
bool isHopByHop(absl::string_view key);
// Headers a Connection option can't remove: the request's routing and framing (Host,
// Content-Length) and what the gateway itself sets (X-Request-Id, X-Forwarded-*).
bool isProtectedFromNomination(absl::string_view key);
// Fields a trailer section must not carry (RFC 9110 6.5.1): framing, routing, authentication,
// request modifiers, response control and content handling. Dropped when received in trailers.
bool isForbiddenTrailer(absl::string_view key);
// A Host header value: uri-host [":" port] (RFC 9110 7.2 / RFC 3986 3.2.2). reg-name
// characters or a bracketed IPv6 literal, no userinfo, no "/", "\", "?", "#", no "..".
bool isValidAuthority(absl::string_view host);

// RFC 9110 token characters (header names).
bool isTokenChar(unsigned char c);
// Visible ASCII, SP, HTAB and obs-text: what a field value may contain.
bool isValidHeaderValue(absl::string_view v);
// A non-empty RFC 9110 token (a header name).
bool isValidToken(absl::string_view v);
// A media type for a Content-Type value: token "/" token, then optional parameters, no
// controls.
bool isValidMediaType(absl::string_view v);
// ASCII lower-casing without a locale. Returns true if `s` contains '_' (found in the same
// pass, for headers_with_underscores_action).
bool toLowerInPlace(std::string& s);

}  // namespace Http
}  // namespace sluice
