#include "source/common/http/response_flags.h"

#include "gtest/gtest.h"
#include "source/common/http/codec.h"

namespace sluice {
namespace Http {
namespace {

TEST(ResponseFlagsTest, EmptyWritesNothing) {
  ResponseFlags flags;
  EXPECT_TRUE(flags.empty());
  EXPECT_EQ("", flags.toString());
}

TEST(ResponseFlagsTest, ShortNamesAreEnvoys) {
  const std::pair<ResponseFlag, absl::string_view> names[] = {
      {ResponseFlag::NoRouteFound, "NR"},
      {ResponseFlag::NoClusterFound, "NC"},
      {ResponseFlag::NoHealthyUpstream, "UH"},
      {ResponseFlag::UpstreamOverflow, "UO"},
      {ResponseFlag::UpstreamConnectionFailure, "UF"},
      {ResponseFlag::UpstreamRequestTimeout, "UT"},
      {ResponseFlag::UpstreamProtocolError, "UPE"},
      {ResponseFlag::UpstreamConnectionTermination, "UC"},
      {ResponseFlag::RateLimited, "RL"},
      {ResponseFlag::RateLimitServiceError, "RLSE"},
      {ResponseFlag::UnauthorizedExternalService, "UAEX"},
      {ResponseFlag::RequestTimeout, "RT"},
      {ResponseFlag::StreamIdleTimeout, "SI"},
      {ResponseFlag::DownstreamProtocolError, "DPE"},
      {ResponseFlag::LocalReset, "LR"},
      {ResponseFlag::DownstreamConnectionTermination, "DC"},
  };
  ASSERT_EQ(kResponseFlagCount, static_cast<int>(sizeof(names) / sizeof(names[0])));
  for (const auto& [flag, name] : names) {
    EXPECT_EQ(name, shortName(flag));
    ResponseFlags one;
    one.set(flag);
    EXPECT_TRUE(one.has(flag));
    EXPECT_EQ(name, one.toString());
  }
}

// The cause comes before how the stream ended, whatever order they were set in (today's
// access-log lines: "UT,LR" when a response already started times out upstream).
TEST(ResponseFlagsTest, CauseBeforeReset) {
  ResponseFlags flags;
  flags.set(ResponseFlag::UpstreamRequestTimeout);
  flags.set(ResponseFlag::LocalReset);
  EXPECT_EQ("UT,LR", flags.toString());
  ResponseFlags other;
  other.set(ResponseFlag::DownstreamConnectionTermination);
  other.set(ResponseFlag::RateLimited);
  EXPECT_EQ("RL,DC", other.toString());
  EXPECT_FALSE(other.has(ResponseFlag::LocalReset));
}

TEST(ResponseFlagsTest, SettingTwiceListsOnce) {
  ResponseFlags flags;
  flags.set(ResponseFlag::DownstreamProtocolError);
  flags.set(ResponseFlag::DownstreamProtocolError);
  EXPECT_EQ("DPE", flags.toString());
}

TEST(ResponseFlagsTest, AppendToKeepsPrefix) {
  ResponseFlags flags;
  flags.set(ResponseFlag::UpstreamConnectionFailure);
  std::string out = "flags=";
  flags.appendTo(out);
  EXPECT_EQ("flags=UF", out);
}

TEST(StreamResetReasonTest, RetriableAndNames) {
  EXPECT_TRUE(retriable(StreamResetReason::ConnectionTermination));
  EXPECT_TRUE(retriable(StreamResetReason::ConnectionFailure));
  EXPECT_TRUE(retriable(StreamResetReason::ProtocolError));
  EXPECT_FALSE(retriable(StreamResetReason::LocalReset));
  EXPECT_FALSE(retriable(StreamResetReason::Overflow));
  static_assert(retriable(StreamResetReason::ConnectionTermination), "usable at compile time");
  EXPECT_EQ("protocol error", resetReasonName(StreamResetReason::ProtocolError));
  EXPECT_EQ("local reset", resetReasonName(StreamResetReason::LocalReset));
}

}  // namespace
}  // namespace Http
}  // namespace sluice
