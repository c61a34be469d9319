#include "source/common/grpc/common.h"

#include "gtest/gtest.h"

namespace sluice {
namespace Grpc {
namespace {

using std::chrono::milliseconds;

TEST(GrpcCommonTest, ContentTypes) {
  EXPECT_TRUE(isGrpcContentType("application/grpc"));
  EXPECT_TRUE(isGrpcContentType("application/grpc+proto"));
  EXPECT_TRUE(isGrpcContentType("Application/GRPC+json"));
  EXPECT_TRUE(isGrpcContentType("application/grpc; charset=utf-8"));
  EXPECT_FALSE(isGrpcContentType("application/grpc-web"));
  EXPECT_FALSE(isGrpcContentType("application/grpcx"));
  EXPECT_FALSE(isGrpcContentType("application/json"));
  EXPECT_FALSE(isGrpcContentType(""));

  EXPECT_TRUE(isGrpcWebContentType("application/grpc-web"));
  EXPECT_TRUE(isGrpcWebContentType("application/grpc-web+proto"));
  EXPECT_TRUE(isGrpcWebContentType("application/grpc-web-text"));
  EXPECT_TRUE(isGrpcWebContentType("application/grpc-web-text+proto"));
  EXPECT_FALSE(isGrpcWebContentType("application/grpc"));
  EXPECT_FALSE(isGrpcWebContentType("application/grpc-webx"));
  EXPECT_TRUE(isGrpcWebTextContentType("application/grpc-web-text+proto"));
  EXPECT_FALSE(isGrpcWebTextContentType("application/grpc-web+proto"));

  EXPECT_EQ("+proto", contentTypeSuffix("application/grpc-web+proto"));
  EXPECT_EQ("", contentTypeSuffix("application/grpc-web-text"));
}

TEST(GrpcCommonTest, RequestChecks) {
  Http::RequestHeaderMap h;
  EXPECT_FALSE(isGrpcRequest(h));
  h.add("content-type", "application/grpc");
  EXPECT_TRUE(isGrpcRequest(h));
  EXPECT_FALSE(isGrpcWebRequest(h));
  h.set("content-type", "application/grpc-web-text");
  EXPECT_FALSE(isGrpcRequest(h));
  EXPECT_TRUE(isGrpcWebRequest(h));
}

TEST(GrpcCommonTest, HttpToGrpcStatus) {
  EXPECT_EQ(Status::Ok, httpToGrpcStatus(200));
  EXPECT_EQ(Status::Internal, httpToGrpcStatus(400));
  EXPECT_EQ(Status::Unauthenticated, httpToGrpcStatus(401));
  EXPECT_EQ(Status::PermissionDenied, httpToGrpcStatus(403));
  EXPECT_EQ(Status::Unimplemented, httpToGrpcStatus(404));
  EXPECT_EQ(Status::ResourceExhausted, httpToGrpcStatus(429));
  EXPECT_EQ(Status::Unavailable, httpToGrpcStatus(502));
  EXPECT_EQ(Status::Unavailable, httpToGrpcStatus(503));
  EXPECT_EQ(Status::DeadlineExceeded, httpToGrpcStatus(504));
  EXPECT_EQ(Status::Unknown, httpToGrpcStatus(413));
  EXPECT_EQ(Status::Unknown, httpToGrpcStatus(500));
}

TEST(GrpcCommonTest, LocalReplyStatus) {
  Http::ResponseFlags none;
  EXPECT_EQ(Status::Unimplemented, localReplyStatus(404, none));
  EXPECT_EQ(Status::Unknown, localReplyStatus(200, none));
  Http::ResponseFlags ut;
  ut.set(Http::ResponseFlag::UpstreamRequestTimeout);
  EXPECT_EQ(Status::DeadlineExceeded, localReplyStatus(504, ut));
  Http::ResponseFlags rt;
  rt.set(Http::ResponseFlag::RequestTimeout);
  EXPECT_EQ(Status::DeadlineExceeded, localReplyStatus(408, rt));
  Http::ResponseFlags uf;
  uf.set(Http::ResponseFlag::UpstreamConnectionFailure);
  EXPECT_EQ(Status::Unavailable, localReplyStatus(503, uf));
}

TEST(GrpcCommonTest, ParseStatus) {
  EXPECT_EQ(0u, *parseStatus("0"));
  EXPECT_EQ(14u, *parseStatus("14"));
  EXPECT_EQ(14u, *parseStatus(" 14 "));
  EXPECT_EQ(99u, *parseStatus("99"));
  EXPECT_FALSE(parseStatus("").has_value());
  EXPECT_FALSE(parseStatus("-1").has_value());
  EXPECT_FALSE(parseStatus("1a").has_value());
  EXPECT_FALSE(parseStatus("1234567890").has_value());
}

TEST(GrpcCommonTest, ParseTimeout) {
  EXPECT_EQ(milliseconds(2 * 3600 * 1000), *parseTimeout("2H"));
  EXPECT_EQ(milliseconds(3 * 60 * 1000), *parseTimeout("3M"));
  EXPECT_EQ(milliseconds(5000), *parseTimeout("5S"));
  EXPECT_EQ(milliseconds(250), *parseTimeout("250m"));
  EXPECT_EQ(milliseconds(2), *parseTimeout("1001u"));  // rounded up
  EXPECT_EQ(milliseconds(1), *parseTimeout("1n"));
  EXPECT_EQ(milliseconds(1), *parseTimeout("0m"));  // already expired, not "none"
  EXPECT_EQ(milliseconds(99999999LL * 3600 * 1000), *parseTimeout("99999999H"));
  EXPECT_EQ(milliseconds(12345678), *parseTimeout("12345678m"));
  EXPECT_FALSE(parseTimeout("123456789m").has_value());  // 9 digits
  EXPECT_FALSE(parseTimeout("m").has_value());
  EXPECT_FALSE(parseTimeout("").has_value());
  EXPECT_FALSE(parseTimeout("10").has_value());
  EXPECT_FALSE(parseTimeout("10s").has_value());  // units are case-sensitive
  EXPECT_FALSE(parseTimeout("1.5S").has_value());
  EXPECT_FALSE(parseTimeout("-1S").has_value());
  EXPECT_FALSE(parseTimeout(" 1S").has_value());
}

TEST(GrpcCommonTest, FormatTimeout) {
  EXPECT_EQ("1m", formatTimeout(milliseconds(0)));
  EXPECT_EQ("1500m", formatTimeout(milliseconds(1500)));
  EXPECT_EQ("99999999m", formatTimeout(milliseconds(99999999)));
  EXPECT_EQ("100000S", formatTimeout(milliseconds(100000000)));
  EXPECT_EQ("100001S", formatTimeout(milliseconds(100000001)));
  for (int64_t ms : {1LL, 250LL, 99999999LL, 123456789012LL}) {
    EXPECT_GE(*parseTimeout(formatTimeout(milliseconds(ms))), milliseconds(ms));
  }
}

TEST(GrpcCommonTest, PercentEncoding) {
  EXPECT_EQ("plain text ~!", percentEncodeMessage("plain text ~!"));
  EXPECT_EQ("100%25 done", percentEncodeMessage("100% done"));
  EXPECT_EQ("a%0Ab%0D%7F", percentEncodeMessage("a\nb\r\x7f"));
  EXPECT_EQ("caf%C3%A9", percentEncodeMessage("caf\xc3\xa9"));
  EXPECT_EQ("a\nb%", percentDecodeMessage("a%0ab%"));
  EXPECT_EQ("%zz%4", percentDecodeMessage("%zz%4"));
  for (const char* s : {"", "x", "100% \r\n\xff\x01 ok", "%%%"}) {
    EXPECT_EQ(s, percentDecodeMessage(percentEncodeMessage(s)));
  }
}

TEST(GrpcCommonTest, ServicePath) {
  absl::string_view service, method;
  ASSERT_TRUE(parseServicePath("/helloworld.Greeter/SayHello", &service, &method));
  EXPECT_EQ("helloworld.Greeter", service);
  EXPECT_EQ("SayHello", method);
  EXPECT_FALSE(parseServicePath("/", &service, &method));
  EXPECT_FALSE(parseServicePath("/svc", &service, &method));
  EXPECT_FALSE(parseServicePath("/svc/", &service, &method));
  EXPECT_FALSE(parseServicePath("//m", &service, &method));
  EXPECT_FALSE(parseServicePath("/a/b/c", &service, &method));
  EXPECT_FALSE(parseServicePath("/a/b?x=1", &service, &method));
  EXPECT_FALSE(parseServicePath("a/b", &service, &method));
}

TEST(GrpcCommonTest, TrailersOnlyReply) {
  Http::ResponseHeaderMap h;
  h.status = 404;
  h.add("content-type", "application/json");
  setTrailersOnlyReply(h, 404, Http::ResponseFlags(), "no route matched\n");
  EXPECT_EQ(200u, h.status);
  EXPECT_EQ("application/grpc", h.get("content-type"));
  EXPECT_EQ(1u, h.count("content-type"));
  EXPECT_EQ("12", h.get("grpc-status"));
  EXPECT_EQ("no route matched%0A", h.get("grpc-message"));

  Http::ResponseHeaderMap w;
  setTrailersOnlyReply(w, 503, Http::ResponseFlags(), "", "application/grpc-web-text");
  EXPECT_EQ("application/grpc-web-text", w.get("content-type"));
  EXPECT_EQ("14", w.get("grpc-status"));
  EXPECT_FALSE(w.has("grpc-message"));
}

}  // namespace
}  // namespace Grpc
}  // namespace sluice
