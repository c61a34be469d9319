#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "source/common/access_log/access_log.h"
#include "source/common/http/codec.h"
#include "source/common/http/filter.h"
#include "source/common/http/gateway_response_config.h"
#include "source/common/http/path.h"
#include "source/common/network/connection.h"
#include "source/common/router/config.h"
#include "source/common/stats/consumer_stats.h"
#include "source/common/tracing/span.h"

namespace sluice {
namespace Http {

enum class UnderscoreHeadersAction : uint8_t { Drop, Reject, Allow };

// A listener's `tracing`, compiled.
struct TracingConfig {
  // Probability that a trace Sluice starts is sampled.
  double sample_rate = 1.0;
  // Where sampled spans go; null: propagate and log only.
  Tracing::SpanExporterSharedPtr exporter;
};

// A listener's HTTP settings, compiled once per config version; immutable and shared. Apart
// from the connection manager (conn_manager.h) so that config validation doesn't link it.
struct ConnectionManagerConfig {
  std::string listener_name;
  Router::RouteTableConstSharedPtr route_table;
  std::vector<FilterFactoryCb> filter_factories;
  CodecSettings codec;
  std::chrono::milliseconds request_headers_timeout{30000};
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds request_timeout{0};
  std::chrono::milliseconds stream_idle_timeout{300000};
  uint32_t buffer_limit = 32 * 1024;
  std::string scheme = "http";
  AccessLog::FileSinkSharedPtr access_log;
  // Query parameters whose values the access log replaces with "REDACTED".
  std::vector<std::string> redact_query_params;
  // StreamInfo::original_path is kept for every stream (a filter logs it), besides for the
  // access log.
  bool keep_original_path = false;
  // Path normalisation before routing.
  Path::NormalizeOptions path;
  UnderscoreHeadersAction underscores = UnderscoreHeadersAction::Drop;
  // The listener's `gateway_responses`: its own replies reshaped per type (a virtual host's
  // win). Null when it has none; with none here nor in the route table, a local reply costs
  // nothing more than before.
  GatewayResponsesConstSharedPtr gateway_responses;
  bool allow_trace = false;
  // Request bodies are held (up to request_buffer_bytes, for at most request_body_timeout)
  // before the router takes an upstream connection.
  bool request_buffering = true;
  uint32_t request_buffer_bytes = 64 * 1024;
  std::chrono::milliseconds request_body_timeout{60000};
  // x-forwarded-client-cert (Envoy's XFCC): a client's own header is always removed; with
  // set_client_cert, a verified client certificate's details are written (Hash, and By for our
  // URI SANs, always; the others when set).
  struct ClientCertDetails {
    bool set = false;
    bool subject = false;
    bool uri = false;
    bool dns = false;
    bool cert = false;
  };
  ClientCertDetails client_cert_details;
  // W3C Trace Context; null = off (traceparent passes through untouched).
  std::shared_ptr<const TracingConfig> tracing;
  // `metrics.per_consumer`: the process's per-consumer counters (null = off) and their cap.
  std::shared_ptr<Stats::ConsumerStats> consumer_stats;
  uint32_t max_consumers = 100;
  // Makes each connection's codec; empty = HTTP/1 (createServerConnection in codec_factory.h).
  // Where an HTTP/2 listener (later) and tests plug in their codec.
  std::function<ServerConnectionPtr(Network::Connection&, ServerConnectionCallbacks&,
                                    const CodecSettings&)>
      codec_factory;
};
using ConnectionManagerConfigConstSharedPtr = std::shared_ptr<const ConnectionManagerConfig>;

}  // namespace Http
}  // namespace sluice
