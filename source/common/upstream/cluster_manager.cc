#include "source/common/upstream/cluster_manager.h"

namespace sluice {
namespace Upstream {

namespace {
constexpr uint32_t kUpstreamBufferLimit = 1024 * 1024;
// How often a worker's queue looks for slots freed by other workers.
constexpr std::chrono::milliseconds kQueuePollInterval{5};
}  // namespace

ThreadLocalCluster::ThreadLocalCluster(Event::Dispatcher& dispatcher,
                                       ClusterInfoConstSharedPtr info, uint32_t buffer_limit,
                                       uint64_t seed, ThreadLocalCluster* previous)
    : dispatcher_(dispatcher), info_(std::move(info)), active_(info_->endpoints().size(), 0) {
  lb_ = createLoadBalancer(*info_, active_, seed);
  for (const Endpoint& e : info_->endpoints()) {
    pools_.push_back(std::make_unique<ConnPool>(dispatcher, *info_, e, buffer_limit));
    if (previous != nullptr) {
      for (auto& old : previous->pools_) {
        if (old->endpoint().name == e.name) pools_.back()->adoptIdle(*old);
      }
    }
  }
}

void ThreadLocalCluster::enqueue(SlotWaiter& waiter, bool front) {
  waiter.queue_pos_ = queue_.insert(front ? queue_.begin() : queue_.end(), &waiter);
  if (!front) {
    armQueueTimer(kQueuePollInterval);
  }
}

void ThreadLocalCluster::dequeue(SlotWaiter& waiter) { queue_.erase(waiter.queue_pos_); }

void ThreadLocalCluster::armQueueTimer(std::chrono::milliseconds delay) {
  if (queue_timer_ == nullptr) {
    queue_timer_ = dispatcher_.createTimer([this]() { serveQueue(); });
  }
  queue_timer_->enableTimer(delay);
}

void ThreadLocalCluster::serveQueue() {
  ClusterState& state = info_->state();
  const uint32_t max = info_->circuitBreakers().max_requests;
  blocked_ = false;
  while (!queue_.empty() && !blocked_ && ClusterState::tryAcquire(state.rq_active, max)) {
    SlotWaiter* w = queue_.front();
    queue_.pop_front();
    w->onSlot();
  }
  if (!queue_.empty()) {
    armQueueTimer(kQueuePollInterval);
  }
}

void ClusterManager::update(
    const absl::flat_hash_map<std::string, ClusterInfoConstSharedPtr>& clusters) {
  absl::flat_hash_map<std::string, ThreadLocalClusterSharedPtr> next;
  for (const auto& [name, info] : clusters) {
    auto it = clusters_.find(name);
    if (it != clusters_.end() && &it->second->info() == info.get()) {
      next.emplace(name, it->second);
    } else {
      next.emplace(name, std::make_shared<ThreadLocalCluster>(
                             dispatcher_, info, kUpstreamBufferLimit, ++seed_,
                             it != clusters_.end() ? it->second.get() : nullptr));
    }
  }
  clusters_.swap(next);
}

}  // namespace Upstream
}  // namespace sluice
