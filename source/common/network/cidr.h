#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sluice {
namespace Network {

// An IP address as 16 bytes: IPv4 as its IPv4-mapped IPv6 form (::ffff:a.b.c.d), so one
// comparison serves both families and a client that reached a dual-stack socket as
// ::ffff:10.0.0.1 matches 10.0.0.0/8.
using IpBytes = std::array<uint8_t, 16>;
bool parseIp(absl::string_view text, IpBytes& out);

// An address range: `10.0.0.0/8`, `2001:db8::/32`, or one address (`192.0.2.7`, `::1`).
struct CidrRange {
  IpBytes base{};             // with the bits past the prefix cleared
  uint32_t prefix_len = 128;  // in the 16-byte form (an IPv4 /8 is 104)
  bool contains(const IpBytes& ip) const;
  // `text` as written; errors say what is wrong ("prefix length 33 is over 32").
  static absl::StatusOr<CidrRange> parse(absl::string_view text);
};

// A list of ranges, matched in order (a handful per filter: a linear scan of 16-byte compares).
class CidrSet {
 public:
  void add(const CidrRange& range) { ranges_.push_back(range); }
  bool empty() const { return ranges_.empty(); }
  bool contains(const IpBytes& ip) const;

 private:
  std::vector<CidrRange> ranges_;
};

}  // namespace Network
}  // namespace sluice
