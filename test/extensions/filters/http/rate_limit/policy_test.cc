#include "source/extensions/filters/http/rate_limit/policy.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/config/utility.h"

namespace sluice {
namespace Extensions {
namespace RateLimit {
namespace {

using testing::HasSubstr;
using testing::Not;

PolicyProto parse(const std::string& yaml) {
  PolicyProto p;
  absl::Status s = Config::loadFromYaml(yaml, p);
  EXPECT_TRUE(s.ok()) << s << "\n" << yaml;
  return p;
}

std::string errorsOf(const std::string& yaml) {
  Config::ErrorList errors;
  validatePolicy(parse(yaml), "rate_limit_policies[0]", errors);
  return std::string(errors.status().message());
}

TEST(PolicyValidationTest, AcceptsTheIssueExample) {
  EXPECT_EQ(errorsOf(R"(
name: per-consumer
second: 10
minute: 100
limit_by: HEADER
header_name: x-tenant
algorithm: SLIDING_WINDOW
policy: REDIS
redis: {host: 127.0.0.1, port: 6379, password: "", database: 0, timeout: 50ms}
fault_tolerant: true
hide_client_headers: false
headers: BOTH
)"),
            "");
}

TEST(PolicyValidationTest, NeedsAWindow) {
  EXPECT_THAT(
      errorsOf("name: a"),
      HasSubstr(
          "rate_limit_policies[0]: needs at least one of second, minute, hour, day, month, year"));
}

TEST(PolicyValidationTest, LimitsAreBoundedAndOrdered) {
  const std::string e = errorsOf("{name: a, second: 100, minute: 50, day: 2000000000}");
  EXPECT_THAT(e, HasSubstr("rate_limit_policies[0].minute: must be >= second (100)"));
  EXPECT_THAT(e, HasSubstr("rate_limit_policies[0].day: must be <= 1000000000"));
  // Equal limits are fine (the longer window then never binds first, but it is not wrong).
  EXPECT_EQ(errorsOf("{name: a, second: 10, minute: 10}"), "");
}

TEST(PolicyValidationTest, HeaderName) {
  EXPECT_THAT(errorsOf("{name: a, second: 1, limit_by: HEADER}"),
              HasSubstr("rate_limit_policies[0].header_name: is required when limit_by is HEADER"));
  EXPECT_THAT(errorsOf("{name: a, second: 1, limit_by: HEADER, header_name: \"x tenant\"}"),
              HasSubstr("rate_limit_policies[0].header_name: \"x tenant\" is not a header name"));
  EXPECT_THAT(errorsOf("{name: a, second: 1, limit_by: IP, header_name: x-tenant}"),
              HasSubstr("rate_limit_policies[0].header_name: is only used with limit_by HEADER"));
}

TEST(PolicyValidationTest, Redis) {
  const std::string e = errorsOf(
      "{name: a, second: 1, policy: REDIS, redis: {host: \"redis internal\", port: 70000, "
      "timeout: 0s}}");
  EXPECT_THAT(e, HasSubstr("rate_limit_policies[0].redis.host: \"redis internal\" is not an IP "
                           "address or a host name"));
  EXPECT_THAT(e, HasSubstr("rate_limit_policies[0].redis.port: must be <= 65535"));
  EXPECT_THAT(e, HasSubstr("rate_limit_policies[0].redis.timeout: must be > 0"));
  EXPECT_THAT(errorsOf("{name: a, second: 1, policy: REDIS, redis: {timeout: 11s}}"),
              HasSubstr("rate_limit_policies[0].redis.timeout: must be <= 10s"));
  EXPECT_EQ(errorsOf("{name: a, second: 1, policy: REDIS, redis: {host: localhost}}"), "");
  // A host name is resolved (asynchronously, on the worker) when connecting.
  EXPECT_EQ(errorsOf("{name: a, second: 1, policy: REDIS, redis: {host: redis.internal}}"), "");
  EXPECT_EQ(errorsOf("{name: a, second: 1, policy: REDIS, redis: {host: \"::1\"}}"), "");
}

TEST(PolicyValidationTest, UnknownEnumNumbers) {
  // The config loader refuses these already; a policy built another way is checked again.
  Config::ErrorList errors;
  PolicyProto p = parse("{name: a, second: 1}");
  p.set_limit_by(static_cast<PolicyProto::LimitBy>(42));
  p.set_algorithm(static_cast<PolicyProto::Algorithm>(7));
  validatePolicy(p, "rate_limit_policies[0]", errors);
  const std::string e(errors.status().message());
  EXPECT_THAT(e, HasSubstr("rate_limit_policies[0].limit_by: unknown value 42"));
  EXPECT_THAT(e, HasSubstr("rate_limit_policies[0].algorithm: unknown value 7"));
  PolicyProto loaded;
  EXPECT_THAT(
      std::string(Config::loadFromYaml("{name: a, second: 1, limit_by: 42}", loaded).message()),
      HasSubstr("limit_by: 42 is not a LimitBy value"));
}

TEST(PolicyCompileTest, Defaults) {
  auto c = compilePolicy(parse("{name: per-ip, minute: 100}"), "p");
  ASSERT_TRUE(c.ok()) << c.status();
  const CompiledPolicy& p = **c;
  EXPECT_EQ(p.limit_by, PolicyProto::CONSUMER);
  EXPECT_EQ(p.algorithm, PolicyProto::SLIDING_WINDOW);
  EXPECT_FALSE(p.redis);
  EXPECT_TRUE(p.fault_tolerant);
  EXPECT_FALSE(p.hide_client_headers);
  EXPECT_EQ(p.headers, PolicyProto::BOTH);
  EXPECT_EQ(p.redis_settings.host, "127.0.0.1");
  EXPECT_EQ(p.redis_settings.port, 6379u);
  EXPECT_EQ(p.redis_settings.timeout.count(), 50);
  ASSERT_EQ(p.windows.size(), 1u);
  const WindowSpec& w = p.windows[0];
  EXPECT_STREQ(w.name, "minute");
  EXPECT_EQ(w.kind, 1u);
  EXPECT_EQ(w.length_ms, 60000);
  EXPECT_EQ(w.bucket_ms, 6000);
  EXPECT_EQ(w.older_buckets, kSlidingBuckets);
  EXPECT_EQ(w.kong_limit_header, "x-ratelimit-limit-minute");
  EXPECT_EQ(w.kong_remaining_header, "x-ratelimit-remaining-minute");
  // One window: the IETF policy item is named after the policy.
  EXPECT_EQ(p.ietf_policy_value, "\"per-ip\";q=100;w=60");
  EXPECT_EQ(p.key_prefix, "per-ip/S/");
}

TEST(PolicyCompileTest, SeveralWindowsFixedAndRedis) {
  auto c = compilePolicy(parse(R"(
{name: "a\"b", second: 5, hour: 1000, algorithm: FIXED_WINDOW, policy: REDIS,
 redis: {host: localhost, port: 6380, database: 2, timeout: 5ms}, fault_tolerant: false}
)"),
                         "p");
  ASSERT_TRUE(c.ok()) << c.status();
  const CompiledPolicy& p = **c;
  ASSERT_EQ(p.windows.size(), 2u);
  EXPECT_EQ(p.windows[0].bucket_ms, 1000);
  EXPECT_EQ(p.windows[0].older_buckets, 0u);
  EXPECT_EQ(p.windows[1].kind, 2u);
  EXPECT_EQ(p.windows[1].bucket_ms, 3600000);
  EXPECT_EQ(p.ietf_policy_value, "\"a\\\"b-second\";q=5;w=1, \"a\\\"b-hour\";q=1000;w=3600");
  EXPECT_TRUE(p.redis);
  EXPECT_FALSE(p.fault_tolerant);
  EXPECT_EQ(p.redis_settings.host, "127.0.0.1");
  EXPECT_EQ(p.redis_settings.address(), "127.0.0.1:6380");
  EXPECT_EQ(p.redis_settings.timeout.count(), 5);
  EXPECT_EQ(p.key_prefix, "a\"b/F/");
}

TEST(PolicyCompileTest, RefusesInvalid) {
  auto c = compilePolicy(parse("{second: 0}"), "p");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("p.name: is required"));
}

TEST(PolicyTest, BoundIdentity) {
  auto bound = [](std::string id) {
    boundIdentity(id);
    return id;
  };
  EXPECT_EQ(bound("ip:10.0.0.1"), "ip:10.0.0.1");
  EXPECT_EQ(bound(std::string(128, 'x')), std::string(128, 'x'));
  const std::string b = bound(std::string(500, 'x'));
  EXPECT_EQ(b.size(), 7u + 64u);
  EXPECT_THAT(b, HasSubstr("sha256:"));
  EXPECT_EQ(b, bound(std::string(500, 'x')));  // stable: gateways sharing Redis agree on keys
  EXPECT_NE(bound(std::string(500, 'y')), b);
}

TEST(PolicyTest, HeaderSeconds) {
  EXPECT_EQ(headerSeconds(0), 1);
  EXPECT_EQ(headerSeconds(1), 1);
  EXPECT_EQ(headerSeconds(1000), 1);
  EXPECT_EQ(headerSeconds(1001), 2);
  EXPECT_EQ(headerSeconds(59999), 60);
}

}  // namespace
}  // namespace RateLimit
}  // namespace Extensions
}  // namespace sluice
