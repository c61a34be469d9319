#include "source/common/upstream/health_manager.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace Upstream {

HealthManager::HealthManager(Event::Dispatcher& main, Stats::Store* stats)
    : main_(main), stats_(stats), registry_(&main, this) {}

HealthManager::~HealthManager() = default;

size_t HealthManager::healthyCount(const ClusterInfo& cluster) {
  size_t n = 0;
  for (const Endpoint& e : cluster.endpoints()) {
    n += e.state->healthy() ? 1 : 0;
  }
  return n;
}

void HealthManager::update(
    const absl::flat_hash_map<std::string, ClusterInfoConstSharedPtr>& clusters) {
  for (const auto& [name, info] : clusters) {
    auto& slot = clusters_[name];
    if (slot == nullptr) {
      slot = std::make_unique<Managed>();
      slot->name = name;
      if (stats_ != nullptr) {
        Stats::Labels labels{{"cluster", name}};
        const std::string p = absl::StrCat("cluster.", name, ".");
        slot->hc_attempt = &stats_->counter(p + "health_check.attempt",
                                            "cluster_health_check_attempt_total", labels);
        slot->hc_success = &stats_->counter(p + "health_check.success",
                                            "cluster_health_check_success_total", labels);
        slot->hc_failure = &stats_->counter(p + "health_check.failure",
                                            "cluster_health_check_failure_total", labels);
        slot->ejections_enforced =
            &stats_->counter(p + "outlier_detection.ejections_enforced",
                             "cluster_outlier_detection_ejections_enforced_total", labels);
        slot->ejections_overflow =
            &stats_->counter(p + "outlier_detection.ejections_overflow",
                             "cluster_outlier_detection_ejections_overflow_total", labels);
        slot->ejections_active =
            &stats_->gauge(p + "outlier_detection.ejections_active",
                           "cluster_outlier_detection_ejections_active", labels);
        slot->membership_healthy =
            &stats_->gauge(p + "membership_healthy", "cluster_membership_healthy", labels);
      }
    }
    Managed& m = *slot;
    m.info = info;
    updateHealthChecks(m);
    updateOutlierDetection(m);
    refreshGauges(m);
  }
  for (auto it = clusters_.begin(); it != clusters_.end();) {
    if (clusters.contains(it->first)) {
      ++it;
      continue;
    }
    Managed& m = *it->second;
    if (m.membership_healthy != nullptr) {
      m.membership_healthy->add(-m.membership_healthy_value);
      m.ejections_active->add(-m.ejections_active_value);
    }
    clusters_.erase(it++);
  }
  // Endpoints no config uses any more: their gauges go to 0, their state is forgotten.
  registry_.prune([this](EndpointState& e) { setEndpointGauge(e, 0); });
}

void HealthManager::updateHealthChecks(Managed& m) {
  const ClusterInfo& info = *m.info;
  const HealthCheckConfig& hc = info.healthCheck();
  const std::string key =
      hc.enabled ? absl::StrCat(info.config().health_check().SerializeAsString(), info.tlsKey())
                 : "";
  if (!hc.enabled) {
    m.sessions.clear();
    m.health_check.reset();
    m.health_check_config.clear();
    bool changed = false;
    for (const Endpoint& e : info.endpoints()) {
      changed = e.state->setFlag(kFailedActiveHealthCheck, false) || changed;
      e.state->hc = EndpointState::ActiveHealth();
    }
    if (changed) healthChanged(m);
    return;
  }
  if (m.health_check == nullptr || key != m.health_check_config) {
    // New or changed settings: new sessions (the endpoints' health is kept).
    m.sessions.clear();
    m.health_check = std::make_shared<const HealthCheckConfig>(hc);
    m.health_check_config = key;
  }
  absl::flat_hash_map<std::string, HealthCheckSessionPtr> sessions;
  for (const Endpoint& e : info.endpoints()) {
    if (sessions.contains(e.name)) continue;  // listed twice
    auto it = m.sessions.find(e.name);
    if (it != m.sessions.end() && it->second->endpoint() == e.state) {
      sessions.emplace(e.name, std::move(it->second));
      continue;
    }
    Managed* mp = &m;
    auto session = std::make_unique<HealthCheckSession>(
        main_, m.health_check, e.address, e.state,
        [this, mp](EndpointState& ep, bool healthy, const std::string& failure) {
          onHealthCheckResult(*mp, ep, healthy, failure);
        },
        ++seed_);
    session->start(std::chrono::milliseconds(0));
    sessions.emplace(e.name, std::move(session));
  }
  m.sessions.swap(sessions);  // sessions of removed endpoints end here
}

void HealthManager::updateOutlierDetection(Managed& m) {
  const ClusterInfo& info = *m.info;
  const OutlierConfig& od = info.outlier();
  absl::flat_hash_map<std::string, Event::TimerPtr> timers;
  bool changed = false;
  for (const Endpoint& e : info.endpoints()) {
    EndpointState& st = *e.state;
    auto it = m.uneject_timers.find(e.name);
    if (it != m.uneject_timers.end()) {
      timers.emplace(e.name, std::move(it->second));
    }
    if (!od.enabled) {
      changed = st.setFlag(kFailedOutlierCheck, false) || changed;
      st.consecutive_5xx.store(0, std::memory_order_relaxed);
      st.consecutive_gateway_failure.store(0, std::memory_order_relaxed);
      st.outlier.ejection_multiplier = 0;
      continue;
    }
    if ((st.flags() & kFailedOutlierCheck) && !timers.contains(e.name)) {
      // Ejected under an earlier version of this cluster that was removed meanwhile: it comes
      // back when its ejection would have ended.
      const auto left = std::max(std::chrono::steady_clock::duration::zero(),
                                 st.outlier.ejected_until - main_.now());
      Managed* mp = &m;
      const std::string address = e.name;
      auto timer = main_.createTimer([this, mp, address]() { uneject(*mp, address); });
      timer->enableTimer(std::chrono::duration_cast<std::chrono::milliseconds>(left));
      timers.emplace(e.name, std::move(timer));
    }
  }
  m.uneject_timers.swap(timers);
  if (!od.enabled) {
    m.uneject_timers.clear();
    m.outlier_timer.reset();
  } else if (m.outlier_timer == nullptr || m.outlier_interval != od.interval) {
    Managed* mp = &m;
    m.outlier_interval = od.interval;
    m.outlier_timer = main_.createTimer([this, mp]() { onOutlierInterval(*mp); });
    m.outlier_timer->enableTimer(od.interval);
  }
  if (changed) healthChanged(m);
}

void HealthManager::onHealthCheckResult(Managed& m, EndpointState& ep, bool healthy,
                                        const std::string& failure) {
  if (m.health_check == nullptr) {
    return;
  }
  const HealthCheckConfig& hc = *m.health_check;
  EndpointState::ActiveHealth& h = ep.hc;
  const bool first = !h.checked;
  h.checked = true;
  ++h.checks;
  if (m.hc_attempt != nullptr) m.hc_attempt->inc();
  bool changed = false;
  if (healthy) {
    if (m.hc_success != nullptr) m.hc_success->inc();
    h.failures_in_row = 0;
    ++h.successes_in_row;
    if ((ep.flags() & kFailedActiveHealthCheck) &&
        (first || h.successes_in_row >= hc.healthy_threshold)) {
      changed = ep.setFlag(kFailedActiveHealthCheck, false);
      ep.consecutive_5xx.store(0, std::memory_order_relaxed);
      ep.consecutive_gateway_failure.store(0, std::memory_order_relaxed);
      spdlog::info("cluster \"{}\" endpoint {}: healthy (active health check)", m.name,
                   ep.address());
    }
  } else {
    if (m.hc_failure != nullptr) m.hc_failure->inc();
    ++h.failures;
    h.last_failure = failure;
    h.successes_in_row = 0;
    ++h.failures_in_row;
    if (!(ep.flags() & kFailedActiveHealthCheck) &&
        (first || h.failures_in_row >= hc.unhealthy_threshold)) {
      changed = ep.setFlag(kFailedActiveHealthCheck, true);
      spdlog::warn("cluster \"{}\" endpoint {}: unhealthy after {} failed health check(s) ({})",
                   m.name, ep.address(), h.failures_in_row, failure);
    }
  }
  if (changed) {
    healthChanged(m);
  }
}

void HealthManager::onConsecutiveFailures(const EndpointStateSharedPtr& endpoint,
                                          OutlierReason reason) {
  EndpointState& ep = *endpoint;
  ep.consecutive_5xx.store(0, std::memory_order_relaxed);
  ep.consecutive_gateway_failure.store(0, std::memory_order_relaxed);
  auto it = clusters_.find(ep.cluster());
  if (it == clusters_.end()) {
    return;
  }
  Managed& m = *it->second;
  const ClusterInfo& info = *m.info;
  const OutlierConfig& od = info.outlier();
  if (!od.enabled || (ep.flags() & kFailedOutlierCheck)) {
    return;
  }
  size_t total = 0;
  size_t ejected = 0;
  bool member = false;
  for (const Endpoint& e : info.endpoints()) {
    ++total;
    ejected += (e.state->flags() & kFailedOutlierCheck) ? 1 : 0;
    member = member || e.state.get() == &ep;
  }
  if (!member) {
    return;  // left the cluster meanwhile
  }
  if (ejected > 0 && (ejected + 1) * 100 > total * od.max_ejection_percent) {
    if (m.ejections_overflow != nullptr) m.ejections_overflow->inc();
    spdlog::info("cluster \"{}\" endpoint {}: not ejected, max_ejection_percent {} reached", m.name,
                 ep.address(), od.max_ejection_percent);
    return;
  }
  eject(m, ep,
        reason == OutlierReason::Consecutive5xx
            ? absl::StrCat(od.consecutive_5xx, " consecutive 5xx")
            : absl::StrCat(od.consecutive_gateway_failure, " consecutive gateway failures"));
}

void HealthManager::eject(Managed& m, EndpointState& ep, const std::string& reason) {
  const OutlierConfig& od = m.info->outlier();
  EndpointState::Outlier& o = ep.outlier;
  ++o.ejection_multiplier;
  ++o.ejections;
  o.last_reason = reason;
  const auto duration = std::min<std::chrono::milliseconds>(
      od.base_ejection_time * o.ejection_multiplier, od.max_ejection_time);
  o.ejected_until = main_.now() + duration;
  o.last_ejection_time = duration;
  ep.setFlag(kFailedOutlierCheck, true);
  if (m.ejections_enforced != nullptr) m.ejections_enforced->inc();
  auto& timer = m.uneject_timers[ep.address()];
  if (timer == nullptr) {
    Managed* mp = &m;
    const std::string address = ep.address();
    timer = main_.createTimer([this, mp, address]() { uneject(*mp, address); });
  }
  timer->enableTimer(duration);
  spdlog::warn("cluster \"{}\" endpoint {}: ejected for {} ms ({}; ejection #{})", m.name,
               ep.address(), duration.count(), reason, o.ejections);
  healthChanged(m);
}

void HealthManager::uneject(Managed& m, const std::string& address) {
  EndpointStateSharedPtr ep = registry_.findEndpoint(m.name, address);
  if (ep == nullptr || !(ep->flags() & kFailedOutlierCheck)) {
    return;
  }
  ep->setFlag(kFailedOutlierCheck, false);
  ep->consecutive_5xx.store(0, std::memory_order_relaxed);
  ep->consecutive_gateway_failure.store(0, std::memory_order_relaxed);
  ep->outlier.returned_at = main_.now();
  spdlog::info("cluster \"{}\" endpoint {}: back from outlier ejection", m.name, address);
  healthChanged(m);
}

void HealthManager::onOutlierInterval(Managed& m) {
  const OutlierConfig& od = m.info->outlier();
  const auto now = main_.now();
  // An endpoint that has stayed back for base_ejection_time loses one step of its ejection
  // multiplier per interval, so old ejections stop lengthening new ones.
  for (const Endpoint& e : m.info->endpoints()) {
    EndpointState::Outlier& o = e.state->outlier;
    if (!(e.state->flags() & kFailedOutlierCheck) && o.ejection_multiplier > 0 &&
        now - o.returned_at >= od.base_ejection_time) {
      --o.ejection_multiplier;
    }
  }
  m.outlier_timer->enableTimer(od.interval);
}

void HealthManager::healthChanged(Managed& m) {
  m.info->state().bumpHealthGeneration();
  refreshGauges(m);
}

void HealthManager::setEndpointGauge(EndpointState& ep, int64_t value) {
  if (ep.healthy_gauge != nullptr && value != ep.healthy_gauge_value) {
    ep.healthy_gauge->add(value - ep.healthy_gauge_value);
    ep.healthy_gauge_value = value;
  }
}

void HealthManager::refreshGauges(Managed& m) {
  if (stats_ == nullptr) {
    return;
  }
  int64_t healthy = 0;
  int64_t ejected = 0;
  for (const Endpoint& e : m.info->endpoints()) {
    EndpointState& st = *e.state;
    if (st.healthy_gauge == nullptr) {
      st.healthy_gauge =
          &stats_->gauge(absl::StrCat("cluster.", m.name, ".endpoint.", e.name, ".healthy"),
                         "upstream_endpoint_healthy", {{"cluster", m.name}, {"endpoint", e.name}});
      // Another state object of this endpoint may have left its value behind.
      st.healthy_gauge_value = st.healthy_gauge->value(stats_->slots());
    }
    setEndpointGauge(st, st.healthy() ? 1 : 0);
    healthy += st.healthy() ? 1 : 0;
    ejected += (st.flags() & kFailedOutlierCheck) ? 1 : 0;
  }
  m.membership_healthy->add(healthy - m.membership_healthy_value);
  m.membership_healthy_value = healthy;
  m.ejections_active->add(ejected - m.ejections_active_value);
  m.ejections_active_value = ejected;
}

}  // namespace Upstream
}  // namespace sluice
