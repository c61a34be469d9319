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
// ARGV[1]: older buckets counted with the current one (0 = fixed window).
// ARGV[2i], ARGV[2i+1]: window i's bucket length (ms) and limit.
// A request is counted in every window only if every window has room, so a rejected request
// costs nothing. Returns {allowed, then per window: count before, reset ms, retry ms}; reset and
// retry are capped at the window (g * older buckets, or g for a fixed window), like LOCAL's.
const std::string& scriptText() {
  static const std::string text = R"lua(-- sluice rate_limit v2 (Redis >= 5: TIME in a script)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local older = tonumber(ARGV[1])
local allowed = 1
local w = {}
for i = 1, #KEYS do
  local g = tonumber(ARGV[2 * i])
  local limit = tonumber(ARGV[2 * i + 1])
  local k = math.floor(now / g)
  local window = g * math.max(older, 1)
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
        retry = math.min((b[j][1] + older + 1) * g - now, window)
        break
      end
    end
  end
  w[i] = {g, k, n, retry, b, window}
end
local out = {allowed}
for i = 1, #KEYS do
  local g, k, n, retry, b, window = w[i][1], w[i][2], w[i][3], w[i][4], w[i][5], w[i][6]
  if allowed == 1 then
    redis.call('HINCRBY', KEYS[i], k, 1)
    redis.call('PEXPIRE', KEYS[i], (k + older + 1) * g - now + 1000)
  end
  local oldest = k
  if #b > 0 and b[1][1] < k then oldest = b[1][1] end
  out[#out + 1] = n
  out[#out + 1] = math.min((oldest + older + 1) * g - now, window)
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
