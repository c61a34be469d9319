#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "source/common/common/json.h"

namespace sluice {
namespace Tracing {

// One span in OTLP's JSON encoding (opentelemetry-proto's `Span`, as OTLP/HTTP JSON spells it:
// hex ids, 64-bit integers as strings, enums as numbers):
//   SpanWriter w(trace_id, span_id, parent_span_id, "GET /users", start_ns, end_ns);
//   w.attribute("http.request.method", "GET");
//   std::string json = w.finish(/*error=*/false);
class SpanWriter {
 public:
  SpanWriter(absl::string_view trace_id, absl::string_view span_id,
             absl::string_view parent_span_id, absl::string_view name, uint64_t start_unix_ns,
             uint64_t end_unix_ns);
  // `key` is a constant attribute name (written as is); `value` any bytes.
  void attribute(absl::string_view key, absl::string_view value);
  void attribute(absl::string_view key, int64_t value);
  // Closes the span; `error` sets its status to STATUS_CODE_ERROR (else unset).
  std::string finish(bool error);

 private:
  void attributeKey(absl::string_view key);

  std::string out_;
  int attributes_ = 0;
};

// An OTLP/HTTP ExportTraceServiceRequest body for `spans` (each a SpanWriter's output), under
// one resource with `service.name`.
std::string encodeExportRequest(absl::string_view service_name,
                                const std::vector<std::string>& spans);

// Where a listener's sampled spans go. exportSpan() is called on workers at the end of each
// sampled request: it must only hand the span over (no I/O, no lock per span).
class SpanExporter {
 public:
  virtual ~SpanExporter() = default;
  virtual void exportSpan(std::string&& span_json) = 0;
};
using SpanExporterSharedPtr = std::shared_ptr<SpanExporter>;

}  // namespace Tracing
}  // namespace sluice
