#include "source/common/network/cidr.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace sluice {
namespace Network {

bool parseIp(absl::string_view text, IpBytes& out) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof(buf)) return false;
  memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  if (text.find(':') == absl::string_view::npos) {
    in_addr a;
    if (inet_pton(AF_INET, buf, &a) != 1) return false;
    out.fill(0);
    out[10] = 0xff;
    out[11] = 0xff;
    memcpy(&out[12], &a, 4);
    return true;
  }
  in6_addr a;
  if (inet_pton(AF_INET6, buf, &a) != 1) return false;
  memcpy(out.data(), &a, 16);
  return true;
}

bool CidrRange::contains(const IpBytes& ip) const {
  const uint32_t full = prefix_len / 8;
  if (memcmp(ip.data(), base.data(), full) != 0) return false;
  const uint32_t rest = prefix_len % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (ip[full] & mask) == base[full];
}

absl::StatusOr<CidrRange> CidrRange::parse(absl::string_view text) {
  const size_t slash = text.find('/');
  const absl::string_view ip = text.substr(0, slash);
  CidrRange r;
  if (!parseIp(ip, r.base)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not an IP address or CIDR"));
  }
  const bool v4 = ip.find(':') == absl::string_view::npos;
  const uint32_t max = v4 ? 32 : 128;
  uint32_t len = max;
  if (slash != absl::string_view::npos) {
    const absl::string_view p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3 || !absl::SimpleAtoi(p, &len)) {
      return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": invalid prefix length"));
    }
    if (len > max) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", text, "\": prefix length ", len, " is over ", max));
    }
  }
  r.prefix_len = v4 ? len + 96 : len;
  // Clear the host bits, as nginx and Kong's ipmatcher do (10.1.2.3/8 means 10.0.0.0/8).
  for (uint32_t bit = r.prefix_len; bit < 128; ++bit) {
    r.base[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  }
  return r;
}

bool CidrSet::contains(const IpBytes& ip) const {
  for (const CidrRange& r : ranges_) {
    if (r.contains(ip)) return true;
  }
  return false;
}

}  // namespace Network
}  // namespace sluice
