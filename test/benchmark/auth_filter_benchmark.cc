// The auth filter's decodeHeaders for one request, as a worker runs it: a route without a policy
// (the pass-through), and a route whose policy accepts a token the worker's cache already holds
// (the hot path: header scan, cache lookup, identity headers, credential removal). Each iteration
// also copies the request's headers (same for all three): compare against BM_NoPolicyRoute.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "source/common/config/utility.h"
#include "source/common/router/config.h"
#include "source/extensions/filters/http/auth/filter.h"
#include "test/extensions/filters/http/auth/test_keys.h"
#include "test/test_common/route_table.h"

namespace sluice {
namespace Extensions {
namespace Auth {
namespace {

class Callbacks : public Http::StreamDecoderFilterCallbacks {
 public:
  Event::Dispatcher& dispatcher() override { abort(); }
  Http::StreamInfo& streamInfo() override { return info_; }
  const Router::RouteEntry* route() override { return route_; }
  Upstream::ClusterManager& clusterManager() override { abort(); }
  absl::string_view downstreamAddress() override { return "127.0.0.1"; }
  void resetStream() override {}
  uint32_t bufferLimit() override { return 65536; }
  void continueDecoding() override {}
  void sendLocalReply(uint32_t, absl::string_view, absl::optional<Http::ResponseFlag>,
                      std::function<void(Http::ResponseHeaderMap&)>,
                      absl::optional<Http::GatewayResponseType>) override {
    abort();
  }
  void encodeHeaders(Http::ResponseHeaderMapPtr&&, bool) override {}
  void encodeData(Buffer::Instance&, bool) override {}
  void encodeTrailers(Http::HeaderMapPtr&&) override {}
  bool responseStarted() const override { return false; }
  void onDecoderFilterAboveWriteBufferHighWatermark() override {}
  void onDecoderFilterBelowWriteBufferLowWatermark() override {}
  void addDownstreamWatermarkCallbacks(Http::DownstreamWatermarkCallbacks&) override {}
  void removeDownstreamWatermarkCallbacks(Http::DownstreamWatermarkCallbacks&) override {}
  Http::RequestHeaderMap& requestHeaders() override { abort(); }
  void sendContinueIfExpected() override {}
  const Router::RouteEntry* route_ = nullptr;

 private:
  Http::StreamInfo info_;
};

struct Setup {
  Setup(Alg alg, Testing::TestKey::Kind kind) : key(kind, "k") {
    sluice::config::v1::RouteTable rt;
    if (!Config::loadFromYaml(R"(
name: t
virtual_hosts:
- domains: ["*"]
  routes:
  - {match: {prefix: /open}, route: {cluster: c}}
  - {match: {prefix: /}, route: {cluster: c}, auth: p}
)",
                              rt)
             .ok()) {
      abort();
    }
    table = *::sluice::Testing::compileRouteTable(rt);
    sluice::config::v1::AuthPolicy proto;
    proto.set_name("p");
    auto* prov = proto.mutable_jwt()->add_providers();
    prov->set_issuer("https://issuer.example");
    prov->add_audiences("api");
    prov->mutable_local_jwks()->set_inline_(Testing::jwks({key.jwk()}));
    auto* ch = prov->add_claim_to_headers();
    ch->set_claim("sub");
    ch->set_header("x-user-id");
    auto fc = std::make_shared<FilterConfig>();
    fc->policies["p"] = *compilePolicy(proto, "p", CompileOptions{});
    fc->now_s = [] { return int64_t{1700000000}; };
    config = fc;
    token = Testing::signedToken(
        alg, &key, "",
        R"({"iss":"https://issuer.example","aud":"api","sub":"user-1","scope":"orders read",)"
        R"("exp":4102444800})");
  }
  Http::RequestHeaderMap request(absl::string_view path, bool with_token) const {
    Http::RequestHeaderMap h;
    h.method = "GET";
    h.path = std::string(path);
    h.add("host", "api.example.com");
    h.add("user-agent", "wrk");
    h.add("accept", "*/*");
    h.add("x-request-id", "6f1c1d2e-1b9a-4c1e-9f5e-0a2b3c4d5e6f");
    h.add("x-forwarded-for", "127.0.0.1");
    h.add("x-forwarded-proto", "http");
    if (with_token) h.add("authorization", "Bearer " + token);
    return h;
  }
  Testing::TestKey key;
  Router::RouteTableConstSharedPtr table;
  FilterConfigConstSharedPtr config;
  std::string token;
};

void run(benchmark::State& state, const Setup& s, absl::string_view path, bool with_token) {
  const Http::RequestHeaderMap tmpl = s.request(path, with_token);
  Callbacks cb;
  cb.route_ = s.table->route(tmpl);
  for (auto _ : state) {
    Http::RequestHeaderMap h = tmpl;  // the same copy in every benchmark, incl. the baseline
    AuthFilter f(s.config);
    f.setDecoderFilterCallbacks(cb);
    if (f.decodeHeaders(h, true) != Http::FilterHeadersStatus::Continue) abort();
    benchmark::DoNotOptimize(h);
  }
}

void BM_NoPolicyRoute(benchmark::State& state) {
  static Setup s(Alg::RS256, Testing::TestKey::Kind::Rsa2048);
  run(state, s, "/open/x", false);
}
BENCHMARK(BM_NoPolicyRoute);

void BM_CachedToken_RS256(benchmark::State& state) {
  static Setup s(Alg::RS256, Testing::TestKey::Kind::Rsa2048);
  run(state, s, "/api/x", true);
}
BENCHMARK(BM_CachedToken_RS256);

void BM_CachedToken_ES256(benchmark::State& state) {
  static Setup s(Alg::ES256, Testing::TestKey::Kind::P256);
  run(state, s, "/api/x", true);
}
BENCHMARK(BM_CachedToken_ES256);

}  // namespace
}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice

BENCHMARK_MAIN();
