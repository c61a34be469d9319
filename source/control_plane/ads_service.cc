#include "source/control_plane/ads_service.h"

#include <deque>
#include <vector>

#include "absl/strings/str_cat.h"
#include "source/control_plane/stream_protocol.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace ControlPlane {
namespace {

// One data-plane stream. Owned by itself from creation until OnDone (self_), and by the
// service's stream map while registered; whoever pushes holds a reference, so a push racing a
// disconnect finds `finished_` set rather than a freed object.
//
// Locking: mu_ guards the protocol state and the queue. gRPC operations (StartWrite, Finish)
// are started after mu_ is released; `writing_` (set under mu_) makes sure only one thread
// starts the next write, and the message in flight lives apart from the queue, which may be
// reordered meanwhile. Lock order: mu_, then the cache's and the registry's locks.
template <class Protocol>
class Stream final
    : public grpc::ServerBidiReactor<typename Protocol::Request, typename Protocol::Response>,
      public DiscoveryStream {
 public:
  using Request = typename Protocol::Request;
  using Response = typename Protocol::Response;

  static Stream* start(AdsService& service, grpc::CallbackServerContext* context) {
    auto stream = std::make_shared<Stream>(service, context);
    stream->self_ = stream;
    service.add(stream->id_, stream);
    // Headers at once, not with the first response: a data plane that resumes with current
    // versions gets no response, and still needs to see that its stream is up.
    stream->StartSendInitialMetadata();
    stream->StartRead(&stream->request_);
    return stream.get();
  }

  Stream(AdsService& service, grpc::CallbackServerContext* context)
      : service_(service), id_(service.registry().newStreamId()), peer_(context->peer()) {
    auto ua = context->client_metadata().find("user-agent");
    if (ua != context->client_metadata().end()) {
      grpc_user_agent_ = std::string(ua->second.data(), ua->second.size());
    }
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // Half-close by the client, cancellation or a broken connection.
      bool finish = false;
      {
        absl::MutexLock lock(&mu_);
        read_closed_ = true;
        finish = finishIfIdleLocked();
      }
      if (finish) {
        this->Finish(grpc::Status::OK);
      }
      return;
    }
    const Response* next = nullptr;
    {
      absl::MutexLock lock(&mu_);
      const absl::Time now = service_.now();
      if (node_id_.empty()) {
        identifyLocked(now);
      }
      auto snapshot = service_.cache().effective(group_);
      std::vector<Response> out = protocol_.onRequest(request_, snapshot.get(), now);
      // Anything published while this request was on its way.
      for (Response& r : protocol_.onSnapshot(snapshot.get())) {
        out.push_back(std::move(r));
      }
      next = enqueueLocked(std::move(out));
      service_.registry().update(id_, node_id_, protocol_.progress(), now);
    }
    if (next != nullptr) {
      this->StartWrite(next);
    }
    this->StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    const Response* next = nullptr;
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      if (!ok) {
        // The stream is broken; the read side ends it.
        queue_.clear();
        broken_ = true;
      }
      if (!queue_.empty() && !finished_) {
        next = startNextLocked();
      } else {
        in_flight_.Clear();
        writing_ = false;
        finish = finishIfIdleLocked();
      }
    }
    if (next != nullptr) {
      this->StartWrite(next);
    } else if (finish) {
      this->Finish(grpc::Status::OK);
    }
  }

  void OnDone() override {
    std::shared_ptr<Stream> self;
    std::string node_id, group;
    {
      absl::MutexLock lock(&mu_);
      finished_ = true;
      queue_.clear();
      node_id = node_id_;
      group = group_;
      self = std::move(self_);
    }
    if (!node_id.empty()) {
      service_.registry().disconnected(id_, node_id, service_.now());
      spdlog::info("node \"{}\" disconnected ({}, group \"{}\", peer {})", node_id, Protocol::kApi,
                   group, peer_);
    }
    service_.remove(id_);
    // `self` may be the last reference: it goes last, and nothing runs after it.
  }

  void push() override {
    const Response* next = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (node_id_.empty() || finished_ || broken_) {
        return;
      }
      auto snapshot = service_.cache().effective(group_);
      next = enqueueLocked(protocol_.onSnapshot(snapshot.get()));
      service_.registry().update(id_, node_id_, protocol_.progress(), service_.now());
    }
    if (next != nullptr) {
      this->StartWrite(next);
    }
  }

 private:
  void identifyLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const auto& node = request_.node();
    node_id_ = node.id();
    if (node_id_.empty()) {
      node_id_ = peer_;
      spdlog::warn("stream from {} sent no node id; using the peer address", peer_);
    }
    group_ = node.cluster().empty() ? kDefaultGroup : node.cluster();
    protocol_.setNode(node_id_, group_);
    NodeRecord record;
    record.id = node_id_;
    record.group = group_;
    record.api = Protocol::kApi;
    record.peer = peer_;
    record.user_agent = node.user_agent().empty() ? grpc_user_agent_ : node.user_agent();
    record.connected_since = now;
    record.last_seen = now;
    record.stream_id = id_;
    spdlog::info("node \"{}\" connected ({}, group \"{}\", peer {}, {})", node_id_, Protocol::kApi,
                 group_, peer_, record.user_agent);
    service_.registry().connected(std::move(record));
  }

  // Queues `responses`; returns the response to start writing when no write is in flight.
  const Response* enqueueLocked(std::vector<Response> responses)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (responses.empty() || finished_ || broken_ || read_closed_) {
      return nullptr;
    }
    Protocol::enqueue(queue_, std::move(responses));
    if (writing_) {
      return nullptr;
    }
    writing_ = true;
    return startNextLocked();
  }

  // Moves the front of the queue in flight. The in-flight message keeps its address until
  // OnWriteDone, whatever happens to the queue meanwhile.
  const Response* startNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    in_flight_ = std::move(queue_.front());
    queue_.pop_front();
    return &in_flight_;
  }

  // Whether the caller is to Finish: the client is done reading, nothing is being written, and
  // Finish was not called yet.
  bool finishIfIdleLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!read_closed_ || writing_ || finish_called_) {
      return false;
    }
    finish_called_ = true;
    finished_ = true;
    return true;
  }

  AdsService& service_;
  const uint64_t id_;
  const std::string peer_;
  std::string grpc_user_agent_;
  // Only the read path touches it (one read in flight).
  Request request_;

  absl::Mutex mu_;
  Protocol protocol_ ABSL_GUARDED_BY(mu_);
  // Waiting to be written, front first.
  std::deque<Response> queue_ ABSL_GUARDED_BY(mu_);
  // The message being written (gRPC reads it until OnWriteDone): assigned under mu_ only while
  // no write is in flight.
  Response in_flight_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool read_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  // No more writes may start (Finish called or OnDone ran).
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  // Set once by the read path (under mu_), then read by push() under mu_.
  std::string node_id_ ABSL_GUARDED_BY(mu_);
  std::string group_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<Stream> self_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

AdsService::AdsService(const SnapshotCache& cache, NodeRegistry& registry, Clock clock)
    : cache_(cache), registry_(registry), clock_(std::move(clock)) {}

grpc::ServerBidiReactor<sluice::service::discovery::v1::DiscoveryRequest,
                        sluice::service::discovery::v1::DiscoveryResponse>*
AdsService::StreamAggregatedResources(grpc::CallbackServerContext* context) {
  return Stream<SotwProtocol>::start(*this, context);
}

grpc::ServerBidiReactor<sluice::service::discovery::v1::DeltaDiscoveryRequest,
                        sluice::service::discovery::v1::DeltaDiscoveryResponse>*
AdsService::DeltaAggregatedResources(grpc::CallbackServerContext* context) {
  return Stream<DeltaProtocol>::start(*this, context);
}

void AdsService::add(uint64_t id, DiscoveryStreamSharedPtr stream) {
  absl::MutexLock lock(&mu_);
  streams_[id] = std::move(stream);
}

void AdsService::remove(uint64_t id) {
  DiscoveryStreamSharedPtr stream;
  {
    absl::MutexLock lock(&mu_);
    auto it = streams_.find(id);
    if (it == streams_.end()) {
      return;
    }
    stream = std::move(it->second);
    streams_.erase(it);
  }
  // Released outside mu_ (it may be the last reference).
}

void AdsService::pushAll() {
  std::vector<DiscoveryStreamSharedPtr> streams;
  {
    absl::MutexLock lock(&mu_);
    streams.reserve(streams_.size());
    for (const auto& [id, s] : streams_) {
      streams.push_back(s);
    }
  }
  for (const auto& s : streams) {
    s->push();
  }
}

size_t AdsService::streamCount() const {
  absl::MutexLock lock(&mu_);
  return streams_.size();
}

}  // namespace ControlPlane
}  // namespace sluice
