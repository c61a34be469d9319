#include "source/extensions/filters/http/grpc_stats/filter.h"

#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/config/utility.h"
#include "source/common/http/filter_config.h"
#include "source/common/stats/stats.h"
#include "source/extensions/filters/http/grpc_stats/method_stats.h"

namespace sluice {
namespace Extensions {
namespace GrpcStats {
namespace {

using testing::HasSubstr;

TEST(MethodStatsRegistryTest, CountsPerServiceAndMethod) {
  Stats::Store store(1);
  MethodStatsRegistry registry(store);
  MethodStats& a = registry.forPath("/pkg.Greeter/SayHello", 1000);
  EXPECT_EQ(&a, &registry.forPath("/pkg.Greeter/SayHello", 1000));
  a.total().inc();
  registry.chargeStatus(a, 0);
  registry.chargeStatus(a, 14);
  registry.chargeStatus(a, 14);
  registry.chargeStatus(a, 99);  // -> UNKNOWN
  EXPECT_EQ(1, store.valueOf("grpc.pkg.Greeter.SayHello.total"));
  EXPECT_EQ(1, store.valueOf("grpc.pkg.Greeter.SayHello.status.0"));
  EXPECT_EQ(2, store.valueOf("grpc.pkg.Greeter.SayHello.status.14"));
  EXPECT_EQ(1, store.valueOf("grpc.pkg.Greeter.SayHello.status.2"));
  EXPECT_EQ(-1, store.valueOf("grpc.pkg.Greeter.SayHello.status.4"));  // made on first use
  const std::string prom = store.renderPrometheus();
  EXPECT_THAT(prom, HasSubstr("# TYPE sluice_grpc_requests_total counter\n"));
  EXPECT_THAT(prom, HasSubstr("sluice_grpc_requests_total{grpc_service=\"pkg.Greeter\","
                              "grpc_method=\"SayHello\"} 1\n"));
  EXPECT_THAT(prom, HasSubstr("sluice_grpc_responses_total{grpc_service=\"pkg.Greeter\","
                              "grpc_method=\"SayHello\",grpc_status=\"14\"} 2\n"));
}

TEST(MethodStatsRegistryTest, OddPathsCountAsOther) {
  Stats::Store store(1);
  MethodStatsRegistry registry(store);
  for (const char* path : {"/", "/a", "/a/b/c", "/a b/c", "/a/b%2f", "/.a/b", "/a/b-c"}) {
    registry.forPath(path, 1000).total().inc();
  }
  EXPECT_EQ(7, store.valueOf("grpc.other.total"));
  EXPECT_EQ(0u, registry.size());
}

TEST(MethodStatsRegistryTest, BoundedNumberOfMethods) {
  Stats::Store store(1);
  MethodStatsRegistry registry(store);
  for (int i = 0; i < 50; ++i) {
    registry.forPath(absl::StrCat("/svc.S/M", i), 10).total().inc();
  }
  EXPECT_EQ(10u, registry.size());
  EXPECT_EQ(1, store.valueOf("grpc.svc.S.M9.total"));
  EXPECT_EQ(-1, store.valueOf("grpc.svc.S.M10.total"));
  EXPECT_EQ(40, store.valueOf("grpc.other.total"));
  // Known names are still counted on their own.
  registry.forPath("/svc.S/M3", 10).total().inc();
  EXPECT_EQ(2, store.valueOf("grpc.svc.S.M3.total"));
}

TEST(MethodStatsRegistryTest, WorkersCountConcurrently) {
  constexpr int kWorkers = 4;
  constexpr int kCalls = 20000;
  Stats::Store store(kWorkers + 1);
  MethodStatsRegistry registry(store);
  std::vector<std::thread> threads;
  for (int w = 1; w <= kWorkers; ++w) {
    threads.emplace_back([&, w]() {
      Stats::t_slot = w;
      for (int i = 0; i < kCalls; ++i) {
        MethodStats& s = registry.forPath(absl::StrCat("/svc.S/M", i % 7), 1000);
        s.total().inc();
        registry.chargeStatus(s, i % 3);
      }
    });
  }
  for (auto& t : threads) t.join();
  int64_t total = 0;
  int64_t statuses = 0;
  for (int m = 0; m < 7; ++m) {
    total += store.valueOf(absl::StrCat("grpc.svc.S.M", m, ".total"));
    for (int c = 0; c < 3; ++c) {
      statuses += store.valueOf(absl::StrCat("grpc.svc.S.M", m, ".status.", c));
    }
  }
  EXPECT_EQ(kWorkers * kCalls, total);
  EXPECT_EQ(kWorkers * kCalls, statuses);
  EXPECT_EQ(7u, registry.size());
}

class GrpcStatsFilterTest : public testing::Test {
 protected:
  GrpcStatsFilterTest() {
    auto c = std::make_shared<FilterConfig>();
    c->registry = std::make_shared<MethodStatsRegistry>(store_);
    c->max_methods = 1000;
    config_ = c;
  }
  std::unique_ptr<GrpcStatsFilter> start(absl::string_view content_type,
                                         absl::string_view path = "/pkg.S/M") {
    auto f = std::make_unique<GrpcStatsFilter>(config_);
    Http::RequestHeaderMap h;
    h.method = "POST";
    h.path = std::string(path);
    h.add("content-type", content_type);
    EXPECT_EQ(Http::FilterHeadersStatus::Continue, f->decodeHeaders(h, false));
    return f;
  }
  static Http::ResponseHeaderMap response(uint32_t status, absl::string_view grpc_status = "") {
    Http::ResponseHeaderMap r;
    r.status = status;
    r.add("content-type", "application/grpc");
    if (!grpc_status.empty()) r.add("grpc-status", grpc_status);
    return r;
  }
  int64_t stat(const std::string& name) { return store_.valueOf(name); }

  Stats::Store store_{1};
  FilterConfigConstSharedPtr config_;
};

TEST_F(GrpcStatsFilterTest, StatusFromTrailers) {
  auto f = start("application/grpc");
  EXPECT_EQ(1, stat("grpc.pkg.S.M.total"));
  Http::ResponseHeaderMap r = response(200);
  f->encodeHeaders(r, false);
  Buffer::OwnedImpl data("x");
  f->encodeData(data, false);
  Http::HeaderMap t;
  t.add("grpc-status", "5");
  f->encodeTrailers(t);
  EXPECT_EQ(1, stat("grpc.pkg.S.M.status.5"));
}

TEST_F(GrpcStatsFilterTest, TrailersOnly) {
  auto f = start("application/grpc+proto");
  Http::ResponseHeaderMap r = response(200, "16");
  f->encodeHeaders(r, true);
  EXPECT_EQ(1, stat("grpc.pkg.S.M.status.16"));
}

TEST_F(GrpcStatsFilterTest, NoGrpcStatusMapsTheHttpStatus) {
  {
    auto f = start("application/grpc");
    Http::ResponseHeaderMap r = response(503);
    f->encodeHeaders(r, false);
    Buffer::OwnedImpl data("<html>");
    f->encodeData(data, true);
  }
  {
    auto f = start("application/grpc");
    Http::ResponseHeaderMap r = response(200);
    f->encodeHeaders(r, false);
    Buffer::OwnedImpl data("x");
    f->encodeData(data, true);  // 200 without grpc-status
  }
  {
    auto f = start("application/grpc");
    Http::ResponseHeaderMap r = response(429);
    f->encodeHeaders(r, true);
  }
  EXPECT_EQ(1, stat("grpc.pkg.S.M.status.14"));
  EXPECT_EQ(1, stat("grpc.pkg.S.M.status.2"));
  EXPECT_EQ(1, stat("grpc.pkg.S.M.status.8"));
  EXPECT_EQ(3, stat("grpc.pkg.S.M.total"));
}

TEST_F(GrpcStatsFilterTest, GrpcWebIsCounted) {
  auto f = start("application/grpc-web-text", "/pkg.S/Web");
  Http::ResponseHeaderMap r = response(200);
  f->encodeHeaders(r, false);
  Http::HeaderMap t;
  t.add("grpc-status", "0");
  f->encodeTrailers(t);
  EXPECT_EQ(1, stat("grpc.pkg.S.Web.total"));
  EXPECT_EQ(1, stat("grpc.pkg.S.Web.status.0"));
}

TEST_F(GrpcStatsFilterTest, OtherRequestsAreNotCounted) {
  auto f = start("application/json");
  Http::ResponseHeaderMap r = response(200, "3");
  f->encodeHeaders(r, true);
  EXPECT_EQ(-1, stat("grpc.pkg.S.M.total"));
  EXPECT_EQ(-1, stat("grpc.pkg.S.M.status.3"));
}

TEST(GrpcStatsConfigTest, Validation) {
  const Http::FilterType* type = Http::FilterTypeRegistry::get("grpc_stats");
  ASSERT_NE(nullptr, type);
  auto proto = type->createEmptyConfigProto();
  google::protobuf::Struct s;
  (*s.mutable_fields())["max_methods"].set_number_value(100001);
  ASSERT_TRUE(Http::decodeFilterConfig(s, *proto, "http_filters[0].config").ok());
  Config::ErrorList errors;
  Http::FilterValidationContext ctx;
  type->validateConfig(*proto, "http_filters[0].config", ctx, errors);
  EXPECT_THAT(errors.status().message(),
              HasSubstr("http_filters[0].config.max_methods: must be <= 100000"));
}

TEST(GrpcStatsConfigTest, FactorySharesOneRegistry) {
  Stats::Store store(1);
  Http::SingletonManager singletons;
  Http::FactoryContext ctx{&store, "l"};
  ctx.singletons = &singletons;
  const Http::FilterType* type = Http::FilterTypeRegistry::get("grpc_stats");
  auto proto = type->createEmptyConfigProto();
  auto factory = Http::FilterRegistry::get("grpc_stats");
  ASSERT_NE(nullptr, factory);
  ASSERT_TRUE(factory->createFilterFactory(*proto, "f", ctx).ok());
  ASSERT_TRUE(factory->createFilterFactory(*proto, "f", ctx).ok());
  auto registry = singletons.getOrCreate<MethodStatsRegistry>(
      "grpc_stats.registry", []() -> std::shared_ptr<MethodStatsRegistry> { return nullptr; });
  EXPECT_NE(nullptr, registry);
}

}  // namespace
}  // namespace GrpcStats
}  // namespace Extensions
}  // namespace sluice
