#include "source/common/tracing/span.h"

#include "absl/strings/str_cat.h"

namespace sluice {
namespace Tracing {

// Written straight into one string (reserved once): the keys are constants, the ids are
// hex, and values a peer may have sent (host, path, user agent) go through the UTF-8-safe
// escaper, so a batch is valid JSON whatever a client sent (a collector refuses a whole
// batch that is not).
SpanWriter::SpanWriter(absl::string_view trace_id, absl::string_view span_id,
                       absl::string_view parent_span_id, absl::string_view name,
                       uint64_t start_unix_ns, uint64_t end_unix_ns) {
  out_.reserve(1024);
  out_ += "{\"traceId\":\"";
  out_.append(trace_id.data(), trace_id.size());
  out_ += "\",\"spanId\":\"";
  out_.append(span_id.data(), span_id.size());
  if (!parent_span_id.empty()) {
    out_ += "\",\"parentSpanId\":\"";
    out_.append(parent_span_id.data(), parent_span_id.size());
  }
  out_ += "\",\"name\":";
  Json::appendStringUtf8Safe(out_, name);
  // SPAN_KIND_SERVER; 64-bit integers are strings in OTLP JSON.
  absl::StrAppend(&out_, ",\"kind\":2,\"startTimeUnixNano\":\"", start_unix_ns,
                  "\",\"endTimeUnixNano\":\"", end_unix_ns, "\",\"attributes\":[");
}

void SpanWriter::attributeKey(absl::string_view key) {
  if (attributes_++ > 0) out_ += ',';
  out_ += "{\"key\":\"";
  out_.append(key.data(), key.size());
  out_ += "\",\"value\":{";
}

void SpanWriter::attribute(absl::string_view key, absl::string_view value) {
  attributeKey(key);
  out_ += "\"stringValue\":";
  Json::appendStringUtf8Safe(out_, value);
  out_ += "}}";
}

void SpanWriter::attribute(absl::string_view key, int64_t value) {
  attributeKey(key);
  absl::StrAppend(&out_, "\"intValue\":\"", value, "\"}}");
}

std::string SpanWriter::finish(bool error) {
  out_ += ']';
  if (error) out_ += ",\"status\":{\"code\":2}";  // STATUS_CODE_ERROR
  out_ += '}';
  return std::move(out_);
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
