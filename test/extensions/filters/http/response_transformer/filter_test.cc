#include "source/extensions/filters/http/response_transformer/filter.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "source/common/config/utility.h"
#include "source/common/event/dispatcher.h"
#include "source/common/router/config.h"
#include "source/common/stats/stats.h"
#include "test/test_common/filter_callbacks.h"
#include "test/test_common/route_table.h"

namespace sluice {
namespace Extensions {
namespace ResponseTransformer {
namespace {

RulesConstSharedPtr rules(const std::string& yaml) {
  ConfigProto proto;
  absl::Status s = Config::loadFromYaml(yaml, proto);
  EXPECT_TRUE(s.ok()) << s;
  Config::ErrorList errors;
  RulesConstSharedPtr r = compileRules(
      proto, [](absl::string_view f) { return std::string(f); }, errors);
  EXPECT_TRUE(errors.empty()) << errors.status();
  return r;
}

std::string headerList(const Http::HeaderMap& h) {
  std::string out;
  for (const Http::HeaderEntry& e : h.entries()) absl::StrAppend(&out, e.key, "=", e.value, ";");
  return out;
}

// ---- Header rules alone --------------------------------------------------------------------

TEST(HeaderRulesTest, KongOrderAndMeaning) {
  // Kong's header_transformer spec, case by case.
  Http::HeaderMap h;
  h.add("h1", "value1");
  h.add("h2", "value2a");
  h.add("h2", "value2b");
  applyHeaderRules(*rules("remove: {headers: [h1, H2]}"), h);
  EXPECT_EQ("", headerList(h));

  h = Http::HeaderMap();
  h.add("h1", "v1");
  h.add("h1", "v2");
  h.add("h3", "v3");
  h.add("h2", "old");
  applyHeaderRules(*rules("rename: {headers: ['h1:h2', 'h3:h4', 'absent:h5']}"), h);
  EXPECT_EQ("h2=v1;h2=v2;h4=v3;", headerList(h));  // every line moves; the old h2 goes

  h = Http::HeaderMap();
  h.add("h2", "value2a");
  h.add("h2", "value2b");
  applyHeaderRules(*rules("replace: {headers: ['h1:v1', 'h2:value:2']}"), h);
  EXPECT_EQ("h2=value:2;", headerList(h));  // absent h1 not added; one h2 line

  h = Http::HeaderMap();
  h.add("h1", "v1");
  applyHeaderRules(*rules("add: {headers: ['h1:other', 'h2:v2']}"), h);
  EXPECT_EQ("h1=v1;h2=v2;", headerList(h));

  h = Http::HeaderMap();
  h.add("h1", "v1");
  applyHeaderRules(*rules("append: {headers: ['h1:v2', 'h3:v3']}"), h);
  EXPECT_EQ("h1=v1;h1=v2;h3=v3;", headerList(h));
}

TEST(HeaderRulesTest, EveryRuleTestsTheHeadersAsTheyArrived) {
  // Kong's header_filter reads the headers once (kong.response.get_headers()) and tests each
  // rule against that reading while its changes go to the response.
  Http::HeaderMap h;
  h.add("x-a", "1");
  h.add("x-b", "2");
  applyHeaderRules(*rules(R"(
remove: {headers: [x-a]}
rename: {headers: ['x-b:x-c']}
replace: {headers: ['x-c:not-replaced', 'x-b:revived']}
add: {headers: ['x-a:not-added', 'x-c:overwrites']}
append: {headers: ['x-c:appended', 'x-a:again']}
)"),
                   h);
  // x-c was not there: replace skips it, add overwrites the renamed value. x-a and x-b were:
  // add skips x-a although it was removed, replace sets x-b although it was renamed away.
  EXPECT_EQ("x-c=overwrites;x-b=revived;x-c=appended;x-a=again;", headerList(h));
}

// ---- The filter alone ----------------------------------------------------------------------

using FakeCallbacks = Testing::FakeFilterCallbacks;

class ResponseTransformerFilterTest : public testing::Test {
 protected:
  void init(const std::string& yaml) {
    auto fc = std::make_shared<FilterConfig>();
    fc->rules = rules(yaml);
    fc->stats = ResponseTransformerStats::create(store_);
    filter_ = std::make_unique<ResponseTransformerFilter>(std::move(fc));
    filter_->setDecoderFilterCallbacks(cb_);
    filter_->setEncoderFilterCallbacks(cb_);
    cb_.request.method = "GET";
    cb_.request.path = "/x";
  }
  Http::ResponseHeaderMap response(absl::string_view content_type = "application/json",
                                   uint32_t status = 200) {
    Http::ResponseHeaderMap h;
    h.status = status;
    if (!content_type.empty()) h.add("content-type", content_type);
    return h;
  }
  Http::FilterDataStatus encode(absl::string_view in, bool end, std::string& out) {
    Buffer::OwnedImpl data(in);
    Http::FilterDataStatus st = filter_->encodeData(data, end);
    out = data.toString();
    return st;
  }
  int64_t stat(const std::string& name) { return store_.valueOf("response_transformer." + name); }

  Event::DispatcherPtr dispatcher_ = Event::createLibeventDispatcher();
  Stats::Store store_{1};
  FakeCallbacks cb_{*dispatcher_};
  std::unique_ptr<ResponseTransformerFilter> filter_;
};

TEST_F(ResponseTransformerFilterTest, HeaderRulesOnlyNeverHold) {
  init("add: {headers: ['x-a:1']}\nremove: {headers: [server]}");
  Http::ResponseHeaderMap h = response();
  h.add("server", "up");
  h.add("content-length", "9");
  EXPECT_EQ(Http::FilterHeadersStatus::Continue, filter_->encodeHeaders(h, false));
  EXPECT_EQ("content-type=application/json;content-length=9;x-a=1;", headerList(h));
  std::string out;
  EXPECT_EQ(Http::FilterDataStatus::Continue, encode("{\"a\":", false, out));
  EXPECT_EQ("{\"a\":", out);
  EXPECT_EQ(Http::FilterDataStatus::Continue, encode("1}", true, out));
  EXPECT_EQ(0, cb_.continued_encoding);
  EXPECT_EQ(0, stat("json_transformed"));
}

TEST_F(ResponseTransformerFilterTest, JsonBodyIsHeldThenRewrittenWithALength) {
  init(R"(
remove: {json: [secret]}
replace: {json: ['meta.api_version:v1']}
add: {json: ['count:5', 'ok:true'], json_types: [number, boolean]}
)");
  Http::ResponseHeaderMap h = response("application/json; charset=utf-8");
  h.add("transfer-encoding", "chunked");
  EXPECT_EQ(Http::FilterHeadersStatus::StopIteration, filter_->encodeHeaders(h, false));
  std::string out;
  EXPECT_EQ(Http::FilterDataStatus::StopIterationNoBuffer,
            encode(R"({"secret":1,"meta":{"api_version":"v0",)", false, out));
  EXPECT_EQ("", out);
  EXPECT_EQ(Http::FilterDataStatus::Continue, encode(R"("n":1.50}})", true, out));
  EXPECT_EQ(R"({"meta":{"api_version":"v1","n":1.50},"count":5,"ok":true})", out);
  EXPECT_EQ(1, cb_.continued_encoding);
  EXPECT_EQ(absl::StrCat(out.size()), h.get("content-length"));
  EXPECT_FALSE(h.has("transfer-encoding"));
  EXPECT_EQ(1, stat("json_transformed"));
}

TEST_F(ResponseTransformerFilterTest, BodyOverTheLimitPassesUnchanged) {
  init("add: {json: ['a:1']}\nmax_body_bytes: 10");
  Http::ResponseHeaderMap h = response();
  EXPECT_EQ(Http::FilterHeadersStatus::StopIteration, filter_->encodeHeaders(h, false));
  std::string out;
  EXPECT_EQ(Http::FilterDataStatus::StopIterationNoBuffer, encode("{\"b\":", false, out));
  // 11 bytes: what was held and this piece go on, the headers first.
  EXPECT_EQ(Http::FilterDataStatus::Continue, encode("\"1234\"", false, out));
  EXPECT_EQ("{\"b\":\"1234\"", out);
  EXPECT_EQ(1, cb_.continued_encoding);
  EXPECT_EQ(Http::FilterDataStatus::Continue, encode("}", true, out));
  EXPECT_EQ("}", out);
  EXPECT_FALSE(h.has("content-length"));
  EXPECT_EQ(1, stat("json_skipped_too_large"));
  EXPECT_EQ(0, stat("json_transformed"));
  // At exactly the limit it is transformed.
  Http::ResponseHeaderMap h2 = response();
  EXPECT_EQ(Http::FilterHeadersStatus::StopIteration, filter_->encodeHeaders(h2, false));
  EXPECT_EQ(Http::FilterDataStatus::Continue, encode("{\"b\":\"12\"}", true, out));
  EXPECT_EQ("{\"b\":\"12\",\"a\":\"1\"}", out);
}

TEST_F(ResponseTransformerFilterTest, KnownLengthOverTheLimitIsNotHeld) {
  init("add: {json: ['a:1']}\nmax_body_bytes: 10");
  Http::ResponseHeaderMap h = response();
  h.add("content-length", "11");
  EXPECT_EQ(Http::FilterHeadersStatus::Continue, filter_->encodeHeaders(h, false));
  std::string out;
  EXPECT_EQ(Http::FilterDataStatus::Continue, encode("{\"b\":\"123\"}", true, out));
  EXPECT_EQ("{\"b\":\"123\"}", out);
  EXPECT_EQ(1, stat("json_skipped_too_large"));
}

TEST_F(ResponseTransformerFilterTest, InvalidAndNonObjectBodiesPassUnchanged) {
  init("add: {json: ['a:1']}");
  for (const char* body : {"{\"b\":", "not json", "", "{\"a\":1} x"}) {
    Http::ResponseHeaderMap h = response();
    EXPECT_EQ(Http::FilterHeadersStatus::StopIteration, filter_->encodeHeaders(h, false));
    std::string out;
    EXPECT_EQ(Http::FilterDataStatus::Continue, encode(body, true, out));
    EXPECT_EQ(body, out);
    EXPECT_EQ(absl::StrCat(out.size()), h.get("content-length"));
  }
  EXPECT_EQ(4, stat("json_skipped_invalid"));
  Http::ResponseHeaderMap h = response();
  filter_->encodeHeaders(h, false);
  std::string out;
  encode("[1,2]", true, out);
  EXPECT_EQ("[1,2]", out);
  EXPECT_EQ(1, stat("json_skipped_not_object"));
  EXPECT_EQ(0, stat("json_transformed"));
}

TEST_F(ResponseTransformerFilterTest, ResponsesTheJsonRulesLeaveAlone) {
  init("add: {json: ['a:1'], headers: ['x-a:1']}");
  // Not JSON (after the header rules), encoded, headers only, HEAD, 204, 304.
  Http::ResponseHeaderMap text = response("text/plain");
  EXPECT_EQ(Http::FilterHeadersStatus::Continue, filter_->encodeHeaders(text, false));
  Http::ResponseHeaderMap gz = response();
  gz.add("content-encoding", "gzip");
  EXPECT_EQ(Http::FilterHeadersStatus::Continue, filter_->encodeHeaders(gz, false));
  EXPECT_EQ(1, stat("json_skipped_encoded"));
  Http::ResponseHeaderMap identity = response();
  identity.add("content-encoding", "identity");
  EXPECT_EQ(Http::FilterHeadersStatus::StopIteration, filter_->encodeHeaders(identity, false));
  Http::ResponseHeaderMap only = response();
  EXPECT_EQ(Http::FilterHeadersStatus::Continue, filter_->encodeHeaders(only, true));
  for (uint32_t status : {204u, 304u}) {
    Http::ResponseHeaderMap h = response("application/json", status);
    EXPECT_EQ(Http::FilterHeadersStatus::Continue, filter_->encodeHeaders(h, false));
    EXPECT_EQ("1", h.get("x-a"));  // header rules still apply
  }
  cb_.request.method = "HEAD";
  Http::ResponseHeaderMap head = response();
  head.add("content-length", "20");
  EXPECT_EQ(Http::FilterHeadersStatus::Continue, filter_->encodeHeaders(head, false));
  EXPECT_EQ("20", head.get("content-length"));
  EXPECT_EQ("1", head.get("x-a"));
  EXPECT_EQ(0, stat("json_transformed"));
  EXPECT_EQ(0, stat("json_skipped_invalid"));
}

TEST_F(ResponseTransformerFilterTest, PlusJsonTypes) {
  init("remove: {json: [a]}");
  for (const char* type :
       {"application/problem+json", "application/vnd.api+json; v=1", "APPLICATION/JSON"}) {
    Http::ResponseHeaderMap h = response(type);
    EXPECT_EQ(Http::FilterHeadersStatus::StopIteration, filter_->encodeHeaders(h, false)) << type;
  }
  Http::ResponseHeaderMap h = response("application/jsonx");
  EXPECT_EQ(Http::FilterHeadersStatus::Continue, filter_->encodeHeaders(h, false));
}

TEST_F(ResponseTransformerFilterTest, ContentTypeIsReadAfterTheHeaderRules) {
  init("replace: {headers: ['content-type:text/plain']}\nadd: {json: ['a:1']}");
  Http::ResponseHeaderMap h = response();
  EXPECT_EQ(Http::FilterHeadersStatus::Continue, filter_->encodeHeaders(h, false));
  init("add: {headers: ['content-type:application/json'], json: ['a:1']}");
  Http::ResponseHeaderMap untyped = response("");
  EXPECT_EQ(Http::FilterHeadersStatus::StopIteration, filter_->encodeHeaders(untyped, false));
}

TEST_F(ResponseTransformerFilterTest, BodyGoesAheadOfTheTrailersWithoutALength) {
  init("append: {json: ['tags:new']}");
  Http::ResponseHeaderMap h = response();
  h.add("content-length", "17");
  EXPECT_EQ(Http::FilterHeadersStatus::StopIteration, filter_->encodeHeaders(h, false));
  std::string out;
  EXPECT_EQ(Http::FilterDataStatus::StopIterationNoBuffer,
            encode(R"({"tags":["old"]})", false, out));
  Http::HeaderMap trailers;
  trailers.add("grpc-status", "0");
  EXPECT_EQ(Http::FilterTrailersStatus::Continue, filter_->encodeTrailers(trailers));
  EXPECT_EQ(R"({"tags":["old","new"]})", cb_.added);
  EXPECT_EQ(1, cb_.continued_encoding);
  EXPECT_EQ(1u, trailers.size());  // kept
  EXPECT_FALSE(h.has("content-length"));
  EXPECT_EQ(1, stat("json_transformed"));
}

TEST_F(ResponseTransformerFilterTest, ANewResponseStartsOver) {
  // A local reply replacing a held response (an upstream reset mid-body) gets its own pass.
  init("add: {json: ['a:1']}");
  Http::ResponseHeaderMap first = response();
  EXPECT_EQ(Http::FilterHeadersStatus::StopIteration, filter_->encodeHeaders(first, false));
  std::string out;
  encode("{\"partial\":", false, out);
  Http::ResponseHeaderMap reply = response("application/json", 503);
  EXPECT_EQ(Http::FilterHeadersStatus::StopIteration, filter_->encodeHeaders(reply, false));
  EXPECT_EQ(Http::FilterDataStatus::Continue, encode("{\"message\":\"x\"}", true, out));
  EXPECT_EQ("{\"message\":\"x\",\"a\":\"1\"}", out);
}

TEST_F(ResponseTransformerFilterTest, RouteConfigReplacesTheListeners) {
  init("add: {headers: ['x-listener:1'], json: ['listener:1']}");
  sluice::config::v1::RouteTable rt;
  ASSERT_TRUE(Config::loadFromYaml(R"(
name: t
virtual_hosts:
- name: v
  domains: ["*"]
  filter_config: {response_transformer: {add: {headers: ['x-vhost:1']}}}
  routes:
  - match: {prefix: /route}
    direct_response: {status: 200}
    filter_config: {response_transformer: {add: {json: ['route:1']}}}
  - match: {prefix: /}
    direct_response: {status: 200}
)",
                                   rt)
                  .ok());
  auto table = Testing::compileRouteTable(rt);
  ASSERT_TRUE(table.ok()) << table.status();
  cb_.request.add("host", "h");

  cb_.request.path = "/route";
  cb_.route_entry = (*table)->route(cb_.request);
  ASSERT_NE(nullptr, cb_.route_entry);
  Http::ResponseHeaderMap h = response();
  EXPECT_EQ(Http::FilterHeadersStatus::StopIteration, filter_->encodeHeaders(h, false));
  std::string out;
  encode("{}", true, out);
  EXPECT_EQ("{\"route\":\"1\"}", out);
  EXPECT_FALSE(h.has("x-listener"));

  cb_.request.path = "/other";
  cb_.route_entry = (*table)->route(cb_.request);
  Http::ResponseHeaderMap v = response();
  EXPECT_EQ(Http::FilterHeadersStatus::Continue, filter_->encodeHeaders(v, false));
  EXPECT_EQ("1", v.get("x-vhost"));
  EXPECT_FALSE(v.has("x-listener"));

  cb_.route_entry = nullptr;  // no route (a local reply): the listener's rules
  Http::ResponseHeaderMap l = response();
  EXPECT_EQ(Http::FilterHeadersStatus::StopIteration, filter_->encodeHeaders(l, false));
  EXPECT_EQ("1", l.get("x-listener"));
}

}  // namespace
}  // namespace ResponseTransformer
}  // namespace Extensions
}  // namespace sluice
