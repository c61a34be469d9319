#include "source/common/http/headers.h"

#include "gtest/gtest.h"

namespace sluice {
namespace Http {
namespace {

TEST(HeaderMapTest, AddFindGetCount) {
  HeaderMap h;
  h.add("a", "1");
  h.add("b", "2");
  h.add("a", "3");
  EXPECT_EQ(3u, h.size());
  EXPECT_EQ("1", h.get("a"));
  EXPECT_EQ(2u, h.count("a"));
  EXPECT_TRUE(h.has("b"));
  EXPECT_FALSE(h.has("c"));
  EXPECT_EQ("", h.get("c"));
  EXPECT_EQ(nullptr, h.find("c"));
  EXPECT_EQ(6u, h.byteSize());
}

TEST(HeaderMapTest, SetReplacesEveryValue) {
  HeaderMap h;
  h.add("a", "1");
  h.add("b", "2");
  h.add("a", "3");
  h.set("a", "x");
  ASSERT_EQ(2u, h.size());
  EXPECT_EQ("a", h.entries()[0].key);
  EXPECT_EQ("x", h.entries()[0].value);
  EXPECT_EQ(1u, h.count("a"));
  h.set("new", "v");
  EXPECT_EQ("v", h.get("new"));
}

TEST(HeaderMapTest, Remove) {
  HeaderMap h;
  h.add("a", "1");
  h.add("b", "2");
  h.add("a", "3");
  EXPECT_EQ(2u, h.remove("a"));
  EXPECT_EQ(1u, h.size());
  EXPECT_EQ(0u, h.remove("a"));
}

TEST(RequestHeaderMapTest, PathAndQuery) {
  RequestHeaderMap h;
  h.path = "/a/b?x=1&y=2";
  EXPECT_EQ("/a/b", h.pathOnly());
  EXPECT_EQ("x=1&y=2", h.query());
  h.path = "/plain";
  EXPECT_EQ("/plain", h.pathOnly());
  EXPECT_EQ("", h.query());
  h.add("host", "example.com");
  EXPECT_EQ("example.com", h.host());
}

TEST(HopByHopTest, RemovesStandardAndNamedHeaders) {
  HeaderMap h;
  h.add("connection", "keep-alive, X-Custom-Hop, Close");
  h.add("keep-alive", "timeout=5");
  h.add("proxy-connection", "keep-alive");
  h.add("te", "trailers");
  h.add("transfer-encoding", "chunked");
  h.add("upgrade", "websocket");
  h.add("trailer", "x");
  h.add("x-custom-hop", "1");
  h.add("x-keep", "yes");
  EXPECT_TRUE(removeHopByHopHeaders(h));
  ASSERT_EQ(1u, h.size());
  EXPECT_EQ("x-keep", h.entries()[0].key);
}

TEST(HopByHopTest, NoCloseOption) {
  HeaderMap h;
  h.add("connection", "keep-alive");
  h.add("a", "b");
  EXPECT_FALSE(removeHopByHopHeaders(h));
  EXPECT_EQ(1u, h.size());
}

TEST(HeaderCharsTest, TokenAndValueChars) {
  for (char c : std::string("abcXYZ019!#$%&'*+-.^_`|~")) {
    EXPECT_TRUE(isTokenChar(c)) << c;
  }
  for (char c : std::string(" :\t\"(),/;<=>?@[\\]{}")) {
    EXPECT_FALSE(isTokenChar(c)) << c;
  }
  EXPECT_FALSE(isTokenChar(0x80));
  EXPECT_TRUE(isValidHeaderValue("visible text\twith tab \x80\xff"));
  EXPECT_FALSE(isValidHeaderValue(std::string("nul\0", 4)));
  EXPECT_FALSE(isValidHeaderValue("cr\r"));
  EXPECT_FALSE(isValidHeaderValue("lf\n"));
  EXPECT_FALSE(isValidHeaderValue("del\x7f"));
  EXPECT_TRUE(isValidHeaderValue(""));
}

TEST(HeaderCharsTest, ToLowerInPlaceMatchesBytewiseAndFindsUnderscores) {
  // Every byte value at every position of strings long enough for the 8-byte path and its tail.
  for (size_t len : {1u, 7u, 8u, 9u, 16u, 23u}) {
    for (int c = 0; c < 256; ++c) {
      for (size_t pos = 0; pos < len; ++pos) {
        std::string s(len, 'Q');
        s[pos] = static_cast<char>(c);
        std::string expected = s;
        for (char& e : expected) {
          if (e >= 'A' && e <= 'Z') e = static_cast<char>(e + 32);
        }
        const bool underscore = toLowerInPlace(s);
        ASSERT_EQ(expected, s) << "byte " << c << " at " << pos << " of " << len;
        ASSERT_EQ(c == '_', underscore) << "byte " << c << " at " << pos << " of " << len;
      }
    }
  }
  std::string name = "X-Consumer_Username-And-More";
  EXPECT_TRUE(toLowerInPlace(name));
  EXPECT_EQ("x-consumer_username-and-more", name);
}

TEST(HeaderCharsTest, Authority) {
  for (const char* ok : {"api.example.com", "api.example.com:8443", "127.0.0.1", "[::1]",
                         "[::1]:80", "a_b.example", "xn--bcher-kva.example", "h:0"}) {
    EXPECT_TRUE(isValidAuthority(ok)) << ok;
  }
  for (const char* bad : {"", "evil.test/../admin", "a b", "user@host", "h?x", "h#x", "..", "a..b",
                          "h:port", "[::1", "[::1]x", "h:123456", "a\\b", "h:", "[]", "a:1:2"}) {
    EXPECT_FALSE(isValidAuthority(bad)) << bad;
  }
}

TEST(HeaderCharsTest, ConnectionCannotNominateProtectedHeaders) {
  HeaderMap h;
  h.add("host", "a");
  h.add("content-length", "3");
  h.add("x-request-id", "r");
  h.add("x-forwarded-for", "1.2.3.4");
  h.add("x-drop", "1");
  h.add("connection", "Host, content-length, X-Request-Id, x-forwarded-for, x-drop, close");
  EXPECT_TRUE(removeHopByHopHeaders(h));
  EXPECT_TRUE(h.has("host"));
  EXPECT_TRUE(h.has("content-length"));
  EXPECT_TRUE(h.has("x-request-id"));
  EXPECT_TRUE(h.has("x-forwarded-for"));
  EXPECT_FALSE(h.has("x-drop"));
  EXPECT_FALSE(h.has("connection"));
  EXPECT_TRUE(isForbiddenTrailer("content-length"));
  EXPECT_TRUE(isForbiddenTrailer("authorization"));
  EXPECT_FALSE(isForbiddenTrailer("grpc-status"));
}

}  // namespace
}  // namespace Http
}  // namespace sluice
