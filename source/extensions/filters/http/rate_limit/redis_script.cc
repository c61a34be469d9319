#include "source/extensions/filters/http/rate_limit/redis_script.h"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace sluice {
namespace Extensions {
namespace RateLimit {

// KEYS[i]: the hash of window i (field: bucket index, value: requests counted in it).
// ARGV[1]: older buckets counted with the current one (0 = fixed window) by the windows of
// fixed length; calendar windows are always fixed.
// ARGV[2i], ARGV[2i+1]: window i's bucket length (ms; -1 a calendar month, -2 a calendar year,
// UTC) and limit.
// A request is counted in every window only if every window has room, so a rejected request
// costs nothing. Returns {allowed, then per window: count before, reset ms, retry ms}; reset and
// retry are capped at the window (g * older buckets, or g for a fixed window; 31 or 366 days for
// calendar windows), like LOCAL's.
const std::string& scriptText() {
  static const std::string text = R"lua(-- sluice rate_limit v3 (Redis >= 5: TIME in a script)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local older_all = tonumber(ARGV[1])
local DAY = 86400000
-- Howard Hinnant's civil_from_days / days_from_civil, as policy.cc computes them.
local function civil(days)
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m
end
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = m > 2 and m - 3 or m + 9
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end
local function bucket_of(g, ms)
  if g > 0 then return math.floor(ms / g) end
  local y, m = civil(math.floor(ms / DAY))
  if g == -1 then return (y - 1970) * 12 + m - 1 end
  return y - 1970
end
local function bucket_end(g, k)
  if g > 0 then return (k + 1) * g end
  if g == -1 then
    local n = k + 1
    local y = 1970 + math.floor(n / 12)
    return days_from_civil(y, n - (y - 1970) * 12 + 1, 1) * DAY
  end
  return days_from_civil(1970 + k + 1, 1, 1) * DAY
end
local allowed = 1
local w = {}
for i = 1, #KEYS do
  local g = tonumber(ARGV[2 * i])
  local limit = tonumber(ARGV[2 * i + 1])
  local older = g > 0 and older_all or 0
  local k = bucket_of(g, now)
  local window = g * math.max(older, 1)
  if g == -1 then window = 31 * DAY elseif g == -2 then window = 366 * DAY end
  local raw = redis.call('HGETALL', KEYS[i])
  local b = {}
  local stale = {}
  local n = 0
  for j = 1, #raw, 2 do
    local idx = tonumber(raw[j])
    if idx < k - older then
      stale[#stale + 1] = raw[j]
    else
      local c = tonumber(raw[j + 1])
      n = n + c
      b[#b + 1] = {idx, c}
    end
  end
  if #stale > 0 then redis.call('HDEL', KEYS[i], unpack(stale)) end
  table.sort(b, function(x, y) return x[1] < y[1] end)
  local retry = 0
  if n >= limit then
    allowed = 0
    local need = n - limit + 1
    local freed = 0
    for j = 1, #b do
      freed = freed + b[j][2]
      if freed >= need then
        retry = math.min(bucket_end(g, b[j][1] + older) - now, window)
        break
      end
    end
  end
  w[i] = {g, k, n, retry, b, window, older}
end
local out = {allowed}
for i = 1, #KEYS do
  local g, k, n, retry, b, window, older = unpack(w[i])
  if allowed == 1 then
    redis.call('HINCRBY', KEYS[i], k, 1)
    redis.call('PEXPIRE', KEYS[i], bucket_end(g, k + older) - now + 1000)
  end
  local oldest = k
  if #b > 0 and b[1][1] < k then oldest = b[1][1] end
  out[#out + 1] = n
  out[#out + 1] = math.min(bucket_end(g, oldest + older) - now, window)
  out[#out + 1] = retry
end
return out
)lua";
  return text;
}

const std::string& scriptSha1() {
  static const std::string sha = [] {
    unsigned char digest[SHA_DIGEST_LENGTH];
    const std::string& s = scriptText();
    SHA1(reinterpret_cast<const unsigned char*>(s.data()), s.size(), digest);
    return absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(digest), SHA_DIGEST_LENGTH));
  }();
  return sha;
}

std::string redisKey(const CompiledPolicy& policy, absl::string_view identity,
                     const WindowSpec& window) {
  return absl::StrCat("sluice:rl:{", policy.key_prefix, identity, "}:", window.name);
}

namespace {

// Writes RESP into a buffer sized beforehand (plain stores: std::string::append per piece costs
// more than the rest of the request's Redis work).
class RespWriter {
 public:
  explicit RespWriter(char* p) : p_(p) {}
  void raw(absl::string_view s) {
    memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  void uint(uint64_t v) { p_ = std::to_chars(p_, p_ + 20, v).ptr; }
  // A bulk string: $<length>\r\n<bytes>\r\n.
  void bulk(absl::string_view s) {
    *p_++ = '$';
    uint(s.size());
    raw("\r\n");
    raw(s);
    raw("\r\n");
  }
  char* end() const { return p_; }

 private:
  char* p_;
};

constexpr size_t kBulkOverhead = 1 + 20 + 4;  // $, length, two CRLFs

}  // namespace

std::string scriptCommand(const CompiledPolicy& policy, absl::string_view identity) {
  const size_t n = policy.windows.size();
  const absl::string_view sha = scriptSha1();
  size_t bound = 64 + sha.size() + 3 * kBulkOverhead;
  for (const WindowSpec& w : policy.windows) {
    bound += 3 * kBulkOverhead + 16 + policy.key_prefix.size() + identity.size() +
             w.bucket_ms_text.size() + w.limit_text.size();
  }
  std::string out;
  out.resize(bound);
  RespWriter wr(out.data());
  wr.raw("*");
  wr.uint(4 + 3 * n);
  wr.raw("\r\n$7\r\nEVALSHA\r\n");
  wr.bulk(sha);
  const char count = static_cast<char>('0' + n);  // 1 to 4 windows
  wr.bulk(absl::string_view(&count, 1));
  for (const WindowSpec& w : policy.windows) {
    // redisKey(), written in place.
    const absl::string_view name = w.name;
    wr.raw("$");
    wr.uint(11 + policy.key_prefix.size() + identity.size() + 2 + name.size());
    wr.raw("\r\nsluice:rl:{");
    wr.raw(policy.key_prefix);
    wr.raw(identity);
    wr.raw("}:");
    wr.raw(name);
    wr.raw("\r\n");
  }
  char older[20];
  const auto r = std::to_chars(older, older + sizeof(older), policy.windows.front().older_buckets);
  wr.bulk(absl::string_view(older, r.ptr - older));
  for (const WindowSpec& w : policy.windows) {
    wr.bulk(w.bucket_ms_text);
    wr.bulk(w.limit_text);
  }
  out.resize(wr.end() - out.data());
  return out;
}

bool parseScriptReply(const redisReply& r, const CompiledPolicy& policy, Decision& out,
                      std::string& error) {
  if (r.type == REDIS_REPLY_ERROR) {
    error = std::string(r.str, r.len);
    return false;
  }
  const size_t n = policy.windows.size();
  if (r.type != REDIS_REPLY_ARRAY || r.elements != 1 + 3 * n) {
    error = "unexpected reply to the rate limit script";
    return false;
  }
  for (size_t i = 0; i < r.elements; ++i) {
    if (r.element[i]->type != REDIS_REPLY_INTEGER) {
      error = "unexpected reply to the rate limit script";
      return false;
    }
  }
  out.allowed = r.element[0]->integer == 1;
  out.retry_after_ms = 0;
  out.windows.clear();
  for (size_t i = 0; i < n; ++i) {
    const WindowSpec& w = policy.windows[i];
    const long long before = std::max(0LL, r.element[1 + 3 * i]->integer);
    const uint64_t counted = static_cast<uint64_t>(before) + (out.allowed ? 1 : 0);
    WindowStatus st;
    st.limit = w.limit;
    st.remaining = counted >= w.limit ? 0 : w.limit - counted;
    st.reset_ms = r.element[2 + 3 * i]->integer;
    out.windows.push_back(st);
    out.retry_after_ms = std::max<int64_t>(out.retry_after_ms, r.element[3 + 3 * i]->integer);
  }
  return true;
}

}  // namespace RateLimit
}  // namespace Extensions
}  // namespace sluice
