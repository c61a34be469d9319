#include "source/common/tracing/span.h"

#include "absl/strings/str_cat.h"

namespace sluice {
namespace Tracing {

SpanWriter::SpanWriter(absl::string_view trace_id, absl::string_view span_id,
                       absl::string_view parent_span_id, absl::string_view name,
                       uint64_t start_unix_ns, uint64_t end_unix_ns) {
  w_.beginObject();
  w_.field("traceId", trace_id);
  w_.field("spanId", span_id);
  if (!parent_span_id.empty()) w_.field("parentSpanId", parent_span_id);
  w_.field("name", name);
  w_.field("kind", 2);  // SPAN_KIND_SERVER
  w_.field("startTimeUnixNano", absl::StrCat(start_unix_ns));
  w_.field("endTimeUnixNano", absl::StrCat(end_unix_ns));
  w_.key("attributes");
  w_.beginArray();
}

void SpanWriter::attribute(absl::string_view key, absl::string_view value) {
  w_.beginObject();
  w_.field("key", key);
  w_.key("value");
  w_.beginObject();
  w_.field("stringValue", value);
  w_.endObject();
  w_.endObject();
}

void SpanWriter::attribute(absl::string_view key, int64_t value) {
  w_.beginObject();
  w_.field("key", key);
  w_.key("value");
  w_.beginObject();
  w_.field("intValue", absl::StrCat(value));  // int64 is a string in OTLP JSON
  w_.endObject();
  w_.endObject();
}

std::string SpanWriter::finish(bool error) {
  w_.endArray();
  if (error) {
    w_.key("status");
    w_.beginObject();
    w_.field("code", 2);  // STATUS_CODE_ERROR
    w_.endObject();
  }
  w_.endObject();
  return w_.take();
}

std::string encodeExportRequest(absl::string_view service_name,
                                const std::vector<std::string>& spans) {
  std::string out =
      "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
      "\"value\":{\"stringValue\":";
  Json::appendString(out, service_name);
  out += "}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"sluice\"},\"spans\":[";
  for (size_t i = 0; i < spans.size(); ++i) {
    if (i > 0) out += ',';
    out += spans[i];
  }
  out += "]}]}]}";
  return out;
}

}  // namespace Tracing
}  // namespace sluice
