#include "source/extensions/filters/http/cache/config.h"

#include <string>

#include "gtest/gtest.h"
#include "source/common/config/utility.h"
#include "source/extensions/filters/http/cache/key.h"

namespace sluice {
namespace Extensions {
namespace Cache {
namespace {

CacheConfigConstSharedPtr compile(const std::string& yaml, std::string* error = nullptr) {
  ConfigProto proto;
  absl::Status s = Config::loadFromYaml(yaml, proto);
  EXPECT_TRUE(s.ok()) << s;
  Config::ErrorList errors;
  CacheConfigConstSharedPtr c = compileConfig(
      proto, [](absl::string_view f) { return std::string(f); }, errors);
  if (error != nullptr) *error = std::string(errors.status().message());
  return c;
}

TEST(CacheConfigTest, KongDefaults) {
  CacheConfigConstSharedPtr c = compile("{}");
  ASSERT_NE(nullptr, c);
  EXPECT_TRUE(c->cacheableStatus(200));
  EXPECT_TRUE(c->cacheableStatus(301));
  EXPECT_TRUE(c->cacheableStatus(404));
  EXPECT_FALSE(c->cacheableStatus(302));
  EXPECT_FALSE(c->cacheableStatus(5000));
  EXPECT_TRUE(c->get && c->head);
  EXPECT_EQ(std::chrono::milliseconds(300000), c->cache_ttl);
  EXPECT_FALSE(c->cache_control);
  EXPECT_EQ(64u << 20, c->max_bytes);
  EXPECT_EQ(1u << 20, c->max_object_bytes);
  EXPECT_EQ(0, c->stale_while_revalidate.count());
  EXPECT_EQ(0, c->stale_if_error.count());
  EXPECT_FALSE(c->expose_cache_key);
  EXPECT_TRUE(contentTypeMatches(c->content_types, "text/plain"));
  EXPECT_TRUE(contentTypeMatches(c->content_types, "application/json"));
  EXPECT_FALSE(contentTypeMatches(c->content_types, "text/html"));
}

TEST(CacheConfigTest, Fields) {
  CacheConfigConstSharedPtr c = compile(R"(
response_code: [200, 410]
request_method: [GET]
cache_ttl: 10s
cache_control: true
vary_headers: [X-Tenant, x-tenant, Accept]
vary_query_params: [page]
ignore_uri_case: true
max_bytes: 1000000
max_object_bytes: 1000
stale_while_revalidate: 5s
stale_if_error: 1m
expose_cache_key: true
collapse_timeout: 0s
collapse_max_waiters: 7
)");
  ASSERT_NE(nullptr, c);
  EXPECT_TRUE(c->cacheableStatus(410));
  EXPECT_FALSE(c->cacheableStatus(404));
  EXPECT_TRUE(c->get);
  EXPECT_FALSE(c->head);
  EXPECT_EQ(std::chrono::milliseconds(10000), c->cache_ttl);
  EXPECT_EQ((std::vector<std::string>{"x-tenant", "accept"}), c->vary_headers);
  EXPECT_EQ(std::vector<std::string>{"page"}, c->vary_query_params);
  EXPECT_EQ(1000000u, c->max_bytes);
  EXPECT_EQ(1000u, c->max_object_bytes);
  EXPECT_EQ(std::chrono::milliseconds(60000), c->stale_if_error);
  EXPECT_EQ(0, c->collapse_timeout.count());
  EXPECT_EQ(7u, c->collapse_max_waiters);
}

TEST(CacheConfigTest, Errors) {
  std::string error;
  EXPECT_EQ(nullptr, compile("request_method: [GET, PUT, Get]\nresponse_code: [99, 206]\n"
                             "content_type: ['/x', 'a/b; c']\ncache_ttl: 0s\n"
                             "max_object_bytes: 2000000000\nvary_query_params: ['a&b']",
                             &error));
  for (const char* e :
       {"request_method[1]: \"PUT\" is not cached", "request_method[2]: unknown method \"Get\"",
        "response_code[0]: 99 is not between 100 and 900", "response_code[1]: 206",
        "content_type[0]", "content_type[1]", "cache_ttl: must be greater than 0",
        "max_object_bytes: must be <= 1073741824", "vary_query_params[0]"}) {
    EXPECT_NE(std::string::npos, error.find(e)) << e << " in " << error;
  }
}

TEST(CacheConfigTest, ContentTypesAsKong) {
  std::vector<MediaRange> r;
  for (const char* t : {"text/*", "application/json; charset=utf-8", "*/xml"}) {
    MediaRange m;
    ASSERT_TRUE(parseMediaRange(t, m)) << t;
    r.push_back(m);
  }
  EXPECT_TRUE(contentTypeMatches(r, "text/plain"));
  EXPECT_TRUE(contentTypeMatches(r, "TEXT/HTML; charset=latin1"));  // its parameters: ignored
  EXPECT_TRUE(contentTypeMatches(r, "application/json;charset=UTF-8"));
  EXPECT_TRUE(contentTypeMatches(r, "application/json; q=1; charset=\"utf-8\""));
  EXPECT_FALSE(contentTypeMatches(r, "application/json"));  // the configured charset is missing
  EXPECT_FALSE(contentTypeMatches(r, "application/json; charset=latin1"));
  EXPECT_TRUE(contentTypeMatches(r, "image/xml"));
  EXPECT_FALSE(contentTypeMatches(r, "image/png"));
  for (const char* bad : {"", "text", "/", "text/", "te xt/plain", "text/plain/x", ";", "\x01/a"}) {
    EXPECT_FALSE(contentTypeMatches(r, bad)) << bad;
  }
}

Http::RequestHeaderMap request(const std::string& path, const std::string& host = "Example.com") {
  Http::RequestHeaderMap h;
  h.method = "GET";
  h.path = path;
  h.add("host", host);
  return h;
}

std::string key(const CacheConfig& c, const Http::RequestHeaderMap& h, const std::string& route,
                const std::string& consumer) {
  std::string out;
  appendBaseKey(c, h, route, consumer, out);
  return out;
}

TEST(CacheKeyTest, Parts) {
  CacheConfigConstSharedPtr c = compile("{}");
  const std::string base = key(*c, request("/a?x=1&y=2"), "r", "");
  EXPECT_EQ(base, key(*c, request("/a?y=2&x=1"), "r", ""));                 // query order
  EXPECT_EQ(base, key(*c, request("/a?y=2&&x=1&"), "r", ""));               // empty pairs
  EXPECT_EQ(base, key(*c, request("/a?x=1&y=2", "EXAMPLE.COM"), "r", ""));  // host case
  EXPECT_NE(base, key(*c, request("/a?x=1&y=3"), "r", ""));
  EXPECT_NE(base, key(*c, request("/A?x=1&y=2"), "r", ""));  // path case
  EXPECT_NE(base, key(*c, request("/a?x=1&y=2", "other"), "r", ""));
  EXPECT_NE(base, key(*c, request("/a?x=1&y=2"), "r2", ""));      // route
  EXPECT_NE(base, key(*c, request("/a?x=1&y=2"), "r", "alice"));  // consumer
  // Fields can't run into each other.
  EXPECT_NE(key(*c, request("/a"), "ab", "c"), key(*c, request("/a"), "a", "bc"));
  EXPECT_NE(key(*c, request("/a?b"), "r", ""), key(*c, request("/a%3Fb"), "r", ""));
}

TEST(CacheKeyTest, VaryConfig) {
  CacheConfigConstSharedPtr c =
      compile("vary_query_params: [page, sort]\nvary_headers: [x-a]\nignore_uri_case: true");
  auto h1 = request("/Path?sort=1&utm=x&page=2");
  auto h2 = request("/path?page=2&sort=1&utm=y");
  EXPECT_EQ(key(*c, h1, "r", ""), key(*c, h2, "r", ""));
  h1.add("x-a", "1");
  EXPECT_NE(key(*c, h1, "r", ""), key(*c, h2, "r", ""));
  h2.add("x-a", "1");
  EXPECT_EQ(key(*c, h1, "r", ""), key(*c, h2, "r", ""));
  h1.add("x-a", "2");
  h2.entries().insert(h2.entries().begin(), Http::HeaderEntry{"x-a", "2"});
  EXPECT_EQ(key(*c, h1, "r", ""), key(*c, h2, "r", ""));  // lines sorted
  EXPECT_NE(key(*c, h1, "r", ""), key(*c, request("/path?page=2&sort=1&page=3"), "r", ""));
}

TEST(CacheKeyTest, VaryAndDigest) {
  Http::ResponseHeaderMap r;
  std::vector<std::string> names;
  EXPECT_TRUE(parseVary(r, names));
  EXPECT_TRUE(names.empty());
  r.add("vary", "Accept-Encoding, accept-language");
  r.add("vary", "accept-encoding");
  EXPECT_TRUE(parseVary(r, names));
  EXPECT_EQ((std::vector<std::string>{"accept-encoding", "accept-language"}), names);
  r.add("vary", " * ");
  EXPECT_FALSE(parseVary(r, names));
  EXPECT_EQ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", keyDigest(""));
}

}  // namespace
}  // namespace Cache
}  // namespace Extensions
}  // namespace sluice
