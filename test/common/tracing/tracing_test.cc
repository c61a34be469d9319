#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "source/common/common/json_value.h"
#include "source/common/tracing/span.h"
#include "source/common/tracing/trace_context.h"

namespace sluice {
namespace Tracing {
namespace {

constexpr char kTrace[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kSpan[] = "00f067aa0ba902b7";

TEST(TraceParentTest, ParsesAndFormats) {
  auto tp = parseTraceParent(std::string("00-") + kTrace + "-" + kSpan + "-01");
  ASSERT_TRUE(tp.has_value());
  EXPECT_EQ(tp->traceId(), kTrace);
  EXPECT_EQ(tp->spanId(), kSpan);
  EXPECT_TRUE(tp->sampled());
  EXPECT_EQ(tp->format(), std::string("00-") + kTrace + "-" + kSpan + "-01");
  tp = parseTraceParent(std::string("00-") + kTrace + "-" + kSpan + "-00");
  ASSERT_TRUE(tp.has_value());
  EXPECT_FALSE(tp->sampled());
  // A later version may carry more fields after a '-'; it is read as version 00.
  tp = parseTraceParent(std::string("01-") + kTrace + "-" + kSpan + "-03-more");
  ASSERT_TRUE(tp.has_value());
  EXPECT_EQ(tp->format(), std::string("00-") + kTrace + "-" + kSpan + "-03");
}

TEST(TraceParentTest, RefusesInvalid) {
  const std::string t = kTrace;
  const std::string s = kSpan;
  for (const std::string& bad : std::vector<std::string>{
           "", "00", "00-" + t + "-" + s,
           "00-" + t + "-" + s + "-01-",  // version 00 is exactly 55 characters
           "00-" + t + "-" + s + "-1",
           "ff-" + t + "-" + s + "-01",  // version ff is invalid
           "0g-" + t + "-" + s + "-01", "00-" + std::string(32, '0') + "-" + s + "-01",
           "00-" + t + "-" + std::string(16, '0') + "-01",
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-" + s + "-01", "00_" + t + "-" + s + "-01",
           "00-" + t + "_" + s + "-01", "00-" + t + "-" + s + "_01", "00-" + t + "-" + s + "-0z",
           "01-" + t + "-" + s + "-01x",  // a later version: more only after a '-'
       }) {
    EXPECT_FALSE(parseTraceParent(bad).has_value()) << bad;
  }
}

TEST(TraceParentTest, RandomIdsAreNeverZero) {
  uint64_t calls = 0;
  // An rng that returns 0 first: the id is drawn again.
  auto rng = [&calls]() -> uint64_t { return calls++ == 0 ? 0 : 0x0123456789abcdefULL; };
  char id[16];
  randomHexId(rng, id, sizeof(id));
  EXPECT_NE(std::string(id, 16), std::string(16, '0'));
  std::mt19937_64 gen(1);
  char trace[32];
  randomHexId(gen, trace, sizeof(trace));
  for (char c : trace) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
}

// The member `name` of object `v` (fails the test when absent).
const Json::Value& at(const Json::Value& v, const char* name) {
  const Json::Value* m = v.find(name);
  EXPECT_NE(m, nullptr) << name;
  static const Json::Value null;
  return m != nullptr ? *m : null;
}

TEST(SpanTest, OtlpJson) {
  SpanWriter w(kTrace, kSpan, "", "GET api", 1000, 2500);
  w.attribute("http.request.method", "GET");
  w.attribute("http.response.status_code", int64_t{503});
  const std::string span = w.finish(true);
  const std::string body = encodeExportRequest("edge \"x\"", {span, span});
  auto parsed = Json::parse(body);
  ASSERT_TRUE(parsed.ok()) << body;
  const Json::Value& rs = at(*parsed, "resourceSpans").items().at(0);
  const Json::Value& service = at(at(rs, "resource"), "attributes").items().at(0);
  EXPECT_EQ(at(service, "key").str(), "service.name");
  EXPECT_EQ(at(at(service, "value"), "stringValue").str(), "edge \"x\"");
  const Json::Value& spans = at(at(rs, "scopeSpans").items().at(0), "spans");
  ASSERT_EQ(spans.items().size(), 2u);
  const Json::Value& s = spans.items()[0];
  EXPECT_EQ(at(s, "traceId").str(), kTrace);
  EXPECT_EQ(at(s, "spanId").str(), kSpan);
  EXPECT_EQ(s.find("parentSpanId"), nullptr);
  EXPECT_EQ(at(s, "name").str(), "GET api");
  EXPECT_EQ(at(s, "startTimeUnixNano").str(), "1000");
  EXPECT_EQ(at(s, "endTimeUnixNano").str(), "2500");
  EXPECT_EQ(at(s, "kind").str(), "2");
  EXPECT_EQ(at(at(s, "status"), "code").str(), "2");
  const Json::Value& code = at(s, "attributes").items().at(1);
  EXPECT_EQ(at(at(code, "value"), "intValue").str(), "503");
  // With a parent, and without an error: no status.
  SpanWriter child(kTrace, kSpan, "0123456789abcdef", "GET", 1, 2);
  auto c = Json::parse(child.finish(false));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(at(*c, "parentSpanId").str(), "0123456789abcdef");
  EXPECT_EQ(c->find("status"), nullptr);
}

TEST(SpanTest, WhatAPeerSentStaysValidJson) {
  // A user agent or host with quotes, control characters and bytes that are not UTF-8.
  const std::string hostile = std::string("curl \"x\"\\\n\x01 caf\xc3\xa9 \xff\xfe end", 24);
  SpanWriter w(kTrace, kSpan, "", "GET \xff", 1, 2);
  w.attribute("user_agent.original", hostile);
  const std::string body = encodeExportRequest("sluice", {w.finish(false)});
  auto parsed = Json::parse(body);
  ASSERT_TRUE(parsed.ok()) << body;
  const Json::Value& s =
      at(at(at(*parsed, "resourceSpans").items().at(0), "scopeSpans").items().at(0), "spans")
          .items()
          .at(0);
  EXPECT_EQ(at(s, "name").str(), "GET \xef\xbf\xbd");
  const Json::Value& ua = at(s, "attributes").items().at(0);
  EXPECT_EQ(at(at(ua, "value"), "stringValue").str(),
            "curl \"x\"\\\n\x01 caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd end");
}

}  // namespace
}  // namespace Tracing
}  // namespace sluice
