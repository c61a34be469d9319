// Path normalisation before routing (source/common/http/path.cc): the common case (a clean path,
// one scan, no allocation) and paths that take the slow path (escapes, dot segments, slashes).
#include <string>

#include "benchmark/benchmark.h"
#include "source/common/http/path.h"

namespace sluice {
namespace {

void run(benchmark::State& state, const char* target) {
  Http::Path::NormalizeOptions o;
  const std::string in = target;
  std::string t;
  absl::string_view error;
  for (auto _ : state) {
    t = in;
    benchmark::DoNotOptimize(Http::Path::normalize(t, o, error));
  }
}

void BM_PathClean(benchmark::State& state) {
  run(state, "/api/v1/service17/orders/42?expand=items&page=2");
}
void BM_PathDotSegments(benchmark::State& state) {
  run(state, "/api/v1/./service17/../service18//orders/42?expand=items");
}
void BM_PathEscapes(benchmark::State& state) {
  run(state, "/api/v1/%73ervice17/caf%c3%a9/orders/42?expand=items");
}
void BM_PathCopyOnly(benchmark::State& state) {
  // The string copy every run does, to subtract from the figures above.
  const std::string in = "/api/v1/service17/orders/42?expand=items&page=2";
  std::string t;
  for (auto _ : state) {
    t = in;
    benchmark::DoNotOptimize(t.data());
  }
}

BENCHMARK(BM_PathClean);
BENCHMARK(BM_PathDotSegments);
BENCHMARK(BM_PathEscapes);
BENCHMARK(BM_PathCopyOnly);

}  // namespace
}  // namespace sluice
