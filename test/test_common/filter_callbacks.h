#pragma once

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>

#include "source/common/event/dispatcher.h"
#include "source/common/http/filter.h"
#include "source/common/upstream/cluster_manager.h"

namespace sluice {
namespace Testing {

// A filter's view of its stream for tests of one filter alone: both callback interfaces, with
// what the filter asked for recorded (local replies, continues, data it added). Tests that need
// more (a response that flows back through the filter) override the virtual calls.
class FakeFilterCallbacks : public Http::StreamDecoderFilterCallbacks,
                            public Http::StreamEncoderFilterCallbacks {
 public:
  explicit FakeFilterCallbacks(Event::Dispatcher& d, Upstream::ClusterManager* cm = nullptr)
      : dispatcher_(d), cm_(cm) {}

  Event::Dispatcher& dispatcher() override { return dispatcher_; }
  Http::StreamInfo& streamInfo() override { return info; }
  const Router::RouteEntry* route() override { return route_entry; }
  Upstream::ClusterManager& clusterManager() override {
    if (cm_ == nullptr) abort();  // the test gave none: the filter was not expected to ask
    return *cm_;
  }
  absl::string_view downstreamAddress() override { return "10.0.0.1"; }
  void resetStream() override { ++resets; }
  uint32_t bufferLimit() override { return 1 << 20; }
  const Http::ResponseHeaderMap* responseHeaders() override { return response_headers; }
  void continueDecoding() override { ++continued_decoding; }
  using Http::StreamDecoderFilterCallbacks::sendLocalReply;
  void sendLocalReply(uint32_t status, absl::string_view message,
                      absl::optional<Http::ResponseFlag> flag,
                      std::function<void(Http::ResponseHeaderMap&)>,
                      absl::optional<Http::GatewayResponseType> type = absl::nullopt) override {
    local_status = status;
    local_message = std::string(message);
    local_type = type;
    if (flag) info.addFlag(*flag);
  }
  void encodeHeaders(Http::ResponseHeaderMapPtr&&, bool) override {}
  void encodeData(Buffer::Instance&, bool) override {}
  void encodeTrailers(Http::HeaderMapPtr&&) override {}
  bool responseStarted() const override { return false; }
  void onDecoderFilterAboveWriteBufferHighWatermark() override {}
  void onDecoderFilterBelowWriteBufferLowWatermark() override {}
  void addDownstreamWatermarkCallbacks(Http::DownstreamWatermarkCallbacks&) override {}
  void removeDownstreamWatermarkCallbacks(Http::DownstreamWatermarkCallbacks&) override {}
  Http::RequestHeaderMap& requestHeaders() override { return request; }
  void sendContinueIfExpected() override {}
  void addDecodedData(Buffer::Instance& data) override {
    added_decoded += data.toString();
    data.drain(data.length());
  }
  void continueEncoding() override { ++continued_encoding; }
  void addEncodedData(Buffer::Instance& data) override {
    added += data.toString();
    data.drain(data.length());
  }

  Http::StreamInfo info;
  Http::RequestHeaderMap request;
  const Http::ResponseHeaderMap* response_headers = nullptr;
  const Router::RouteEntry* route_entry = nullptr;
  uint32_t local_status = 0;
  std::string local_message;
  absl::optional<Http::GatewayResponseType> local_type;
  int continued_decoding = 0;
  int continued_encoding = 0;
  int resets = 0;
  std::string added;          // addEncodedData
  std::string added_decoded;  // addDecodedData

 private:
  Event::Dispatcher& dispatcher_;
  Upstream::ClusterManager* cm_;
};

}  // namespace Testing
}  // namespace sluice
