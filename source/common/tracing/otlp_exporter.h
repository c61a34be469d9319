#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "source/common/http/batch_sink.h"
#include "source/common/http/filter.h"
#include "source/common/tracing/span.h"

namespace sluice {
namespace Tracing {

// A listener's OTLP/HTTP export settings (Listener.tracing).
struct OtlpSettings {
  Http::HttpUri endpoint;  // tls set for https:// (createUriTlsContext)
  std::string service_name = "sluice";
  uint32_t max_batch_size = 100;
  std::chrono::milliseconds flush_timeout{2000};
  uint32_t max_queued_spans = 10000;
};

// Sampled spans go to one process-wide Http::BatchSink per endpoint and settings (the
// SingletonManager's, so config versions share it and SIGTERM drains it): workers hand a span
// over without a lock; the sink's own thread POSTs ExportTraceServiceRequest JSON bodies of up to
// max_batch_size spans, retrying with backoff and dropping the oldest beyond max_queued_spans
// (stats `otlp.<host:port/path>.*`, Prometheus `sluice_otlp_*{sink}`).
absl::StatusOr<SpanExporterSharedPtr> createOtlpExporter(
    const OtlpSettings& settings, Http::SingletonManager& singletons, Stats::Store* stats,
    Network::DnsResolverOptionsConstSharedPtr dns);

}  // namespace Tracing
}  // namespace sluice
