#pragma once

// The server side of one ADS stream, shared by Sluice's own discovery service and the Envoy v3
// one proxyless gRPC clients use (the protocol type decides the messages and the resources).

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "envoy/config/core/v3/base.pb.h"
#include "grpcpp/grpcpp.h"
#include "sluice/config/v1/bootstrap.pb.h"
#include "source/control_plane/mesh_resources.h"
#include "source/control_plane/node_registry.h"
#include "source/control_plane/snapshot_cache.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace ControlPlane {

// A stream, as the services see it.
class DiscoveryStream {
 public:
  virtual ~DiscoveryStream() = default;
  // Sends what changed in the stream's group config since it was last pushed. Any thread.
  virtual void push() = 0;
};
using DiscoveryStreamSharedPtr = std::shared_ptr<DiscoveryStream>;

// What streams need from the service that accepted them: the configs they serve, the registry
// they report to, the clock, and the set of open streams pushes go to. Thread-safe.
class StreamHost {
 public:
  using Clock = std::function<absl::Time()>;

  // `mesh`: the proxyless translation (nullptr when the host serves no proxyless streams).
  StreamHost(const SnapshotCache& cache, const MeshCache* mesh, NodeRegistry& registry, Clock clock)
      : cache_(cache), mesh_(mesh), registry_(registry), clock_(std::move(clock)) {}
  virtual ~StreamHost() = default;

  const SnapshotCache& cache() const { return cache_; }
  GroupSnapshotConstSharedPtr groupSnapshot(const std::string& group) const {
    return cache_.effective(group);
  }
  MeshSnapshotConstSharedPtr meshSnapshot(const std::string& group) const {
    return mesh_ == nullptr ? nullptr : mesh_->get(cache_.effective(group));
  }
  NodeRegistry& registry() { return registry_; }
  absl::Time now() const { return clock_(); }

  // Pushes the current config to every open stream (each sends only what changed for it).
  void pushAll();
  size_t streamCount() const;
  void add(uint64_t id, DiscoveryStreamSharedPtr stream);
  void remove(uint64_t id);

 private:
  const SnapshotCache& cache_;
  const MeshCache* const mesh_;
  NodeRegistry& registry_;
  const Clock clock_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, DiscoveryStreamSharedPtr> streams_ ABSL_GUARDED_BY(mu_);
};

template <class Snapshot>
std::shared_ptr<const Snapshot> snapshotOf(const StreamHost& host, const std::string& group);
template <>
inline GroupSnapshotConstSharedPtr snapshotOf<GroupSnapshot>(const StreamHost& host,
                                                             const std::string& group) {
  return host.groupSnapshot(group);
}
template <>
inline MeshSnapshotConstSharedPtr snapshotOf<MeshSnapshot>(const StreamHost& host,
                                                           const std::string& group) {
  return host.meshSnapshot(group);
}

// A Sluice data plane's identity from its first request: node id (the peer address when
// empty), group = node.cluster (else "default").
NodeRecord identifyNode(const sluice::config::v1::Node& node, const std::string& peer,
                        const std::string& grpc_user_agent);
// A proxyless gRPC client's (MeshProtocolBase::identify).
NodeRecord identifyNode(const envoy::config::core::v3::Node& node, const std::string& peer,
                        const std::string& grpc_user_agent);

// One data-plane stream. Owned by itself from creation until OnDone (self_), and by the
// service's stream map while registered; whoever pushes holds a reference, so a push racing a
// disconnect finds `finished_` set rather than a freed object.
//
// Locking: mu_ guards the protocol state and the queue. gRPC operations (StartWrite, Finish)
// are started after mu_ is released; `writing_` (set under mu_) makes sure only one thread
// starts the next write, and the message in flight lives apart from the queue, which may be
// reordered meanwhile. Lock order: mu_, then the cache's and the registry's locks.
template <class Protocol>
class AdsStream final
    : public grpc::ServerBidiReactor<typename Protocol::Request, typename Protocol::Response>,
      public DiscoveryStream {
 public:
  using Request = typename Protocol::Request;
  using Response = typename Protocol::Response;

  static AdsStream* start(StreamHost& service, grpc::CallbackServerContext* context) {
    auto stream = std::make_shared<AdsStream>(service, context);
    stream->self_ = stream;
    service.add(stream->id_, stream);
    // Headers at once, not with the first response: a data plane that resumes with current
    // versions gets no response, and still needs to see that its stream is up.
    stream->StartSendInitialMetadata();
    stream->StartRead(&stream->request_);
    return stream.get();
  }

  AdsStream(StreamHost& service, grpc::CallbackServerContext* context)
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
      auto snapshot = snapshotOf<typename Protocol::Snapshot>(service_, group_);
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
    std::shared_ptr<AdsStream> self;
    std::string node_id, group, label;
    {
      absl::MutexLock lock(&mu_);
      finished_ = true;
      queue_.clear();
      node_id = node_id_;
      group = group_;
      label = label_;
      self = std::move(self_);
    }
    if (!node_id.empty()) {
      service_.registry().disconnected(id_, node_id, service_.now());
      spdlog::info("{} \"{}\" disconnected ({}, group \"{}\", peer {})", label, node_id,
                   Protocol::kApi, group, peer_);
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
      auto snapshot = snapshotOf<typename Protocol::Snapshot>(service_, group_);
      next = enqueueLocked(protocol_.onSnapshot(snapshot.get()));
      service_.registry().update(id_, node_id_, protocol_.progress(), service_.now());
    }
    if (next != nullptr) {
      this->StartWrite(next);
    }
  }

 private:
  void identifyLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    NodeRecord record = identifyNode(request_.node(), peer_, grpc_user_agent_);
    if (request_.node().id().empty()) {
      spdlog::warn("stream from {} sent no node id; using the peer address", peer_);
    }
    node_id_ = record.id;
    group_ = record.group;
    label_ = record.kind == "grpc" ? "proxyless node" : "node";
    protocol_.setNode(node_id_, group_);
    record.api = Protocol::kApi;
    record.connected_since = now;
    record.last_seen = now;
    record.stream_id = id_;
    spdlog::info("{} \"{}\" connected ({}, group \"{}\", peer {}, {})", label_, node_id_,
                 Protocol::kApi, group_, peer_,
                 record.client.empty() ? record.user_agent : record.client);
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

  StreamHost& service_;
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
  std::string label_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<AdsStream> self_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ControlPlane
}  // namespace sluice
