#pragma once

#include "absl/strings/string_view.h"

namespace sluice {
namespace Network {

// An IPv4 or IPv6 literal (IPv6 with or without brackets).
bool isIpLiteral(absl::string_view host);

// A host name as RFC 1123 allows: dot-separated labels of letters, digits and inner hyphens,
// each 1-63 characters, at most 253 in all (a trailing dot is allowed), the last label not all
// digits (so "10.0.0.256" is a bad address, not a name).
bool isValidHostName(absl::string_view name);

}  // namespace Network
}  // namespace sluice
