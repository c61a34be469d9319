#include "source/common/tracing/trace_context.h"

namespace sluice {
namespace Tracing {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // upper case is invalid in traceparent
}

// `n` lowercase hex digits at `p`, not all zeros.
bool validId(absl::string_view s, size_t p, size_t n) {
  bool nonzero = false;
  for (size_t i = p; i < p + n; ++i) {
    const int v = hexValue(s[i]);
    if (v < 0) return false;
    nonzero |= v != 0;
  }
  return nonzero;
}

}  // namespace

absl::optional<TraceParent> parseTraceParent(absl::string_view v) {
  // version(2) - trace-id(32) - parent-id(16) - flags(2) = 55
  constexpr size_t kLen = 55;
  if (v.size() < kLen) return absl::nullopt;
  const int v0 = hexValue(v[0]);
  const int v1 = hexValue(v[1]);
  if (v0 < 0 || v1 < 0) return absl::nullopt;
  const int version = v0 * 16 + v1;
  if (version == 0xff) return absl::nullopt;
  if (version == 0 && v.size() != kLen) return absl::nullopt;
  if (version != 0 && v.size() > kLen && v[kLen] != '-') return absl::nullopt;
  if (v[2] != '-' || v[35] != '-' || v[52] != '-') return absl::nullopt;
  if (!validId(v, 3, 32) || !validId(v, 36, 16)) return absl::nullopt;
  const int f0 = hexValue(v[53]);
  const int f1 = hexValue(v[54]);
  if (f0 < 0 || f1 < 0) return absl::nullopt;
  TraceParent tp;
  v.copy(tp.trace_id.data(), 32, 3);
  v.copy(tp.span_id.data(), 16, 36);
  tp.flags = static_cast<uint8_t>(f0 * 16 + f1);
  return tp;
}

std::string TraceParent::format() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(55);
  out += "00-";
  out.append(trace_id.data(), trace_id.size());
  out += '-';
  out.append(span_id.data(), span_id.size());
  out += '-';
  out += kHex[flags >> 4];
  out += kHex[flags & 0xf];
  return out;
}

}  // namespace Tracing
}  // namespace sluice
