// The cache filter alone, on fake callbacks that record what it sends: hits from a stored
// response, HEAD, bodies over max_object_bytes, trailers, a waiter whose stream goes away, and
// responses it never took part in.
#include "source/extensions/filters/http/cache/filter.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "source/common/config/utility.h"
#include "source/common/event/dispatcher.h"
#include "source/common/router/config.h"
#include "source/common/stats/stats.h"
#include "test/test_common/filter_callbacks.h"
#include "test/test_common/route_table.h"

namespace sluice {
namespace Extensions {
namespace Cache {
namespace {

// Records the responses the filter sends itself.
class RecordingCallbacks : public Testing::FakeFilterCallbacks {
 public:
  using FakeFilterCallbacks::FakeFilterCallbacks;
  void encodeHeaders(Http::ResponseHeaderMapPtr&& headers, bool end_stream) override {
    sent = std::move(headers);
    sent_end = end_stream;
  }
  void encodeData(Buffer::Instance& data, bool end_stream) override {
    sent_body += data.toString();
    data.drain(data.length());
    sent_end = end_stream;
  }
  Http::ResponseHeaderMapPtr sent;
  std::string sent_body;
  bool sent_end = false;
};

class CacheFilterTest : public testing::Test {
 protected:
  CacheFilterTest() {
    sluice::config::v1::RouteTable rt;
    EXPECT_TRUE(Config::loadFromYaml(R"(
name: t
virtual_hosts:
- name: v
  domains: ["*"]
  routes:
  - name: small
    match: {prefix: /small}
    route: {cluster: c}
    filter_config: {cache: {max_object_bytes: 10}}
  - name: off
    match: {prefix: /off}
    route: {cluster: c}
    filter_config: {cache: {disabled: true}}
  - name: authed
    match: {prefix: /authed}
    route: {cluster: c}
    auth: some-policy
  - name: all
    match: {prefix: /}
    route: {cluster: c}
)",
                                     rt)
                    .ok());
    auto table = Testing::compileRouteTable(rt);
    EXPECT_TRUE(table.ok()) << table.status();
    table_ = *table;
    ConfigProto proto;
    Config::ErrorList errors;
    auto fc = std::make_shared<FilterConfig>();
    fc->config = compileConfig(
        proto, [](absl::string_view f) { return std::string(f); }, errors);
    fc->store = std::make_shared<CacheStore>(CacheStats::create(stats_));
    fc->claim = fc->store->claimCapacity(1 << 20);
    config_ = fc;
  }

  struct Stream {
    std::unique_ptr<RecordingCallbacks> cb;
    std::shared_ptr<CacheFilter> filter;
  };
  Stream stream(const std::string& method, const std::string& path) {
    Stream s;
    s.cb = std::make_unique<RecordingCallbacks>(*dispatcher_);
    s.cb->request.method = method;
    s.cb->request.path = path;
    s.cb->request.add("host", "example.com");
    s.cb->route_entry = table_->route(s.cb->request);
    s.filter = std::make_shared<CacheFilter>(config_);
    s.filter->setDecoderFilterCallbacks(*s.cb);
    s.filter->setEncoderFilterCallbacks(*s.cb);
    return s;
  }
  static Http::ResponseHeaderMap response(uint32_t status = 200) {
    Http::ResponseHeaderMap h;
    h.status = status;
    h.add("content-type", "text/plain");
    return h;
  }
  // A miss fetched and stored: upstream headers and body through the filter.
  void fill(const std::string& path, const std::string& body) {
    Stream s = stream("GET", path);
    ASSERT_EQ(Http::FilterHeadersStatus::Continue, s.filter->decodeHeaders(s.cb->request, true));
    Http::ResponseHeaderMap h = response();
    h.add("set-cookie", "a=1");
    h.add("x-request-id", "upstream-echoed");
    ASSERT_EQ(Http::FilterHeadersStatus::Continue, s.filter->encodeHeaders(h, false));
    EXPECT_EQ("Miss", h.get("x-cache-status"));
    Buffer::OwnedImpl data(body);
    EXPECT_EQ(Http::FilterDataStatus::Continue, s.filter->encodeData(data, true));
    EXPECT_EQ(body, data.toString());  // passed on untouched
    s.filter->onDestroy();
  }
  int64_t stat(const std::string& name) { return stats_.valueOf("cache." + name); }

  Event::DispatcherPtr dispatcher_ = Event::createLibeventDispatcher();
  Stats::Store stats_{1};
  Router::RouteTableConstSharedPtr table_;
  FilterConfigConstSharedPtr config_;
};

TEST_F(CacheFilterTest, HitFromTheStoredResponse) {
  fill("/a", std::string(5000, 'x'));
  Stream s = stream("GET", "/a");
  EXPECT_EQ(Http::FilterHeadersStatus::StopIteration, s.filter->decodeHeaders(s.cb->request, true));
  ASSERT_NE(nullptr, s.cb->sent);
  EXPECT_EQ(200u, s.cb->sent->status);
  EXPECT_EQ("Hit", s.cb->sent->get("x-cache-status"));
  EXPECT_EQ("5000", s.cb->sent->get("content-length"));
  EXPECT_EQ("0", s.cb->sent->get("age"));
  EXPECT_EQ("text/plain", s.cb->sent->get("content-type"));
  EXPECT_FALSE(s.cb->sent->has("set-cookie"));    // never replayed
  EXPECT_FALSE(s.cb->sent->has("x-request-id"));  // each hit gets its own
  EXPECT_TRUE(s.cb->sent->has("date"));
  EXPECT_EQ(std::string(5000, 'x'), s.cb->sent_body);
  EXPECT_TRUE(s.cb->sent_end);
  // Our own response passing back through the filter is left alone.
  EXPECT_EQ(Http::FilterHeadersStatus::Continue, s.filter->encodeHeaders(*s.cb->sent, false));
  EXPECT_EQ(1, stat("hits"));
  EXPECT_EQ(1, stat("misses"));
  EXPECT_EQ(1, stat("stored"));
  EXPECT_EQ(1, stat("entries"));
}

TEST_F(CacheFilterTest, HeadFromAGetEntryHasNoBody) {
  fill("/h", "body");
  Stream s = stream("HEAD", "/h");
  s.filter->decodeHeaders(s.cb->request, true);
  ASSERT_NE(nullptr, s.cb->sent);
  EXPECT_EQ("4", s.cb->sent->get("content-length"));
  EXPECT_TRUE(s.cb->sent_end);
  EXPECT_EQ("", s.cb->sent_body);
}

TEST_F(CacheFilterTest, TooLargeOrTrailersIsNotStored) {
  {
    Stream s = stream("GET", "/small/a");  // max_object_bytes: 10
    s.filter->decodeHeaders(s.cb->request, true);
    Http::ResponseHeaderMap h = response();
    s.filter->encodeHeaders(h, false);
    for (int i = 0; i < 3; ++i) {
      Buffer::OwnedImpl data("12345");
      EXPECT_EQ(Http::FilterDataStatus::Continue, s.filter->encodeData(data, i == 2));
      EXPECT_EQ("12345", data.toString());  // the response streams on whole
    }
    s.filter->onDestroy();
  }
  {
    Stream s = stream("GET", "/t");
    s.filter->decodeHeaders(s.cb->request, true);
    Http::ResponseHeaderMap h = response();
    s.filter->encodeHeaders(h, false);
    Buffer::OwnedImpl data("x");
    s.filter->encodeData(data, false);
    Http::HeaderMap trailers;
    trailers.add("x-t", "1");
    EXPECT_EQ(Http::FilterTrailersStatus::Continue, s.filter->encodeTrailers(trailers));
    s.filter->onDestroy();
  }
  EXPECT_EQ(0, stat("entries"));
  Stream s = stream("GET", "/small/a");
  EXPECT_EQ(Http::FilterHeadersStatus::Continue, s.filter->decodeHeaders(s.cb->request, true));
  EXPECT_EQ(nullptr, s.cb->sent);
  s.filter->onDestroy();
}

TEST_F(CacheFilterTest, DisabledUnknownConsumerAndForeignReplies) {
  {
    Stream s = stream("GET", "/off");
    EXPECT_EQ(Http::FilterHeadersStatus::Continue, s.filter->decodeHeaders(s.cb->request, true));
    Http::ResponseHeaderMap h = response();
    s.filter->encodeHeaders(h, true);
    EXPECT_FALSE(h.has("x-cache-status"));
  }
  {
    // A route with an auth policy and no consumer in the filter state: never cached.
    Stream s = stream("GET", "/authed");
    EXPECT_EQ(Http::FilterHeadersStatus::Continue, s.filter->decodeHeaders(s.cb->request, true));
    Http::ResponseHeaderMap h = response();
    s.filter->encodeHeaders(h, true);
    EXPECT_EQ("Bypass", h.get("x-cache-status"));
  }
  {
    // A reply made before the filter ran (auth's 401): not its business.
    Stream s = stream("GET", "/x");
    Http::ResponseHeaderMap h = response(401);
    EXPECT_EQ(Http::FilterHeadersStatus::Continue, s.filter->encodeHeaders(h, false));
    Buffer::OwnedImpl data("{}");
    EXPECT_EQ(Http::FilterDataStatus::Continue, s.filter->encodeData(data, true));
    EXPECT_FALSE(h.has("x-cache-status"));
  }
  {
    // A local reply after a miss (a failure flag): not stored.
    Stream s = stream("GET", "/fail");
    s.filter->decodeHeaders(s.cb->request, true);
    s.cb->info.addFlag(Http::ResponseFlag::UpstreamConnectionFailure);
    Http::ResponseHeaderMap h = response(200);
    s.filter->encodeHeaders(h, true);
    EXPECT_EQ("Bypass", h.get("x-cache-status"));
    s.filter->onDestroy();
  }
  EXPECT_EQ(0, stat("entries"));
}

TEST_F(CacheFilterTest, WaiterGoneBeforeTheFetchEnds) {
  Stream leader = stream("GET", "/c");
  EXPECT_EQ(Http::FilterHeadersStatus::Continue,
            leader.filter->decodeHeaders(leader.cb->request, true));
  Stream waiter = stream("GET", "/c");
  EXPECT_EQ(Http::FilterHeadersStatus::StopIteration,
            waiter.filter->decodeHeaders(waiter.cb->request, true));
  Stream second = stream("GET", "/c");
  EXPECT_EQ(Http::FilterHeadersStatus::StopIteration,
            second.filter->decodeHeaders(second.cb->request, true));
  EXPECT_EQ(2, stat("collapsed_waits"));
  waiter.filter->onDestroy();  // its client went away
  waiter.filter.reset();
  waiter.cb.reset();
  Http::ResponseHeaderMap h = response();
  leader.filter->encodeHeaders(h, false);
  Buffer::OwnedImpl data("shared");
  leader.filter->encodeData(data, true);
  leader.filter->onDestroy();
  // The wake-ups run on the dispatcher: the one still waiting is answered from the store.
  dispatcher_->post([this]() { dispatcher_->exit(); });
  dispatcher_->run();
  ASSERT_NE(nullptr, second.cb->sent);
  EXPECT_EQ("Hit", second.cb->sent->get("x-cache-status"));
  EXPECT_EQ("shared", second.cb->sent_body);
  second.filter->onDestroy();
}

}  // namespace
}  // namespace Cache
}  // namespace Extensions
}  // namespace sluice
