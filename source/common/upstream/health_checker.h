#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <random>
#include <string>

#include "source/common/event/dispatcher.h"
#include "source/common/http/codec.h"
#include "source/common/network/connection.h"
#include "source/common/upstream/cluster.h"

namespace sluice {
namespace Upstream {

// Active health checking of one endpoint: a check every `interval` (+ jitter) on the main
// thread's dispatcher, never blocking it. TCP: a connection established within `timeout` is a
// success. HTTP: `GET http_path` with Host `host`; a response whose status is expected, complete
// within `timeout`, is a success. The HTTP connection is kept alive between checks when the
// endpoint allows it. Main thread only.
class HealthCheckSession : public Network::ConnectionCallbacks,
                           public Http::ResponseDecoder,
                           public Http::StreamCallbacks {
 public:
  // Called with each check's result: success, or the reason it failed.
  using ResultCb =
      std::function<void(EndpointState& endpoint, bool healthy, const std::string& failure)>;

  HealthCheckSession(Event::Dispatcher& dispatcher, std::shared_ptr<const HealthCheckConfig> config,
                     Network::Address address, EndpointStateSharedPtr endpoint, ResultCb on_result,
                     uint64_t seed);
  ~HealthCheckSession() override;

  // Schedules the first check after `delay`.
  void start(std::chrono::milliseconds delay);
  const EndpointStateSharedPtr& endpoint() const { return endpoint_; }

  // Network::ConnectionCallbacks
  void onData(Buffer::Instance& data, bool end_stream) override;
  void onEvent(Network::ConnectionEvent event) override;
  // Http::ResponseDecoder
  void decodeHeaders(Http::ResponseHeaderMapPtr&& headers, bool end_stream) override;
  void decodeData(Buffer::Instance& data, bool end_stream) override;
  void decodeTrailers(Http::HeaderMapPtr&& trailers) override;
  // Http::StreamCallbacks
  void onResetStream(Http::StreamResetReason reason) override;
  void onAboveWriteBufferHighWatermark() override {}
  void onBelowWriteBufferLowWatermark() override {}

 private:
  void startCheck();
  void sendRequest();
  // Ends the check in flight (if any) and schedules the next one.
  void finish(bool healthy, const std::string& failure);
  // Closes the connection and hands it (and its codec) to the dispatcher for deletion.
  void closeConnection();

  Event::Dispatcher& dispatcher_;
  std::shared_ptr<const HealthCheckConfig> config_;
  Network::Address address_;
  EndpointStateSharedPtr endpoint_;
  ResultCb on_result_;
  std::mt19937_64 rng_;
  Event::TimerPtr interval_timer_;
  Event::TimerPtr timeout_timer_;
  Network::ConnectionPtr connection_;
  Http::ClientConnectionPtr codec_;
  Http::RequestHeaderMap request_;
  bool in_check_ = false;
  bool connected_ = false;
  uint32_t status_ = 0;
};
using HealthCheckSessionPtr = std::unique_ptr<HealthCheckSession>;

}  // namespace Upstream
}  // namespace sluice
