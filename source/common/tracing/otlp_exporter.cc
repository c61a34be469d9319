#include "source/common/tracing/otlp_exporter.h"

#include "absl/strings/str_cat.h"

namespace sluice {
namespace Tracing {
namespace {

class OtlpEncoder : public Http::BatchEncoder {
 public:
  explicit OtlpEncoder(std::string service_name) : service_name_(std::move(service_name)) {}
  std::string encode(const std::vector<std::string>& spans) const override {
    return encodeExportRequest(service_name_, spans);
  }

 private:
  const std::string service_name_;
};

class OtlpSpanExporter : public SpanExporter {
 public:
  explicit OtlpSpanExporter(Http::BatchSinkSharedPtr sink) : sink_(std::move(sink)) {}
  void exportSpan(std::string&& span_json) override { sink_->enqueue(std::move(span_json)); }

 private:
  const Http::BatchSinkSharedPtr sink_;
};

}  // namespace

absl::StatusOr<SpanExporterSharedPtr> createOtlpExporter(
    const OtlpSettings& settings, Http::SingletonManager& singletons, Stats::Store* stats,
    Network::DnsResolverOptionsConstSharedPtr dns) {
  Http::BatchSinkSettings s;
  s.endpoint = settings.endpoint;
  s.method = "POST";
  s.headers = {{"content-type", "application/json"}};
  s.queue_size = settings.max_batch_size;
  s.flush_timeout = settings.flush_timeout;
  s.max_queued_entries = settings.max_queued_spans;
  s.retry_count = 5;
  const std::string key = absl::StrCat("sluice.otlp/", s.key(), "/", settings.service_name);
  absl::Status error;
  Http::BatchSinkSharedPtr sink =
      singletons.getOrCreate<Http::BatchSink>(key, [&]() -> Http::BatchSinkSharedPtr {
        auto made = Http::BatchSink::create(s, std::make_shared<OtlpEncoder>(settings.service_name),
                                            stats, "otlp", dns);
        if (!made.ok()) {
          error = made.status();
          return nullptr;
        }
        return *made;
      });
  if (sink == nullptr) {
    return error.ok() ? absl::InternalError("the OTLP exporter could not start") : error;
  }
  return SpanExporterSharedPtr(std::make_shared<OtlpSpanExporter>(std::move(sink)));
}

}  // namespace Tracing
}  // namespace sluice
