#pragma once

#include <list>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "source/common/event/dispatcher.h"
#include "source/common/upstream/cluster.h"
#include "source/common/upstream/conn_pool.h"
#include "source/common/upstream/load_balancer.h"

namespace sluice {
namespace Upstream {

// A worker's view of one cluster: its load balancer state and connection pools. Worker-local;
// requests hold a shared_ptr so a config change never frees a pool under an in-flight request.
// A request waiting on this worker for one of the cluster's `max_requests` slots: a burst over
// the breaker queues (bounded by `max_queued_requests`, for at most `queue_timeout`) instead of
// being refused. Worker-local.
class SlotWaiter {
 public:
  virtual ~SlotWaiter() = default;
  // A slot was taken for this waiter (it now holds one unit of rq_active) and it left the queue.
  virtual void onSlot() = 0;

 private:
  friend class ThreadLocalCluster;
  std::list<SlotWaiter*>::iterator queue_pos_;
};

class ThreadLocalCluster {
 public:
  // With `previous` (the same cluster's last version on this worker), idle connections to
  // endpoints that stay are taken over instead of opened again.
  ThreadLocalCluster(Event::Dispatcher& dispatcher, ClusterInfoConstSharedPtr info,
                     uint32_t buffer_limit, uint64_t seed, ThreadLocalCluster* previous = nullptr);

  const ClusterInfo& info() const { return *info_; }
  int chooseEndpoint(const LbContext& ctx) { return lb_->choose(ctx); }
  ConnPool& pool(int endpoint) { return *pools_[endpoint]; }
  // Active requests per endpoint on this worker (LEAST_REQUEST reads it).
  void requestStarted(int endpoint) { ++active_[endpoint]; }
  void requestFinished(int endpoint) { --active_[endpoint]; }

  // The slot queue. A waiter is served in FIFO order when a slot frees on this worker, and by a
  // short poll while the queue is not empty (slots freed by other workers).
  // `front`: a waiter that got a slot but found the connection limit reached goes back to the
  // head of the queue (it keeps its place).
  void enqueue(SlotWaiter& waiter, bool front = false);
  void dequeue(SlotWaiter& waiter);
  // Said by a waiter served from the queue that could not get a connection (max_connections,
  // max_pending_requests): the queue stops serving until the next poll or released slot,
  // instead of handing every waiter a slot that would fail the same way.
  void connectionLimitReached() { blocked_ = true; }
  // A max_requests slot was released on this worker.
  void slotReleased() {
    if (!queue_.empty()) armQueueTimer(std::chrono::milliseconds(0));
  }
  size_t queued() const { return queue_.size(); }

 private:
  void armQueueTimer(std::chrono::milliseconds delay);
  void serveQueue();

  Event::Dispatcher& dispatcher_;
  std::list<SlotWaiter*> queue_;
  Event::TimerPtr queue_timer_;
  bool blocked_ = false;
  ClusterInfoConstSharedPtr info_;
  std::vector<uint32_t> active_;
  LoadBalancerPtr lb_;
  std::vector<std::unique_ptr<ConnPool>> pools_;
};
using ThreadLocalClusterSharedPtr = std::shared_ptr<ThreadLocalCluster>;

class ClusterManager {
 public:
  ClusterManager(Event::Dispatcher& dispatcher, uint64_t seed)
      : dispatcher_(dispatcher), seed_(seed) {}
  // Installs the clusters of a new config; unchanged ones (same ClusterInfo) keep their pools.
  void update(const absl::flat_hash_map<std::string, ClusterInfoConstSharedPtr>& clusters);
  ThreadLocalCluster* get(absl::string_view name) {
    auto it = clusters_.find(name);
    return it == clusters_.end() ? nullptr : it->second.get();
  }
  ThreadLocalClusterSharedPtr getShared(absl::string_view name) {
    auto it = clusters_.find(name);
    return it == clusters_.end() ? nullptr : it->second;
  }

 private:
  Event::Dispatcher& dispatcher_;
  uint64_t seed_;
  absl::flat_hash_map<std::string, ThreadLocalClusterSharedPtr> clusters_;
};

}  // namespace Upstream
}  // namespace sluice
