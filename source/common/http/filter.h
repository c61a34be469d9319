#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/optional.h"
#include "google/protobuf/message.h"
#include "source/common/admin/handler_registry.h"
#include "source/common/buffer/buffer.h"
#include "source/common/config/policy_registry.h"
#include "source/common/event/dispatcher.h"
#include "source/common/http/gateway_response.h"
#include "source/common/http/headers.h"
#include "source/common/http/response_flags.h"
#include "source/common/network/dns_resolver.h"

namespace sluice {
namespace Router {
class RouteEntry;
}
namespace Upstream {
class ClusterManager;
}
namespace Stats {
class Store;
class Histogram;
}  // namespace Stats
namespace Tls {
class ConnectionInfo;
}

namespace Http {

// Typed, named state of one stream that filters share (Envoy's filter state): auth records who
// the consumer is, rate_limit keys its counters on it, the access log and metrics read it,
// without a core field per filter. Names are dotted and owned by the filter that sets them
// (docs/extending.md lists the well-known ones). Worker-local, dies with the stream.
class FilterState {
 public:
  class Object {
   public:
    virtual ~Object() = default;
    // The value as text for logs; nullopt when it has none.
    virtual absl::optional<std::string> serializeAsString() const { return absl::nullopt; }
  };
  // A plain string value.
  class StringObject : public Object {
   public:
    explicit StringObject(std::string value) : value_(std::move(value)) {}
    const std::string& value() const { return value_; }
    absl::optional<std::string> serializeAsString() const override { return value_; }

   private:
    std::string value_;
  };
  // A list of strings, and the list joined with ", " (made once, when the object is).
  class StringListObject : public Object {
   public:
    explicit StringListObject(std::vector<std::string> values);
    const std::vector<std::string>& values() const { return values_; }
    const std::string& joined() const { return joined_; }
    absl::optional<std::string> serializeAsString() const override { return joined_; }

   private:
    std::vector<std::string> values_;
    std::string joined_;
  };

  // Sets (or replaces) `name`.
  void set(absl::string_view name, std::shared_ptr<const Object> object) {
    for (auto& [n, o] : objects_) {
      if (n == name) {
        o = std::move(object);
        return;
      }
    }
    objects_.emplace_back(std::string(name), std::move(object));
  }
  // The object under `name` if it is a T, else null.
  template <class T>
  const T* get(absl::string_view name) const {
    for (const auto& [n, o] : objects_) {
      if (n == name) return dynamic_cast<const T*>(o.get());
    }
    return nullptr;
  }
  // The string under `name`, or "" when there is none.
  absl::string_view getString(absl::string_view name) const {
    const StringObject* s = get<StringObject>(name);
    return s == nullptr ? absl::string_view() : absl::string_view(s->value());
  }
  bool empty() const { return objects_.empty(); }
  template <class F>
  void forEach(F fn) const {
    for (const auto& [n, o] : objects_) fn(n, *o);
  }

 private:
  absl::InlinedVector<std::pair<std::string, std::shared_ptr<const Object>>, 2> objects_;
};

// Well-known filter state names.
namespace FilterStateNames {
// Who the auth filter authenticated (StringObject): the consumer's name, and an id of the
// credential it presented ("key:<SHA-256 prefix of the key, hex>", "jwt:<consumer credential
// key>" or "jwt:<iss>/<sub>"). Absent when auth did not identify one. rate_limit keys
// limit_by CONSUMER / CREDENTIAL on them (falling back to the client IP).
constexpr absl::string_view kConsumer = "sluice.consumer";
constexpr absl::string_view kCredential = "sluice.credential";
// The groups of the consumer auth identified (StringListObject; Kong's acls), when it has any.
// The acl filter allows or denies on them.
constexpr absl::string_view kConsumerGroups = "sluice.consumer_groups";
}  // namespace FilterStateNames

// What happened to a request, for the access log and stats.
struct StreamInfo {
  std::chrono::steady_clock::time_point start;
  std::chrono::system_clock::time_point start_wall;
  uint64_t bytes_received = 0;
  uint64_t bytes_sent = 0;
  uint32_t status = 0;
  std::string upstream_host;
  std::string upstream_cluster;
  std::string request_id;
  // The request target as the client sent it (kept before normalisation and rewrites when the
  // listener has an access log or a filter that asks for it: FactoryContext::keep_original_path).
  std::string original_path;
  // Envoy-style response flags (UF, UT, NR, ...); the access log lists their short names.
  ResponseFlags response_flags;
  // The W3C trace id (32 lowercase hex digits) when the request carries or was given a
  // traceparent (listener `tracing`), else empty. Logged by the access log and http_log.
  std::string trace_id;
  // The final upstream try: from endpoint selection (connecting included) to the last byte of
  // its response, in microseconds; -1 when no upstream response completed (local replies,
  // cache hits, resets). What is left of the request's time is the gateway's own.
  int64_t upstream_time_us = -1;
  // The request-time and gateway-time histograms of the cluster the router sent the request
  // to (null: none), recorded when the stream ends. Stats live as long as the process.
  Stats::Histogram* cluster_rq_time = nullptr;
  Stats::Histogram* cluster_gateway_time = nullptr;
  // A filter set the path sent upstream itself (request_transformer's `replace.uri`): the
  // route's prefix_rewrite no longer applies (it would cut the matched prefix's length off a
  // path that no longer starts with it).
  bool path_replaced = false;
  // State the stream's filters share (see FilterState).
  FilterState filter_state;
  void addFlag(ResponseFlag flag) { response_flags.set(flag); }
};

// Filter return values. Contract (the same on the request and the response path):
// - Continue: the next filter sees this callback now.
// - StopIteration (headers/trailers): later filters do not see it until the filter calls
//   continueDecoding()/continueEncoding(). The stopping filter itself still receives body data
//   and trailers; data for the filters after it is held (up to the listener's buffer limit, then
//   413 on the request path; on the response path the stream is reset).
//   A filter that holds the headers to see the whole body first (a body transformer) keeps the
//   body itself (StopIterationNoBuffer), and at its end rewrites it into the `data` of the last
//   call, fixes content-length, calls continue...() (the headers go on) and returns Continue
//   (the data follows them). With trailers, it hands the body on from decodeTrailers() /
//   encodeTrailers() with addDecodedData() / addEncodedData(), then calls continue...().
// - StopIterationAndBuffer (data): buffer this data and stop; continue...() resumes with it.
// - StopIterationNoBuffer (data): the filter took care of the data (consumed or kept it).
enum class FilterHeadersStatus { Continue, StopIteration };
enum class FilterDataStatus { Continue, StopIterationAndBuffer, StopIterationNoBuffer };
enum class FilterTrailersStatus { Continue, StopIteration };

// Told when the downstream connection's write buffer fills / drains, so a producer of response
// data (the router) can pause reading its upstream.
class DownstreamWatermarkCallbacks {
 public:
  virtual ~DownstreamWatermarkCallbacks() = default;
  virtual void onAboveWriteBufferHighWatermark() = 0;
  virtual void onBelowWriteBufferLowWatermark() = 0;
};

class StreamFilterCallbacks {
 public:
  virtual ~StreamFilterCallbacks() = default;
  virtual Event::Dispatcher& dispatcher() = 0;
  virtual StreamInfo& streamInfo() = 0;
  // The route picked at header time (nullptr: none matched). Pinned with the stream's config
  // snapshot: a config change never moves an in-flight request.
  virtual const Router::RouteEntry* route() = 0;
  virtual Upstream::ClusterManager& clusterManager() = 0;
  virtual absl::string_view downstreamAddress() = 0;
  // TLS details of the downstream connection (peer certificate, SNI, ...); null for cleartext.
  virtual const Tls::ConnectionInfo* downstreamSsl() { return nullptr; }
  // Aborts the stream (the connection is reset for HTTP/1 once the response has started).
  virtual void resetStream() = 0;
  virtual uint32_t bufferLimit() = 0;
  // The response headers as they went to the client (or as far as the encoder filters got
  // them); null before a response started. Valid until the stream is destroyed, onDestroy()
  // included: what a log filter reads at the end of the stream.
  virtual const ResponseHeaderMap* responseHeaders() { return nullptr; }
};

class StreamDecoderFilterCallbacks : public virtual StreamFilterCallbacks {
 public:
  // Resumes a decode iteration stopped by this filter.
  virtual void continueDecoding() = 0;
  // Answers the request from the gateway itself with a JSON error body
  // {"message": ..., "request_id": ...}. `flag` (if any) is recorded in the access log.
  // `modify` adds headers of the reply. `type` is the reply's kind, which the listener's and
  // the virtual host's `gateway_responses` reshape (status, headers, body); without one it is
  // inferred from the status and the stream's flags (inferGatewayResponseType). A gRPC or
  // gRPC-Web request gets a trailers-only gRPC reply instead, never reshaped.
  virtual void sendLocalReply(uint32_t status, absl::string_view message,
                              absl::optional<ResponseFlag> flag = absl::nullopt,
                              std::function<void(ResponseHeaderMap&)> modify = nullptr,
                              absl::optional<GatewayResponseType> type = absl::nullopt) = 0;
  // The same, naming the type first: sendLocalReply(400, "...", GatewayResponseType::X).
  void sendLocalReply(uint32_t status, absl::string_view message, GatewayResponseType type,
                      absl::optional<ResponseFlag> flag = absl::nullopt,
                      std::function<void(ResponseHeaderMap&)> modify = nullptr) {
    sendLocalReply(status, message, flag, std::move(modify), type);
  }
  // Starts the response (terminal filters: router, direct responses). Goes through the encoder
  // filters.
  virtual void encodeHeaders(ResponseHeaderMapPtr&& headers, bool end_stream) = 0;
  virtual void encodeData(Buffer::Instance& data, bool end_stream) = 0;
  virtual void encodeTrailers(HeaderMapPtr&& trailers) = 0;
  virtual bool responseStarted() const = 0;
  // Flow control: this filter's upstream can't take more request body for now / again.
  virtual void onDecoderFilterAboveWriteBufferHighWatermark() = 0;
  virtual void onDecoderFilterBelowWriteBufferLowWatermark() = 0;
  virtual void addDownstreamWatermarkCallbacks(DownstreamWatermarkCallbacks& cb) = 0;
  virtual void removeDownstreamWatermarkCallbacks(DownstreamWatermarkCallbacks& cb) = 0;
  virtual RequestHeaderMap& requestHeaders() = 0;
  // Sends `100 Continue` to a client that asked for it (the router calls this when it starts
  // the upstream request).
  virtual void sendContinueIfExpected() = 0;
  // Request body bytes a terminal filter holds before it starts its upstream request (the
  // listener's request buffering): a client that trickles its body then holds our memory, not
  // an upstream connection. 0 = start right away and stream the body.
  virtual uint32_t requestBufferBytes() { return 0; }
  // From decodeTrailers() only: `data` goes on to the filters after this one, ahead of the
  // trailers (a filter that held the body until its end hands it on).
  virtual void addDecodedData(Buffer::Instance& data) { data.drain(data.length()); }
};

class StreamEncoderFilterCallbacks : public virtual StreamFilterCallbacks {
 public:
  virtual void continueEncoding() = 0;
  // From encodeTrailers() only: sends `data` through the encoder filters after this one, ahead
  // of the trailers. A filter that moves the trailers into the body (grpc_web) adds them as data
  // and empties the trailer map: the response then ends with the data, without a trailer section.
  virtual void addEncodedData(Buffer::Instance& data) { data.drain(data.length()); }
};

class StreamFilterBase {
 public:
  virtual ~StreamFilterBase() = default;
  // The stream is going away (complete or reset): release timers, upstream requests, etc.
  // Called once, when the response is complete (its last byte handed to the codec) or the
  // stream was reset, with the callbacks still valid: StreamInfo is final then (status, bytes
  // sent and received, response flags, upstream_time_us), and requestHeaders() /
  // responseHeaders() are what the upstream and the client got. The place for a filter that
  // logs the request (http_log); nothing it does may fail or delay the stream.
  virtual void onDestroy() {}
};

class StreamDecoderFilter : public virtual StreamFilterBase {
 public:
  virtual FilterHeadersStatus decodeHeaders(RequestHeaderMap& headers, bool end_stream) = 0;
  virtual FilterDataStatus decodeData(Buffer::Instance& data, bool end_stream) = 0;
  virtual FilterTrailersStatus decodeTrailers(HeaderMap& trailers) = 0;
  virtual void setDecoderFilterCallbacks(StreamDecoderFilterCallbacks& callbacks) = 0;
};
using StreamDecoderFilterSharedPtr = std::shared_ptr<StreamDecoderFilter>;

class StreamEncoderFilter : public virtual StreamFilterBase {
 public:
  virtual FilterHeadersStatus encodeHeaders(ResponseHeaderMap& headers, bool end_stream) = 0;
  virtual FilterDataStatus encodeData(Buffer::Instance& data, bool end_stream) = 0;
  virtual FilterTrailersStatus encodeTrailers(HeaderMap& trailers) = 0;
  virtual void setEncoderFilterCallbacks(StreamEncoderFilterCallbacks& callbacks) = 0;
};
using StreamEncoderFilterSharedPtr = std::shared_ptr<StreamEncoderFilter>;

class StreamFilter : public StreamDecoderFilter, public StreamEncoderFilter {};
using StreamFilterSharedPtr = std::shared_ptr<StreamFilter>;

class FilterChainFactoryCallbacks {
 public:
  virtual ~FilterChainFactoryCallbacks() = default;
  virtual void addStreamDecoderFilter(StreamDecoderFilterSharedPtr filter) = 0;
  virtual void addStreamEncoderFilter(StreamEncoderFilterSharedPtr filter) = 0;
  virtual void addStreamFilter(StreamFilterSharedPtr filter) = 0;
};

// Built once per listener config from the filter's config; called once per stream.
using FilterFactoryCb = std::function<void(FilterChainFactoryCallbacks&)>;

// A process-wide object with work to finish before the process exits (a log sink's queue).
class Drainable {
 public:
  virtual ~Drainable() = default;
  // Starts finishing; returns at once (any thread).
  virtual void startDrain() = 0;
  // Waits until the work is done or `deadline` passes; true when done.
  virtual bool waitDrained(std::chrono::steady_clock::time_point deadline) = 0;
};

// Process-wide objects that outlive config snapshots (a JWKS cache, Redis clients, shared
// rate-limit counters, log sinks), created on first use by the filter factories that need them
// and kept until the process exits. Used on the main thread while snapshots are built (and by
// filters that create one lazily: the map is locked); what the objects do on workers is up to
// them.
class SingletonManager {
 public:
  template <class T>
  std::shared_ptr<T> getOrCreate(const std::string& name,
                                 const std::function<std::shared_ptr<T>()>& create) {
    absl::MutexLock lock(&mu_);
    auto it = objects_.find(name);
    if (it != objects_.end()) return std::static_pointer_cast<T>(it->second);
    std::shared_ptr<T> made = create();
    objects_[name] = made;
    if constexpr (std::is_base_of_v<Drainable, T>) {
      if (made != nullptr) drainables_.push_back(made);
    }
    return made;
  }

  // At shutdown, on the main thread once the workers have stopped (nothing is added any more):
  // starts every Drainable's drain, then waits for all of them until `deadline`. Returns how
  // many did not finish in time.
  size_t drainAll(std::chrono::steady_clock::time_point deadline) {
    std::vector<std::shared_ptr<Drainable>> all;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& weak : drainables_) {
        if (auto d = weak.lock()) all.push_back(std::move(d));
      }
    }
    for (const auto& d : all) d->startDrain();
    size_t late = 0;
    for (const auto& d : all) late += d->waitDrained(deadline) ? 0 : 1;
    return late;
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<void>> objects_ ABSL_GUARDED_BY(mu_);
  std::vector<std::weak_ptr<Drainable>> drainables_ ABSL_GUARDED_BY(mu_);
};

struct FactoryContext {
  Stats::Store* stats = nullptr;
  std::string listener_name;
  // The snapshot's policies (never null while a snapshot is built; may be empty). Keep the
  // shared_ptr: streams can outlive the snapshot that created their filters.
  Config::PolicySetConstSharedPtr policies;
  // Null when only validating (sluice --validate, sluice-cp): factories must then check their
  // config without starting anything (no fetches, no connections).
  Event::Dispatcher* main_dispatcher = nullptr;
  SingletonManager* singletons = nullptr;
  // Worker threads of the process (0 when only validating).
  uint32_t concurrency = 0;
  // Resolves host names on the main thread (a remote JWKS URI); null when only validating.
  Network::DnsResolver* main_dns_resolver = nullptr;
  // What a resolver a filter makes on a worker uses (the bootstrap's dns_resolvers), e.g. for a
  // Redis host name; null when only validating.
  Network::DnsResolverOptionsConstSharedPtr dns_options;
  // Where a filter adds admin endpoints of its own (the cache's DELETE /cache); null when only
  // validating. Register once per process (with the process-wide object the handler uses).
  Admin::HandlerRegistry* admin_handlers = nullptr;
  // Set by a factory whose filter reads StreamInfo::original_path (the request target as the
  // client sent it, before normalisation and rewrites): the listener then keeps it for every
  // stream, as it does for its access log.
  bool keep_original_path = false;
};

// The runtime side of a filter, registered by name by the filter's library (its config side,
// Http::FilterType in filter_config.h, validated `config` before this is called).
class NamedHttpFilterConfigFactory {
 public:
  virtual ~NamedHttpFilterConfigFactory() = default;
  virtual std::string name() const = 0;
  // `config` is the filter type's config message, decoded and validated. Returns the
  // per-stream factory; errors (e.g. a file that can't be read) name fields under `path`.
  virtual absl::StatusOr<FilterFactoryCb> createFilterFactory(
      const google::protobuf::Message& config, const std::string& path,
      FactoryContext& context) = 0;
};

class FilterRegistry {
 public:
  static void add(std::unique_ptr<NamedHttpFilterConfigFactory> factory);
  static NamedHttpFilterConfigFactory* get(const std::string& name);
  static std::vector<std::string> names();
};

// Registers a factory at static-initialisation time: `REGISTER_HTTP_FILTER(RouterFactory);`
template <class T>
struct FilterRegistration {
  FilterRegistration() { FilterRegistry::add(std::make_unique<T>()); }
};
#define REGISTER_HTTP_FILTER(T) static ::sluice::Http::FilterRegistration<T> T##_registration

}  // namespace Http
}  // namespace sluice
