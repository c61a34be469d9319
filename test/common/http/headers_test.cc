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

}  // namespace
}  // namespace Http
}  // namespace sluice
