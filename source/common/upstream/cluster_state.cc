#include "source/common/upstream/cluster_state.h"

#include "absl/strings/str_cat.h"

namespace sluice {
namespace Upstream {

void ClusterState::reportOutcome(const EndpointStateSharedPtr& endpoint, Outcome outcome,
                                 const OutlierConfig& config) {
  EndpointState& ep = *endpoint;
  if (outcome == Outcome::Success) {
    // Load first: the common case (no failure streak) reads a shared cache line and writes
    // nothing, so workers don't bounce it between cores.
    if (ep.consecutive_5xx.load(std::memory_order_relaxed) != 0) {
      ep.consecutive_5xx.store(0, std::memory_order_relaxed);
    }
    if (ep.consecutive_gateway_failure.load(std::memory_order_relaxed) != 0) {
      ep.consecutive_gateway_failure.store(0, std::memory_order_relaxed);
    }
    return;
  }
  if (config.consecutive_5xx > 0 &&
      ep.consecutive_5xx.fetch_add(1, std::memory_order_relaxed) + 1 == config.consecutive_5xx) {
    notify(endpoint, OutlierReason::Consecutive5xx);
  }
  if (outcome == Outcome::Http5xx) {
    // A 500 breaks a streak of gateway failures.
    if (ep.consecutive_gateway_failure.load(std::memory_order_relaxed) != 0) {
      ep.consecutive_gateway_failure.store(0, std::memory_order_relaxed);
    }
  } else if (config.consecutive_gateway_failure > 0 &&
             ep.consecutive_gateway_failure.fetch_add(1, std::memory_order_relaxed) + 1 ==
                 config.consecutive_gateway_failure) {
    notify(endpoint, OutlierReason::ConsecutiveGatewayFailure);
  }
}

void ClusterState::notify(const EndpointStateSharedPtr& endpoint, OutlierReason reason) {
  if (main_ == nullptr || sink_ == nullptr) {
    return;
  }
  // Rare (once per crossing): the post takes the main dispatcher's queue lock.
  OutlierEventSink* sink = sink_;
  main_->post([sink, endpoint, reason]() { sink->onConsecutiveFailures(endpoint, reason); });
}

ClusterStateSharedPtr ClusterStateRegistry::cluster(const std::string& name) {
  auto& slot = clusters_[name];
  if (slot == nullptr) {
    slot = std::make_shared<ClusterState>(name, main_, sink_);
  }
  return slot;
}

EndpointStateSharedPtr ClusterStateRegistry::endpoint(const std::string& cluster,
                                                      const std::string& address) {
  auto& slot = endpoints_[absl::StrCat(cluster, "\n", address)];
  if (slot == nullptr) {
    slot = std::make_shared<EndpointState>(cluster, address);
  }
  return slot;
}

EndpointStateSharedPtr ClusterStateRegistry::findEndpoint(const std::string& cluster,
                                                          const std::string& address) const {
  auto it = endpoints_.find(absl::StrCat(cluster, "\n", address));
  return it == endpoints_.end() ? nullptr : it->second;
}

void ClusterStateRegistry::prune(const std::function<void(EndpointState&)>& on_drop) {
  // use_count() == 1: only this registry holds it. Workers only copy these pointers from
  // objects that hold them too, so the count can't rise from 1 behind our back.
  for (auto it = endpoints_.begin(); it != endpoints_.end();) {
    if (it->second.use_count() == 1) {
      if (on_drop) on_drop(*it->second);
      endpoints_.erase(it++);
    } else {
      ++it;
    }
  }
  for (auto it = clusters_.begin(); it != clusters_.end();) {
    if (it->second.use_count() == 1) {
      clusters_.erase(it++);
    } else {
      ++it;
    }
  }
}

}  // namespace Upstream
}  // namespace sluice
