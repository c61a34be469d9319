#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "sluice/config/v1/bootstrap.pb.h"
#include "source/common/config/grpc_tls.h"
#include "source/common/config/policy_registry.h"
#include "source/common/http/conn_manager_config.h"
#include "source/common/network/connection.h"
#include "source/common/network/dns_resolver.h"
#include "source/common/router/config.h"
#include "source/common/upstream/cluster.h"

namespace sluice {
namespace Server {

struct ListenerInfo {
  std::string name;
  // The listener's config, serialized: equal bytes = unchanged listener.
  std::string config;
  Network::Address address;
  uint32_t backlog = 1024;
  Http::ConnectionManagerConfigConstSharedPtr http;
  // TLS (null: cleartext), what it was compiled from (see buildListenerTls), and how long a
  // handshake may take.
  Tls::ServerContextConstSharedPtr tls;
  std::string tls_key;
  std::chrono::milliseconds handshake_timeout{10000};
};

// One complete, validated, compiled configuration. Built once on the main thread, then shared
// read-only by every worker (RCU): a worker swaps its pointer, streams keep the one they
// started with, and the old snapshot dies with its last user.
struct Snapshot {
  sluice::config::v1::Bootstrap bootstrap;
  std::string version;
  std::vector<ListenerInfo> listeners;
  absl::flat_hash_map<std::string, Router::RouteTableConstSharedPtr> route_tables;
  absl::flat_hash_map<std::string, Upstream::ClusterInfoConstSharedPtr> clusters;
  // Serialized config of each compiled route table, to reuse unchanged ones on the next build.
  absl::flat_hash_map<std::string, std::string> route_table_configs;
  // Policy resources (by type), owned and enforced by their filters.
  Config::PolicySetConstSharedPtr policies;
};
using SnapshotConstSharedPtr = std::shared_ptr<const Snapshot>;

// Keeps access log files open across config versions (same path -> same sink).
class AccessLogRegistry {
 public:
  absl::StatusOr<AccessLog::FileSinkSharedPtr> get(const std::string& path);
  void flushAll();

 private:
  absl::flat_hash_map<std::string, AccessLog::FileSinkSharedPtr> sinks_;
};

// Where the resources of a build came from, for error messages.
struct BuildOptions {
  // Clusters and route tables whose config did not change are reused as they are, so workers
  // keep their connection pools and big route tables are not compiled again.
  const Snapshot* previous = nullptr;
  // Access log files are opened through it; null = only check they could be opened.
  AccessLogRegistry* access_logs = nullptr;
  // False: nothing on this host is checked (the control plane validating for data planes on
  // other machines).
  bool check_files = true;
  // Errors of static resources are named `<static_prefix>clusters[2].endpoints[0].port`.
  std::string static_prefix = "static_resources.";
  // Entries of each static_resources list from these indexes on came from the control plane;
  // their errors are named by type and name, e.g. `Cluster "api".endpoints[0].port`.
  // With a control plane, static listeners and routes may name route tables, clusters and
  // policies that only the control plane provides: until they arrive, such a listener answers
  // 404 and such a route 503.
  bool static_may_reference_dynamic = false;
  int first_dynamic_listener = INT32_MAX;
  // Given to filter factories (see Http::FactoryContext); null when only validating.
  Event::Dispatcher* main_dispatcher = nullptr;
  Http::SingletonManager* singletons = nullptr;
  // Health, outlier and circuit-breaker state kept across config versions (main thread); null
  // when only validating: each cluster then gets state of its own and nothing is started.
  Upstream::ClusterStateRegistry* cluster_states = nullptr;
  uint32_t concurrency = 0;
  // What the host names of STRICT_DNS / LOGICAL_DNS clusters resolved to so far (DnsDiscovery,
  // main thread); null: no DNS (validation), such clusters have no endpoints.
  const Upstream::ResolvedClusters* resolved_dns = nullptr;
  // Host-name resolution for filters (remote JWKS on the main thread, Redis on workers); null
  // when only validating. See Http::FactoryContext.
  Network::DnsResolver* main_dns_resolver = nullptr;
  Network::DnsResolverOptionsConstSharedPtr dns_options;
  // Admin endpoints filters add (see Http::FactoryContext); null when only validating.
  Admin::HandlerRegistry* admin_handlers = nullptr;
  int first_dynamic_route_table = INT32_MAX;
  int first_dynamic_cluster = INT32_MAX;
  int first_dynamic_cluster_endpoints = INT32_MAX;
  int first_dynamic_secret = INT32_MAX;
  // The same for each policy type, by StaticResources field ("auth_policies"); absent = none.
  absl::flat_hash_map<std::string, int> first_dynamic_policy;
  // False: filters are validated by their config code only and no per-stream factory is made
  // (sluice-cp, which links the filters' config libraries, not their runtime).
  bool create_filters = true;
};

// Validates and compiles `bootstrap`. Every error is reported, each naming its field.
absl::StatusOr<SnapshotConstSharedPtr> buildSnapshot(const sluice::config::v1::Bootstrap& bootstrap,
                                                     Stats::Store* stats,
                                                     const BuildOptions& options);
// The form used for static config files and SIGHUP reloads.
absl::StatusOr<SnapshotConstSharedPtr> buildSnapshot(const sluice::config::v1::Bootstrap& bootstrap,
                                                     Stats::Store* stats,
                                                     AccessLogRegistry* access_logs,
                                                     const Snapshot* previous = nullptr);

// Calls `fn` with every cluster name a route table refers to.
void forEachClusterReference(const sluice::config::v1::RouteTable& table,
                             const std::function<void(const std::string&)>& fn);

// Validates a declared config the way a data plane would (schema, references between
// resources, regexes, addresses, filters, policies) without touching this host's files. Errors
// name fields as `clusters[0].endpoints[1].port`, one per line in the status message.
absl::Status validateResources(const sluice::config::v1::StaticResources& resources);

// The configuration `sluice` runs with no -c: a listener on 127.0.0.1:8080 that says what it is.
std::string defaultBootstrapYaml();

// The PEM files of bootstrap `control_plane.tls`, read and checked (errors name the field and
// the file). Used by the bootstrap's validation and, at start, for the ADS client's channel.
absl::StatusOr<Config::GrpcTlsPem> loadControlPlaneTls(
    const sluice::config::v1::ControlPlaneTls& tls);

}  // namespace Server
}  // namespace sluice
