#include "source/extensions/filters/http/cache/cache_control.h"

#include <cstring>
#include <random>
#include <string>

#include "gtest/gtest.h"

namespace sluice {
namespace Extensions {
namespace Cache {
namespace {

TEST(CacheControlTest, RequestDirectives) {
  RequestCacheControl cc = parseRequestCacheControl(
      "No-Cache, no-store, max-age=5, min-fresh=10, max-stale=20, only-if-cached, x-other=1");
  EXPECT_TRUE(cc.no_cache);
  EXPECT_TRUE(cc.no_store);
  EXPECT_TRUE(cc.only_if_cached);
  EXPECT_EQ(5, cc.max_age.value());
  EXPECT_EQ(10, cc.min_fresh.value());
  EXPECT_EQ(20, cc.max_stale.value());
  EXPECT_FALSE(cc.max_stale_any);

  cc = parseRequestCacheControl("max-stale");
  EXPECT_TRUE(cc.max_stale_any);
  EXPECT_FALSE(cc.max_stale.has_value());
  cc = parseRequestCacheControl("max-stale, max-stale=3");
  EXPECT_FALSE(cc.max_stale_any);  // a bound wins
  EXPECT_EQ(3, cc.max_stale.value());

  cc = parseRequestCacheControl("");
  EXPECT_FALSE(cc.no_cache || cc.no_store || cc.only_if_cached || cc.max_age || cc.min_fresh);
}

TEST(CacheControlTest, ResponseDirectives) {
  ResponseCacheControl cc = parseResponseCacheControl(
      "public, private, no-cache, no-store, must-revalidate, proxy-revalidate, max-age=1, "
      "s-maxage=2, stale-while-revalidate=3, stale-if-error=4");
  EXPECT_TRUE(cc.is_public && cc.is_private && cc.no_cache && cc.no_store);
  EXPECT_TRUE(cc.must_revalidate && cc.proxy_revalidate);
  EXPECT_EQ(1, *cc.max_age);
  EXPECT_EQ(2, *cc.s_maxage);
  EXPECT_EQ(3, *cc.stale_while_revalidate);
  EXPECT_EQ(4, *cc.stale_if_error);
}

TEST(CacheControlTest, QuotedValuesAndQualifiedForms) {
  // A comma inside a quoted value does not end the directive.
  ResponseCacheControl cc =
      parseResponseCacheControl("private=\"set-cookie, x-a\", max-age=\"30\", no-cache=\"x\"");
  EXPECT_TRUE(cc.is_private);
  EXPECT_TRUE(cc.no_cache);
  EXPECT_EQ(30, *cc.max_age);
  cc = parseResponseCacheControl("x=\"a\\\"b,max-age=1\", max-age=9");
  EXPECT_EQ(9, *cc.max_age);  // the escaped quote stays inside the value
}

TEST(CacheControlTest, DeltaSeconds) {
  EXPECT_EQ(0, *parseResponseCacheControl("max-age=abc").max_age);  // malformed: stale
  EXPECT_EQ(0, *parseResponseCacheControl("max-age").max_age);
  EXPECT_EQ(0, *parseResponseCacheControl("max-age=").max_age);
  EXPECT_EQ(0, *parseResponseCacheControl("max-age=-5").max_age);
  EXPECT_EQ(0, *parseResponseCacheControl("max-age=5s").max_age);
  EXPECT_EQ(kMaxDeltaSeconds,
            *parseResponseCacheControl("max-age=999999999999999999999999999").max_age);
  EXPECT_EQ(2, *parseResponseCacheControl("max-age=7, max-age=2, max-age=5").max_age);
  EXPECT_EQ(60, *parseResponseCacheControl("  ,, max-age = 60 ,").max_age);
  EXPECT_EQ(60, *parseResponseCacheControl("\tMAX-AGE=60").max_age);
  // The larger min-fresh is the stricter one.
  EXPECT_EQ(9, *parseRequestCacheControl("min-fresh=3, min-fresh=9").min_fresh);
}

TEST(CacheControlTest, JoinedHeader) {
  Http::HeaderMap h;
  std::string scratch;
  EXPECT_EQ("", joinedHeader(h, "cache-control", scratch));
  h.add("cache-control", "max-age=5");
  EXPECT_EQ("max-age=5", joinedHeader(h, "cache-control", scratch));
  h.add("x", "y");
  h.add("cache-control", "no-store");
  EXPECT_EQ("max-age=5, no-store", joinedHeader(h, "cache-control", scratch));
  EXPECT_TRUE(parseResponseCacheControl(joinedHeader(h, "cache-control", scratch)).no_store);
}

TEST(HttpDateTest, ThreeFormats) {
  // RFC 9110 5.6.7's example, in each form.
  EXPECT_EQ(784111777, parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT").value());
  EXPECT_EQ(784111777, parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT").value());
  EXPECT_EQ(784111777, parseHttpDate("Sun Nov  6 08:49:37 1994").value());
  EXPECT_EQ(784111777, parseHttpDate("  Sun, 06 Nov 1994 08:49:37 GMT ").value());
  EXPECT_EQ("Sun, 06 Nov 1994 08:49:37 GMT", formatHttpDate(784111777));
  EXPECT_EQ(0, parseHttpDate(formatHttpDate(0)).value());
  EXPECT_EQ(1700000000, parseHttpDate(formatHttpDate(1700000000)).value());
  EXPECT_EQ(951782400, parseHttpDate("Tue, 29 Feb 2000 00:00:00 GMT").value());
}

TEST(HttpDateTest, Invalid) {
  for (const char* bad :
       {"", "0", "-1", "tomorrow", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 32 Nov 1994 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT",
        "Sun, 06 Nov 1994 08:61:37 GMT", "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMTX", "Sunday, 06-Nov-94 08:49:37", "Sun Nov 6 08:49:37 1994",
        "Sun, 31 Feb 1994 08:49:37 GMT\x01", "Sun, 0x Nov 1994 08:49:37 GMT",
        "Fri, 29 Feb 1999 08:49:37 GMT", "Thu, 29 Feb 1900 00:00:00 GMT"}) {
    EXPECT_FALSE(parseHttpDate(bad).has_value()) << bad;
  }
}

TEST(EntityTagTest, IfNoneMatch) {
  EXPECT_TRUE(ifNoneMatchMatches("\"a\"", "\"a\""));
  EXPECT_TRUE(ifNoneMatchMatches("W/\"a\"", "\"a\""));  // weak comparison
  EXPECT_TRUE(ifNoneMatchMatches("\"a\"", "W/\"a\""));
  EXPECT_TRUE(ifNoneMatchMatches("\"x\", W/\"y\" ,\"a\"", "\"a\""));
  EXPECT_TRUE(ifNoneMatchMatches("*", "\"a\""));
  EXPECT_TRUE(ifNoneMatchMatches("*", ""));
  EXPECT_FALSE(ifNoneMatchMatches("\"b\"", "\"a\""));
  EXPECT_FALSE(ifNoneMatchMatches("\"a\"", ""));
  EXPECT_FALSE(ifNoneMatchMatches("a", "a"));  // not entity-tags
  EXPECT_FALSE(ifNoneMatchMatches("\"a", "\"a\""));
  EXPECT_FALSE(ifNoneMatchMatches("", "\"a\""));
  EXPECT_FALSE(ifNoneMatchMatches("\"a,b\"", "\"a\""));
  EXPECT_TRUE(ifNoneMatchMatches("\"a,b\"", "\"a,b\""));
}

// Fuzz-style: hostile strings from a fixed seed (reproducible), built from the bytes that matter
// to the parsers (quotes, backslashes, commas, '=', whitespace, controls, high bytes, digits,
// directive names). Nothing may crash (ASan in `make test-asan`), and what comes out stays in
// range.
TEST(CacheControlFuzzTest, HostileStrings) {
  static const char* kPieces[] = {
      "\"",       "\\",       ",",       "=",      " ",           "\t",        "\r\n",
      "\x00",     "\x7f",     "\xff",    "9",      "99999999999", "-",         "max-age",
      "s-maxage", "no-cache", "private", "public", "max-stale",   "min-fresh", "no-store",
      "W/",       "*",        "GMT",     "Sun, ",  "Nov",         ":",         ";"};
  std::mt19937 rng(20240601);
  std::uniform_int_distribution<int> piece(0, sizeof(kPieces) / sizeof(kPieces[0]) - 1);
  std::uniform_int_distribution<int> len(0, 200);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < 20000; ++i) {
    std::string s;
    const int n = len(rng);
    for (int k = 0; k < n; ++k) {
      if (k % 7 == 3) {
        s.push_back(static_cast<char>(byte(rng)));
      } else {
        const char* p = kPieces[piece(rng)];
        s.append(p, p[0] == '\0' ? 1 : strlen(p));
      }
    }
    const RequestCacheControl rq = parseRequestCacheControl(s);
    const ResponseCacheControl rs = parseResponseCacheControl(s);
    for (const absl::optional<int64_t>& v :
         {rq.max_age, rq.min_fresh, rq.max_stale, rs.max_age, rs.s_maxage,
          rs.stale_while_revalidate, rs.stale_if_error}) {
      if (v) {
        ASSERT_GE(*v, 0) << s;
        ASSERT_LE(*v, kMaxDeltaSeconds) << s;
      }
    }
    const absl::optional<int64_t> d = parseHttpDate(s);
    if (d) ASSERT_EQ(*d, parseHttpDate(formatHttpDate(*d)).value_or(-1)) << s;
    ifNoneMatchMatches(s, "\"a\"");
    ifNoneMatchMatches("\"a\"", s);
  }
  // Large inputs stay linear: a megabyte of quotes, of commas, an unterminated quoted value.
  const std::string quotes(1 << 20, '"');
  const std::string commas(1 << 20, ',');
  const std::string open = "max-age=\"" + std::string(1 << 20, 'x');
  for (const std::string* s : {&quotes, &commas, &open}) {
    EXPECT_FALSE(parseResponseCacheControl(*s).no_store);
    EXPECT_FALSE(parseRequestCacheControl(*s).no_cache);
    EXPECT_FALSE(ifNoneMatchMatches(*s, "\"a\""));
  }
  EXPECT_EQ(0, *parseResponseCacheControl(open).max_age);
}

}  // namespace
}  // namespace Cache
}  // namespace Extensions
}  // namespace sluice
