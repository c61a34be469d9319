#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"

namespace sluice {

// A 64-bit hash that is the same in every process and build (FNV-1a followed by a splitmix64
// finaliser for good bit dispersion): ring-hash load balancing and sticky canary splits use it
// so several gateways send the same key to the same endpoint or side.
inline uint64_t stableHash(absl::string_view data) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  h += 0x9e3779b97f4a7c15ULL;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

}  // namespace sluice
