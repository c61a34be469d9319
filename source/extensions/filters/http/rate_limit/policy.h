#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sluice/config/v1/policy.pb.h"
#include "source/common/config/utility.h"

namespace sluice {
namespace Extensions {
namespace RateLimit {

using PolicyProto = sluice::config::v1::RateLimitPolicy;

// SLIDING_WINDOW splits each window into this many buckets and counts the current bucket plus
// this many older ones (so the counted span is between one window and one window plus a
// bucket: never more than `limit` requests in any span of one window; docs/decisions.md).
constexpr uint32_t kSlidingBuckets = 10;
// Largest limit a window may have.
constexpr uint64_t kMaxLimit = 1000000000;
// Identities longer than this are replaced by their SHA-256 (keys stay bounded).
constexpr size_t kMaxIdentityBytes = 128;

// One configured window with what the request path needs precomputed.
struct WindowSpec {
  // 0 second, 1 minute, 2 hour, 3 day, 4 month, 5 year: the slot in per-key state.
  uint32_t kind = 0;
  const char* name = "";
  int64_t length_ms = 0;
  // Bucket length: the whole window for FIXED_WINDOW, length / kSlidingBuckets for SLIDING.
  int64_t bucket_ms = 0;
  // Older buckets counted with the current one: 0 (FIXED) or kSlidingBuckets (SLIDING).
  uint32_t older_buckets = 0;
  uint64_t limit = 0;
  std::string limit_text;             // "100"
  std::string kong_limit_header;      // "x-ratelimit-limit-minute"
  std::string kong_remaining_header;  // "x-ratelimit-remaining-minute"
  std::string ietf_name;              // "\"per-ip\"" (one window) or "\"per-ip-minute\""
  std::string bucket_ms_text;         // Redis script arguments
  // Calendar windows (month, year, UTC): buckets are calendar periods of varying length;
  // bucket_ms is then -1 (month) or -2 (year), as the Redis script takes it, and length_ms
  // the longest period (31 or 366 days), for caps.
  bool calendar() const { return bucket_ms < 0; }

  // The bucket `now_ms` falls in: now / bucket length, or the calendar period's index (months
  // or years since 1970).
  int64_t bucketOf(int64_t now_ms) const {
    return calendar() ? calendarBucket(bucket_ms, now_ms) : now_ms / bucket_ms;
  }
  // When bucket `k` ends (ms since the epoch).
  int64_t bucketEnd(int64_t k) const {
    return calendar() ? calendarBucketEnd(bucket_ms, k) : (k + 1) * bucket_ms;
  }
  static int64_t calendarBucket(int64_t unit, int64_t now_ms);
  static int64_t calendarBucketEnd(int64_t unit, int64_t k);
};

// Days since 1970-01-01 of a civil date, and back (proleptic Gregorian, UTC).
int64_t daysFromCivil(int64_t y, unsigned m, unsigned d);
void civilFromDays(int64_t days, int64_t& y, unsigned& m);

struct RedisSettings {
  // An IP literal ("localhost" is stored as 127.0.0.1) or a host name, resolved on the worker
  // each time it connects.
  std::string host;
  uint32_t port = 6379;
  std::string password;
  uint32_t database = 0;
  std::chrono::milliseconds timeout{50};
  // Connections are shared per distinct (address, database, password): this is the key.
  std::string connection_key;
  std::string address() const;  // "127.0.0.1:6379"
};

// A validated policy, compiled once per config snapshot; immutable and shared by every worker.
struct CompiledPolicy {
  std::string name;
  std::vector<WindowSpec> windows;  // ascending length
  PolicyProto::LimitBy limit_by = PolicyProto::CONSUMER;
  std::string header_name;  // lower case, for limit_by HEADER
  PolicyProto::Algorithm algorithm = PolicyProto::SLIDING_WINDOW;
  bool redis = false;
  RedisSettings redis_settings;
  bool fault_tolerant = true;
  bool hide_client_headers = false;
  PolicyProto::HeaderStyle headers = PolicyProto::BOTH;
  // The whole `RateLimit-Policy` header value.
  std::string ietf_policy_value;
  // Prefix of every counter key: the policy name and the algorithm, so counters survive config
  // pushes that keep both (a changed limit applies to the running counts).
  std::string key_prefix;
};
using CompiledPolicyConstSharedPtr = std::shared_ptr<const CompiledPolicy>;

// Checks every field of `policy` except `name` (required and unique: the caller's job), adding
// each error with its field path under `path`.
void validatePolicy(const PolicyProto& policy, const std::string& path, Config::ErrorList& errors);

// Validates and compiles `policy`.
absl::StatusOr<CompiledPolicyConstSharedPtr> compilePolicy(const PolicyProto& policy,
                                                           const std::string& path);

// Replaces `identity` by "sha256:<hex>" of it when it is too long for a key.
void boundIdentity(std::string& identity);

// What one check decided.
struct WindowStatus {
  uint64_t limit = 0;
  uint64_t remaining = 0;  // after this request, floored at 0
  // Milliseconds until the window's count next goes down (the end of a fixed window; for a
  // sliding window, when its oldest counted bucket leaves it), at most the window's length.
  int64_t reset_ms = 0;
};

struct Decision {
  bool allowed = true;
  // When rejected: milliseconds until every full window has room for one more request, each
  // window's wait capped at its length. (A sliding window counts up to one bucket more than a
  // window, so after a burst in the current bucket the exact wait is up to W + W/10; the header
  // says W, and a client that retries then may be told to wait at most W/10 more.)
  int64_t retry_after_ms = 0;
  absl::InlinedVector<WindowStatus, 2> windows;  // in the policy's window order
};

// Whole seconds for a header: rounded up, at least 1.
int64_t headerSeconds(int64_t ms);

}  // namespace RateLimit
}  // namespace Extensions
}  // namespace sluice
