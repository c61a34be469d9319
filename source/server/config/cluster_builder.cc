#include "absl/container/flat_hash_map.h"
#include "source/server/config/builder.h"

namespace sluice {
namespace Server {
namespace {

using EndpointSets = absl::flat_hash_map<std::string, const sluice::config::v1::ClusterEndpoints*>;

// Endpoint sets of EDS clusters, checked on their own so errors name the resource.
EndpointSets checkEndpointSets(BuildState& s, const PathNamer& ce_path) {
  EndpointSets sets;
  for (int i = 0; i < s.sr.cluster_endpoints_size(); ++i) {
    const auto& ce = s.sr.cluster_endpoints(i);
    const std::string path = ce_path(i, ce.cluster_name());
    if (ce.cluster_name().empty()) {
      s.errors.add(path + ".cluster_name", "is required");
      continue;
    }
    sluice::config::v1::Cluster probe;
    probe.set_name(ce.cluster_name());
    probe.set_eds(true);
    *probe.mutable_endpoints() = ce.endpoints();
    auto checked = Upstream::ClusterInfo::create(probe, path, nullptr);
    if (!checked.ok()) {
      s.errors.add(checked.status());
      continue;
    }
    if (!sets.emplace(ce.cluster_name(), &ce).second) {
      s.errors.add(path + ".cluster_name",
                   absl::StrCat("duplicate endpoints for cluster \"", ce.cluster_name(), "\""));
    }
  }
  return sets;
}

// The cluster compiled: the previous snapshot's object when its config did not change (workers
// keep its pools), else a new one; null after an error.
// A STRICT_DNS / LOGICAL_DNS cluster is built with the addresses its names resolved to so far
// (none yet: no endpoints), and built again when they change.
Upstream::ClusterInfoConstSharedPtr compileCluster(BuildState& s,
                                                   const sluice::config::v1::Cluster& config,
                                                   const std::string& path) {
  std::string tls_key;
  Tls::ClientContextConstSharedPtr tls = buildClusterTls(s, config, path, tls_key);
  if (config.has_tls() && tls == nullptr && s.o.check_files) return nullptr;  // reported
  static const Upstream::ResolvedHosts kNone;
  const Upstream::ResolvedHosts* resolved = &kNone;
  if (s.o.resolved_dns != nullptr && config.type() != sluice::config::v1::Cluster::STATIC) {
    auto it = s.o.resolved_dns->find(config.name());
    if (it != s.o.resolved_dns->end()) resolved = &it->second;
  }
  if (s.o.previous != nullptr) {
    auto it = s.o.previous->clusters.find(config.name());
    if (it != s.o.previous->clusters.end() && it->second->tlsKey() == tls_key &&
        it->second->config().SerializeAsString() == config.SerializeAsString() &&
        it->second->resolvedHosts() == *resolved) {
      return it->second;
    }
  }
  auto c = Upstream::ClusterInfo::create(config, path, s.stats, s.o.cluster_states, resolved,
                                         std::move(tls), std::move(tls_key));
  if (!c.ok()) {
    s.errors.add(c.status());
    return nullptr;
  }
  return *c;
}

}  // namespace

void buildClusters(BuildState& s) {
  PathNamer ce_path(s.o.static_prefix, "cluster_endpoints", "ClusterEndpoints",
                    s.o.first_dynamic_cluster_endpoints);
  const EndpointSets endpoint_sets = checkEndpointSets(s, ce_path);
  for (const auto& c : s.sr.clusters()) s.cluster_names.insert(c.name());

  PathNamer cluster_path(s.o.static_prefix, "clusters", "Cluster", s.o.first_dynamic_cluster);
  absl::flat_hash_set<std::string> eds_clusters;
  for (int i = 0; i < s.sr.clusters_size(); ++i) {
    const std::string path = cluster_path(i, s.sr.clusters(i).name());
    const sluice::config::v1::Cluster* config = &s.sr.clusters(i);
    sluice::config::v1::Cluster merged;
    if (config->eds()) {
      eds_clusters.insert(config->name());
      if (config->endpoints_size() > 0) {
        s.errors.add(path + ".endpoints", "must be empty when eds is set (see cluster_endpoints)");
        continue;
      }
      auto it = endpoint_sets.find(config->name());
      if (it != endpoint_sets.end()) {
        merged = *config;
        *merged.mutable_endpoints() = it->second->endpoints();
        config = &merged;
      }
    }
    Upstream::ClusterInfoConstSharedPtr info = compileCluster(s, *config, path);
    if (info == nullptr) continue;
    if (!s.snap.clusters.emplace(info->name(), info).second) {
      s.errors.add(path + ".name", absl::StrCat("duplicate cluster \"", info->name(), "\""));
    }
  }
  for (int i = 0; i < s.sr.cluster_endpoints_size(); ++i) {
    // Endpoints of an unknown cluster are an error in a file, but not from the control plane:
    // there a cluster's removal arrives before its endpoints' (make-before-break).
    const auto& ce = s.sr.cluster_endpoints(i);
    if (!ce_path.dynamic(i) && !ce.cluster_name().empty() &&
        !eds_clusters.contains(ce.cluster_name())) {
      s.errors.add(ce_path(i, ce.cluster_name()) + ".cluster_name",
                   s.cluster_names.contains(ce.cluster_name())
                       ? absl::StrCat("cluster \"", ce.cluster_name(), "\" does not set eds: true")
                       : absl::StrCat("unknown cluster \"", ce.cluster_name(), "\""));
    }
  }
}

}  // namespace Server
}  // namespace sluice
