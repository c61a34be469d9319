// http_log's config: Kong's defaults, every error at its field, Basic auth from user info, the
// sink key that decides which configs share a sink, and the filter in a whole snapshot.
#include "source/extensions/filters/http/http_log/config.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/config/utility.h"

namespace sluice {
namespace Extensions {
namespace HttpLog {
namespace {

using testing::HasSubstr;

absl::StatusOr<LogConfigConstSharedPtr> compile(const std::string& yaml) {
  ConfigProto proto;
  absl::Status s = Config::loadFromYaml(yaml, proto);
  if (!s.ok()) return s;
  Config::ErrorList errors;
  auto c = compileConfig(
      proto, [](absl::string_view f) { return "cfg." + std::string(f); }, true, errors);
  if (!errors.empty()) return errors.status();
  return c;
}

std::string error(const std::string& yaml) {
  auto c = compile(yaml);
  return c.ok() ? "" : std::string(c.status().message());
}

TEST(HttpLogConfigTest, KongDefaults) {
  auto c = compile("http_endpoint: http://collector.example:9000/logs");
  ASSERT_TRUE(c.ok()) << c.status();
  const Http::BatchSinkSettings& s = (*c)->settings;
  EXPECT_FALSE((*c)->disabled);
  EXPECT_EQ("POST", s.method);
  EXPECT_EQ(std::chrono::milliseconds(10000), s.timeout);
  EXPECT_EQ(std::chrono::milliseconds(60000), s.keepalive);
  EXPECT_EQ(10u, s.retry_count);
  EXPECT_EQ(std::chrono::milliseconds(2000), s.flush_timeout);
  EXPECT_EQ(1u, s.queue_size);
  EXPECT_EQ(10000u, s.max_queued_entries);
  EXPECT_EQ(64u * 1024 * 1024, s.max_queued_bytes);
  EXPECT_EQ(std::chrono::milliseconds(1000), s.initial_retry_delay);
  EXPECT_EQ(std::chrono::milliseconds(60000), s.max_retry_delay);
  EXPECT_EQ("collector.example", s.endpoint.host_name);
  ASSERT_EQ(1u, s.headers.size());
  EXPECT_EQ("content-type", s.headers[0].first);
  EXPECT_EQ("application/json", s.headers[0].second);
}

TEST(HttpLogConfigTest, SettingsAndBasicAuth) {
  auto c = compile(R"(
http_endpoint: http://bob:s%40cret@127.0.0.1:9000/logs
method: PATCH
timeout: 2s
keepalive: 0s
retry_count: 0
flush_timeout: 250ms
queue_size: 50
max_queued_entries: 500
max_queued_bytes: 0
headers: {X-Token: abc}
)");
  ASSERT_TRUE(c.ok()) << c.status();
  const Http::BatchSinkSettings& s = (*c)->settings;
  EXPECT_EQ("PATCH", s.method);
  EXPECT_EQ(std::chrono::milliseconds(0), s.keepalive);
  EXPECT_EQ(0u, s.retry_count);
  EXPECT_EQ(50u, s.queue_size);
  EXPECT_EQ(0u, s.max_queued_bytes);
  EXPECT_THAT(s.headers,
              testing::Contains(std::make_pair(std::string("x-token"), std::string("abc"))));
  EXPECT_THAT(s.headers,
              testing::Contains(std::make_pair(std::string("authorization"),
                                               "Basic " + absl::Base64Escape("bob:s@cret"))));
}

TEST(HttpLogConfigTest, ErrorsNameTheirField) {
  EXPECT_EQ("cfg.http_endpoint: is required", error("method: POST"));
  EXPECT_THAT(error("http_endpoint: ftp://x/"), HasSubstr("cfg.http_endpoint: must start with"));
  EXPECT_THAT(error("http_endpoint: http://x/\nmethod: GET"),
              HasSubstr("cfg.method: \"GET\": POST, PUT or PATCH"));
  EXPECT_THAT(error("http_endpoint: http://x/\ncontent_type: text/plain"),
              HasSubstr("cfg.content_type"));
  EXPECT_THAT(error("http_endpoint: http://x/\ntimeout: 0s"), HasSubstr("cfg.timeout: must be"));
  EXPECT_THAT(error("http_endpoint: http://x/\nqueue_size: 0"),
              HasSubstr("cfg.queue_size: must be >= 1"));
  EXPECT_THAT(error("http_endpoint: http://x/\nqueue_size: 20\nmax_queued_entries: 10"),
              HasSubstr("cfg.max_queued_entries: must be >= queue_size (20)"));
  EXPECT_THAT(error("http_endpoint: http://x/\nmax_queued_entries: 2000000"),
              HasSubstr("cfg.max_queued_entries: must be <= 1000000"));
  EXPECT_THAT(error("http_endpoint: http://x/\ninitial_retry_delay: 5s\nmax_retry_delay: 1s"),
              HasSubstr("cfg.max_retry_delay: must be >= initial_retry_delay"));
  for (const char* h : {"Host", "content-length", "Content-Type"}) {
    EXPECT_THAT(error(std::string("http_endpoint: http://x/\nheaders: {") + h + ": v}"),
                HasSubstr(std::string("cfg.headers[\"") + h + "\"]: cannot set"));
  }
  EXPECT_THAT(error("http_endpoint: http://x/\nheaders: {Connection: close}"),
              HasSubstr("hop-by-hop"));
  EXPECT_THAT(error("http_endpoint: http://x/\nheaders: {'bad name': v}"),
              HasSubstr("not a valid header name"));
  EXPECT_THAT(error("http_endpoint: http://u:p@x/\nheaders: {Authorization: v}"),
              HasSubstr("cfg.headers: an Authorization header and user info"));
  EXPECT_THAT(error("http_endpoint: http://x/\nca_file: /etc/hosts"),
              HasSubstr("cfg.ca_file: is for https:// endpoints only"));
  EXPECT_THAT(error("http_endpoint: https://x/\nca_file: /nonexistent/ca.pem"),
              HasSubstr("cfg.ca_file"));
  EXPECT_THAT(error("disabled: true\nqueue_size: 3"),
              HasSubstr("cfg.disabled: a disabled http_log takes no other settings"));
  // Every error at once.
  const std::string all = error("method: GET\nqueue_size: 0");
  EXPECT_THAT(all, HasSubstr("http_endpoint"));
  EXPECT_THAT(all, HasSubstr("method"));
  EXPECT_THAT(all, HasSubstr("queue_size"));
}

TEST(HttpLogConfigTest, DisabledAndSinkKeys) {
  auto d = compile("disabled: true");
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE((*d)->disabled);
  auto a = compile("http_endpoint: http://x:1/logs\nqueue_size: 5");
  auto b = compile("http_endpoint: http://x:1/logs\nqueue_size: 5");
  auto c = compile("http_endpoint: http://x:1/logs\nqueue_size: 6");
  auto u = compile("http_endpoint: http://user:pw@x:1/logs\nqueue_size: 5");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok() && u.ok());
  EXPECT_EQ((*a)->sink_key, (*b)->sink_key);  // shared across config versions
  EXPECT_NE((*a)->sink_key, (*c)->sink_key);
  EXPECT_NE((*a)->sink_key, (*u)->sink_key);
}

TEST(HttpLogConfigTest, HttpsBuildsItsTls) {
  auto c = compile("http_endpoint: https://collector.example/logs");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_NE(nullptr, (*c)->settings.endpoint.tls);
  EXPECT_EQ(443u, (*c)->settings.endpoint.port);
}

}  // namespace
}  // namespace HttpLog
}  // namespace Extensions
}  // namespace sluice
