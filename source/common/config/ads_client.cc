#include "source/common/config/ads_client.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "grpcpp/grpcpp.h"
#include "sluice/config/v1/bootstrap.pb.h"
#include "sluice/service/discovery/v1/ads.grpc.pb.h"
#include "source/common/config/resource_lists.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace Config {

namespace discovery = sluice::service::discovery::v1;

const std::vector<std::string>& resourceTypeUrls() {
  static const std::vector<std::string>* urls = [] {
    auto* out = new std::vector<std::string>();
    for (const auto* list : resourceLists()) out->push_back(typeUrlOf(*list));
    return out;
  }();
  return *urls;
}

std::string shortTypeName(const std::string& type_url) {
  const size_t dot = type_url.rfind('.');
  return dot == std::string::npos ? type_url : type_url.substr(dot + 1);
}

// One gRPC stream (callback API). gRPC calls the On* methods on its own threads; they only
// hand messages to the main dispatcher. Writes are queued, one in flight at a time. The object
// outlives the call: the main thread deletes it after OnDone (or waits for OnDone at shutdown).
class AdsStreamBase {
 public:
  virtual ~AdsStreamBase() = default;
  // Cancels the call and blocks until gRPC is done with it.
  virtual void cancelAndWait() = 0;
};

template <class Request, class Response>
class AdsStream : public AdsStreamBase, public grpc::ClientBidiReactor<Request, Response> {
 public:
  using Deliver = std::function<void(std::shared_ptr<Response>)>;
  using Closed = std::function<void(grpc::Status)>;
  using Established = std::function<void()>;

  AdsStream(Deliver deliver, Closed closed, Established established)
      : deliver_(std::move(deliver)),
        closed_(std::move(closed)),
        established_(std::move(established)) {}

  grpc::ClientContext& context() { return context_; }
  void begin() {
    this->StartRead(&incoming_);
    this->StartCall();
  }
  void send(Request request) {
    std::lock_guard<std::mutex> lock(mu_);
    if (done_) return;
    queue_.push_back(std::move(request));
    if (!writing_) {
      writing_ = true;
      this->StartWrite(&queue_.front());
    }
  }
  void cancelAndWait() override {
    context_.TryCancel();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return done_; });
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.pop_front();
    if (ok && !queue_.empty() && !done_) {
      this->StartWrite(&queue_.front());
    } else {
      writing_ = false;
    }
  }
  // The server's initial metadata: the stream is up even if no response follows (a client
  // that resumes with current versions gets none).
  void OnReadInitialMetadataDone(bool ok) override {
    if (ok) established_();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    auto message = std::make_shared<Response>();
    message->Swap(&incoming_);
    deliver_(std::move(message));
    this->StartRead(&incoming_);
  }
  void OnDone(const grpc::Status& status) override {
    Closed closed = closed_;
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
      queue_.clear();
    }
    cv_.notify_all();
    closed(status);  // last touch of `this` by gRPC
  }

 private:
  Deliver deliver_;
  Closed closed_;
  Established established_;
  grpc::ClientContext context_;
  Response incoming_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Request> queue_;
  bool writing_ = false;
  bool done_ = false;
};

using SotwStream = AdsStream<discovery::DiscoveryRequest, discovery::DiscoveryResponse>;
using DeltaStream = AdsStream<discovery::DeltaDiscoveryRequest, discovery::DeltaDiscoveryResponse>;

AdsClient::AdsClient(Event::Dispatcher& main, AdsOptions options, AdsCallbacks& callbacks,
                     Stats::Store* stats)
    : main_(main), options_(std::move(options)), callbacks_(callbacks) {
  for (const std::string& t : resourceTypeUrls()) types_[t];
  if (stats != nullptr) {
    connected_gauge_ = &stats->gauge("control_plane.connected", "control_plane_connected");
    stream_opened_ =
        &stats->counter("control_plane.stream_opened", "control_plane_stream_opened_total");
    stream_closed_ =
        &stats->counter("control_plane.stream_closed", "control_plane_stream_closed_total");
    for (const std::string& t : resourceTypeUrls()) {
      const std::string n = shortTypeName(t);
      accepted_stat_[t] = &stats->counter(absl::StrCat("control_plane.", n, ".update_accepted"),
                                          "control_plane_update_accepted_total", {{"type", n}});
      rejected_stat_[t] = &stats->counter(absl::StrCat("control_plane.", n, ".update_rejected"),
                                          "control_plane_update_rejected_total", {{"type", n}});
    }
  }
  newChannel();
  retry_timer_ = main_.createTimer([this]() { connect(); });
}

void AdsClient::newChannel() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(256 * 1024 * 1024);
  args.SetMaxSendMessageSize(64 * 1024 * 1024);
  // Reconnects follow our own jittered backoff (onClosed), not gRPC's (x1.6, +-20 %, which can
  // pass max_retry_interval): every attempt after a failure gets a channel of its own, with a
  // subchannel of its own (not shared through gRPC's global pool), which connects at once. The
  // channel's own reconnect backoff is set far beyond ours so it never dials in between.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  const int never = static_cast<int>(
      std::min<int64_t>(std::max<int64_t>(options_.max_retry_interval.count() * 10, 60000),
                        std::numeric_limits<int>::max()));
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, never);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, never);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, never);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (options_.tls.has_value()) {
    credentials = grpcChannelCredentials(*options_.tls);
    if (!options_.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(options_.tls_server_name);
    }
  }
  channel_ = grpc::CreateCustomChannel(options_.address, credentials, args);
}

AdsClient::~AdsClient() {
  shutting_down_ = true;
  if (stream_ != nullptr) {
    stream_->cancelAndWait();
    stream_.reset();
  }
}

bool AdsClient::initialized() const {
  for (const auto& [t, s] : types_) {
    if (!s.received) return false;
  }
  return true;
}

void AdsClient::start() { connect(); }

void AdsClient::setConnected(bool c) {
  if (c == connected_) return;
  connected_ = c;
  if (connected_gauge_ != nullptr) connected_gauge_->add(c ? 1 : -1);
}

void AdsClient::connect() {
  if (shutting_down_) return;
  const uint64_t id = ++stream_id_;
  sent_node_ = false;
  if (reconnects_ > 0) {
    newChannel();  // the last stream failed or broke: dial afresh, now
  }
  if (stream_opened_ != nullptr) stream_opened_->inc();
  auto channel = std::static_pointer_cast<grpc::Channel>(channel_);
  auto stub = discovery::AggregatedDiscoveryService::NewStub(channel);
  // Posted callbacks may outlive a stream (not the client: it is destroyed after the main loop
  // has stopped running them), so they carry the stream id and stale ones are dropped.
  auto closed = [this, id](grpc::Status status) {
    main_.post([this, id, code = static_cast<int>(status.error_code()),
                message = status.error_message()]() { onClosed(id, code, message); });
  };
  auto established = [this, id]() {
    main_.post([this, id]() {
      if (id == stream_id_ && stream_ != nullptr) onStreamUp();
    });
  };
  auto request_for = [this](const std::string& type_url) {
    const TypeState& st = types_[type_url];
    discovery::DiscoveryRequest r;
    r.set_type_url(type_url);
    r.set_version_info(st.version);  // resume: an unchanged type is not sent again
    return r;
  };
  if (!options_.delta) {
    auto* s = new SotwStream(
        [this, id](std::shared_ptr<discovery::DiscoveryResponse> m) {
          main_.post([this, id, m]() { onSotwResponse(id, *m); });
        },
        closed, established);
    stream_.reset(s);
    stub->async()->StreamAggregatedResources(&s->context(), s);
    for (const std::string& t : resourceTypeUrls()) {
      discovery::DiscoveryRequest r = request_for(t);
      if (!sent_node_) {
        *r.mutable_node() = options_.node;
        sent_node_ = true;
      }
      s->send(std::move(r));
    }
    s->begin();
  } else {
    auto* s = new DeltaStream(
        [this, id](std::shared_ptr<discovery::DeltaDiscoveryResponse> m) {
          main_.post([this, id, m]() { onDeltaResponse(id, *m); });
        },
        closed, established);
    stream_.reset(s);
    stub->async()->DeltaAggregatedResources(&s->context(), s);
    for (const std::string& t : resourceTypeUrls()) {
      discovery::DeltaDiscoveryRequest r;
      r.set_type_url(t);
      if (!sent_node_) {
        *r.mutable_node() = options_.node;
        sent_node_ = true;
      }
      for (const auto& [name, res] : types_[t].resources) {
        (*r.mutable_initial_resource_versions())[name] = res.version;
      }
      s->send(std::move(r));
    }
    s->begin();
  }
}

void AdsClient::onStreamUp() {
  if (!connected_) {
    spdlog::info("control plane {}: connected ({}{})", options_.address,
                 options_.delta ? "delta" : "state of the world",
                 options_.tls.has_value() ? ", TLS" : "");
  }
  setConnected(true);
  backoff_ = std::chrono::milliseconds(0);
}

void AdsClient::onClosed(uint64_t stream_id, int code, const std::string& message) {
  if (stream_id != stream_id_ || shutting_down_) return;
  stream_.reset();  // gRPC is done with it (OnDone ran)
  if (stream_closed_ != nullptr) stream_closed_->inc();
  const bool was_connected = connected_;
  setConnected(false);
  // Jittered exponential backoff: 50-100% of the current step.
  backoff_ = backoff_.count() == 0 ? options_.retry_interval
                                   : std::min(backoff_ * 2, options_.max_retry_interval);
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const auto wait = std::chrono::milliseconds(
      backoff_.count() / 2 + static_cast<int64_t>(rng() % (backoff_.count() / 2 + 1)));
  if (was_connected) {
    spdlog::warn(
        "control plane {}: stream closed (code {}: {}); serving the last config, "
        "reconnecting in {} ms",
        options_.address, code, message, wait.count());
  } else if (message != last_failure_) {
    // Said once per reason (a failed TLS handshake names why), then at debug level. A server
    // that refuses our certificate just closes the connection after the handshake.
    const bool refused = options_.tls.has_value() && absl::StrContains(message, "Socket closed");
    spdlog::warn("control plane {}: unavailable (code {}: {}{}); retrying in {} ms",
                 options_.address, code, message,
                 refused ? "; over TLS this is sluice-cp refusing the connection, most likely "
                           "our client certificate (missing, or not signed by its --client-ca)"
                         : "",
                 wait.count());
  } else {
    spdlog::debug("control plane {}: unavailable (code {}: {}); retrying in {} ms",
                  options_.address, code, message, wait.count());
  }
  last_failure_ = was_connected ? "" : message;
  ++reconnects_;
  retry_timer_->enableTimer(wait);
}

std::string AdsClient::apply(const std::string& type_url, const ResourceSet& candidate,
                             const std::string& version,
                             const std::vector<std::string>& decode_errors) {
  TypeState& st = types_[type_url];
  st.received = true;
  st.last_update = std::chrono::system_clock::now();
  absl::Status s = decode_errors.empty()
                       ? callbacks_.onConfigUpdate(type_url, candidate, version)
                       : absl::InvalidArgumentError(absl::StrJoin(decode_errors, "\n"));
  if (s.ok()) {
    st.version = version;
    st.resources = candidate;
    st.last_error.clear();
    st.rejected_version.clear();
    ++st.accepted;
    if (auto it = accepted_stat_.find(type_url); it != accepted_stat_.end()) it->second->inc();
    spdlog::info("control plane: {} version {} accepted ({} resources)", shortTypeName(type_url),
                 version, candidate.size());
    return "";
  }
  st.last_error = std::string(s.message());
  st.rejected_version = version;
  ++st.rejected;
  if (auto it = rejected_stat_.find(type_url); it != rejected_stat_.end()) it->second->inc();
  spdlog::error("control plane: {} version {} rejected, version {} keeps serving:\n{}",
                shortTypeName(type_url), version, st.version.empty() ? "(none)" : st.version,
                st.last_error);
  return st.last_error.empty() ? "rejected" : st.last_error;
}

void AdsClient::onSotwResponse(uint64_t stream_id, const discovery::DiscoveryResponse& response) {
  if (stream_id != stream_id_ || stream_ == nullptr) return;
  onStreamUp();
  const std::string& type_url = response.type_url();
  discovery::DiscoveryRequest reply;
  reply.set_type_url(type_url);
  reply.set_response_nonce(response.nonce());
  if (types_.find(type_url) == types_.end()) {
    reply.mutable_error_detail()->set_code(static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
    reply.mutable_error_detail()->set_message(absl::StrCat("unknown type_url \"", type_url, "\""));
    static_cast<SotwStream*>(stream_.get())->send(std::move(reply));
    return;
  }
  ResourceSet candidate;
  std::vector<std::string> errors;
  for (const google::protobuf::Any& any : response.resources()) {
    if (any.type_url() != type_url) {
      errors.push_back(
          absl::StrCat("a resource of type \"", any.type_url(), "\" in a response for ", type_url));
      continue;
    }
    auto name = callbacks_.resourceName(type_url, any);
    if (!name.ok()) {
      errors.push_back(std::string(name.status().message()));
      continue;
    }
    if (candidate.count(*name) != 0) {
      errors.push_back(absl::StrCat(shortTypeName(type_url), " \"", *name, "\": sent twice"));
      continue;
    }
    candidate[*name].resource = any;
  }
  const std::string error = apply(type_url, candidate, response.version_info(), errors);
  // ACK: the new version; NACK: the version still running, and why.
  reply.set_version_info(types_[type_url].version);
  if (!error.empty()) {
    reply.mutable_error_detail()->set_code(static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
    reply.mutable_error_detail()->set_message(error);
  }
  static_cast<SotwStream*>(stream_.get())->send(std::move(reply));
}

void AdsClient::onDeltaResponse(uint64_t stream_id,
                                const discovery::DeltaDiscoveryResponse& response) {
  if (stream_id != stream_id_ || stream_ == nullptr) return;
  onStreamUp();
  const std::string& type_url = response.type_url();
  discovery::DeltaDiscoveryRequest reply;
  reply.set_type_url(type_url);
  reply.set_response_nonce(response.nonce());
  auto it = types_.find(type_url);
  if (it == types_.end()) {
    reply.mutable_error_detail()->set_code(static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
    reply.mutable_error_detail()->set_message(absl::StrCat("unknown type_url \"", type_url, "\""));
    static_cast<DeltaStream*>(stream_.get())->send(std::move(reply));
    return;
  }
  ResourceSet candidate = it->second.resources;
  std::vector<std::string> errors;
  for (const std::string& name : response.removed_resources()) candidate.erase(name);
  for (const discovery::Resource& r : response.resources()) {
    if (r.resource().type_url() != type_url) {
      errors.push_back(absl::StrCat("resource \"", r.name(), "\" has type \"",
                                    r.resource().type_url(), "\" in a response for ", type_url));
      continue;
    }
    auto name = callbacks_.resourceName(type_url, r.resource());
    if (!name.ok()) {
      errors.push_back(std::string(name.status().message()));
      continue;
    }
    if (!r.name().empty() && r.name() != *name) {
      errors.push_back(absl::StrCat("resource \"", r.name(), "\" holds a ", shortTypeName(type_url),
                                    " named \"", *name, "\""));
      continue;
    }
    candidate[*name] = ReceivedResource{r.version(), r.resource()};
  }
  const std::string error = apply(type_url, candidate, response.system_version_info(), errors);
  if (!error.empty()) {
    reply.mutable_error_detail()->set_code(static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
    reply.mutable_error_detail()->set_message(error);
  }
  static_cast<DeltaStream*>(stream_.get())->send(std::move(reply));
}

}  // namespace Config
}  // namespace sluice
