#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

namespace sluice {
namespace Tracing {

// W3C Trace Context (https://www.w3.org/TR/trace-context/), the `traceparent` header:
// `00-<trace-id: 32 hex>-<parent-id: 16 hex>-<trace-flags: 2 hex>`.
struct TraceParent {
  std::array<char, 32> trace_id;  // lowercase hex, not all zeros
  std::array<char, 16> span_id;   // lowercase hex, not all zeros
  uint8_t flags = 0;              // bit 0: sampled

  bool sampled() const { return (flags & 1) != 0; }
  absl::string_view traceId() const { return {trace_id.data(), trace_id.size()}; }
  absl::string_view spanId() const { return {span_id.data(), span_id.size()}; }
  // `00-<trace-id>-<span-id>-<flags>` (version 00, whatever version was parsed).
  std::string format() const;
};

// Parses a traceparent value by the spec's rules: version 00 is exactly 55 characters; a
// higher version (never ff) may carry more after a '-', which is ignored; ids are lowercase
// hex and not all zeros; flags other than `sampled` are kept as they came. nullopt: invalid
// (the caller then starts a new trace, and drops tracestate with it).
absl::optional<TraceParent> parseTraceParent(absl::string_view value);

// `n` random bytes of `rng` as 2n lowercase hex digits into `out`, redrawn if all zero.
template <class Rng>
void randomHexId(Rng& rng, char* out, size_t hex_len) {
  static constexpr char kHex[] = "0123456789abcdef";
  bool zero = true;
  while (zero) {
    for (size_t i = 0; i < hex_len; i += 16) {
      uint64_t r = rng();
      for (size_t j = i; j < i + 16 && j < hex_len; ++j) {
        out[j] = kHex[r & 0xf];
        zero &= (r & 0xf) == 0;
        r >>= 4;
      }
    }
  }
}

}  // namespace Tracing
}  // namespace sluice
