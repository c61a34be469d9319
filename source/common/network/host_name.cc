#include "source/common/network/host_name.h"

#include <arpa/inet.h>

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"

namespace sluice {
namespace Network {

bool isIpLiteral(absl::string_view host) {
  std::string h(host);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  in6_addr buf;
  return inet_pton(AF_INET, h.c_str(), &buf) == 1 || inet_pton(AF_INET6, h.c_str(), &buf) == 1;
}

bool isValidHostName(absl::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return false;
  bool last_all_digits = false;
  for (absl::string_view label : absl::StrSplit(name, '.')) {
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    last_all_digits = true;
    for (char c : label) {
      if (!absl::ascii_isalnum(c) && c != '-') return false;
      last_all_digits = last_all_digits && absl::ascii_isdigit(c);
    }
  }
  return !last_all_digits;
}

}  // namespace Network
}  // namespace sluice
