// Route matching with 10, 1,000 and 10,000 routes. The request matches the last route (the worst
// case for a linear scan); the table mixes prefix and exact-path routes like a real API gateway.
#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "source/common/router/config.h"

namespace sluice {
namespace {

Router::RouteTableConstSharedPtr buildTable(int n) {
  sluice::config::v1::RouteTable cfg;
  cfg.set_name("bench");
  auto* vh = cfg.add_virtual_hosts();
  vh->set_name("api");
  vh->add_domains("*");
  for (int i = 0; i < n; ++i) {
    auto* r = vh->add_routes();
    if (i % 2 == 0) {
      r->mutable_match()->set_prefix(absl::StrCat("/api/v1/service", i, "/"));
    } else {
      r->mutable_match()->set_path(absl::StrCat("/api/v1/service", i, "/status"));
    }
    r->mutable_route()->set_cluster("c");
  }
  auto t = Router::RouteTableImpl::create(cfg, "route_tables[0]", nullptr);
  if (!t.ok()) std::abort();
  return *t;
}

void BM_RouteMatch(benchmark::State& state) {
  const int n = state.range(0);
  auto table = buildTable(n);
  Http::RequestHeaderMap h;
  h.method = "GET";
  h.path = absl::StrCat("/api/v1/service", n - 2, "/orders/17?expand=items");
  h.add("host", "api.example.com");
  for (auto _ : state) {
    const Router::RouteEntry* r = table->route(h);
    benchmark::DoNotOptimize(r);
  }
  if (table->route(h) == nullptr) state.SkipWithError("no match");
}
BENCHMARK(BM_RouteMatch)->Arg(10)->Arg(1000)->Arg(10000);

void BM_RouteMiss(benchmark::State& state) {
  auto table = buildTable(state.range(0));
  Http::RequestHeaderMap h;
  h.method = "GET";
  h.path = "/other/path/that/matches/nothing";
  h.add("host", "api.example.com");
  for (auto _ : state) {
    benchmark::DoNotOptimize(table->route(h));
  }
}
BENCHMARK(BM_RouteMiss)->Arg(10)->Arg(10000);

}  // namespace
}  // namespace sluice
