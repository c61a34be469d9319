#include "source/server/config/snapshot.h"

#include "source/server/config/builder.h"

namespace sluice {
namespace Server {

absl::StatusOr<AccessLog::FileSinkSharedPtr> AccessLogRegistry::get(const std::string& path) {
  auto it = sinks_.find(path);
  if (it != sinks_.end()) {
    return it->second;
  }
  auto sink = AccessLog::FileSink::open(path);
  if (!sink.ok()) {
    return sink.status();
  }
  sinks_[path] = *sink;
  return *sink;
}

void AccessLogRegistry::flushAll() {
  for (auto& [p, s] : sinks_) s->flush();
}

void forEachClusterReference(const sluice::config::v1::RouteTable& table,
                             const std::function<void(const std::string&)>& fn) {
  for (const auto& vh : table.virtual_hosts()) {
    for (const auto& r : vh.routes()) {
      if (!r.has_route()) continue;
      if (!r.route().cluster().empty()) fn(r.route().cluster());
      for (const auto& wc : r.route().weighted_clusters().clusters()) fn(wc.name());
    }
  }
}

absl::StatusOr<SnapshotConstSharedPtr> buildSnapshot(const sluice::config::v1::Bootstrap& bootstrap,
                                                     Stats::Store* stats,
                                                     AccessLogRegistry* access_logs,
                                                     const Snapshot* previous) {
  BuildOptions o;
  o.previous = previous;
  o.access_logs = access_logs;
  return buildSnapshot(bootstrap, stats, o);
}

absl::Status validateResources(const sluice::config::v1::StaticResources& resources) {
  sluice::config::v1::Bootstrap b;
  *b.mutable_static_resources() = resources;
  BuildOptions o;
  o.check_files = false;
  o.static_prefix = "";
  o.create_filters = false;
  return buildSnapshot(b, nullptr, o).status();
}

absl::StatusOr<Config::GrpcTlsPem> loadControlPlaneTls(
    const sluice::config::v1::ControlPlaneTls& tls) {
  Config::GrpcTlsFiles files;
  files.ca = {tls.ca_file(), "control_plane.tls.ca_file"};
  files.cert_chain = {tls.cert_chain_file(), "control_plane.tls.cert_chain_file"};
  files.private_key = {tls.private_key_file(), "control_plane.tls.private_key_file"};
  return Config::loadGrpcTls(files);
}

namespace {

// Process settings: admin address, workers, drain, control-plane timing and TLS files.
void checkBootstrap(const sluice::config::v1::Bootstrap& bootstrap, const BuildOptions& o,
                    Config::ErrorList& errors) {
  if (bootstrap.has_admin()) {
    Network::Address admin;
    const auto& a = bootstrap.admin();
    if (a.port() > 65535) {
      errors.add("admin.port", "must be <= 65535");
    } else if (!Network::Address::parse(a.address().empty() ? "127.0.0.1" : a.address(), a.port(),
                                        admin)) {
      errors.add("admin.address", absl::StrCat("\"", a.address(), "\" is not an IP address"));
    }
  }
  for (int i = 0; i < bootstrap.dns_resolvers_size(); ++i) {
    const auto& r = bootstrap.dns_resolvers(i);
    const std::string path = absl::StrCat("dns_resolvers[", i, "]");
    Network::Address server;
    if (r.port() > 65535) {
      errors.add(path + ".port", "must be <= 65535");
    } else if (r.address().empty() || !Network::Address::parse(r.address(), r.port(), server)) {
      errors.add(path + ".address", absl::StrCat("\"", r.address(), "\" is not an IP address"));
    }
  }
  if (bootstrap.concurrency() > 256) {
    errors.add("concurrency", "must be <= 256");
  }
  if (bootstrap.has_drain_timeout()) {
    errors.add(Config::durationMs(bootstrap.drain_timeout(), "drain_timeout").status());
  }
  if (bootstrap.has_control_plane()) {
    const auto& cp = bootstrap.control_plane();
    if (cp.address().empty()) {
      errors.add("control_plane.address", "is required (host:port of sluice-cp)");
    }
    for (auto [has, d, field] :
         {std::make_tuple(cp.has_initial_fetch_timeout(), &cp.initial_fetch_timeout(),
                          "initial_fetch_timeout"),
          std::make_tuple(cp.has_retry_interval(), &cp.retry_interval(), "retry_interval"),
          std::make_tuple(cp.has_max_retry_interval(), &cp.max_retry_interval(),
                          "max_retry_interval")}) {
      if (has) errors.add(Config::durationMs(*d, absl::StrCat("control_plane.", field)).status());
    }
    if (cp.has_tls() && o.check_files) {
      errors.add(loadControlPlaneTls(cp.tls()).status());
    }
  }
}

std::shared_ptr<Config::PolicySet> buildPolicies(const sluice::config::v1::StaticResources& sr,
                                                 const BuildOptions& o, Config::ErrorList& errors) {
  auto policies = std::make_shared<Config::PolicySet>();
  Config::PolicyValidationOptions options;
  options.read_files = o.check_files;
  Config::buildPolicies(
      sr, options,
      [&o](const Config::PolicyType& type, int i, const std::string& name) {
        auto first = o.first_dynamic_policy.find(type.field());
        PathNamer namer(o.static_prefix, type.field(), Config::PolicyTypeRegistry::typeName(type),
                        first == o.first_dynamic_policy.end() ? INT32_MAX : first->second);
        return namer(i, name);
      },
      *policies, errors);
  return policies;
}

}  // namespace

absl::StatusOr<SnapshotConstSharedPtr> buildSnapshot(const sluice::config::v1::Bootstrap& bootstrap,
                                                     Stats::Store* stats, const BuildOptions& o) {
  auto snap = std::make_shared<Snapshot>();
  snap->bootstrap = bootstrap;
  Config::ErrorList errors;
  checkBootstrap(bootstrap, o, errors);
  BuildState state(bootstrap.static_resources(), o, stats, *snap, errors);
  state.policies = buildPolicies(bootstrap.static_resources(), o, errors);
  snap->policies = state.policies;
  buildSecrets(state);
  buildClusters(state);
  buildRouteTables(state);
  buildListeners(state);
  RETURN_IF_ERRORS(errors);
  snap->version = "static";
  return SnapshotConstSharedPtr(std::move(snap));
}

std::string defaultBootstrapYaml() {
  return R"(
node: {id: sluice-default, cluster: default}
admin: {address: 127.0.0.1, port: 9901}
static_resources:
  listeners:
  - name: default
    address: {host: 127.0.0.1, port: 8080}
    route_table: default
  route_tables:
  - name: default
    virtual_hosts:
    - name: default
      domains: ["*"]
      routes:
      - name: healthz
        match: {path: /healthz}
        direct_response: {status: 200, body: "ok\n"}
      - name: welcome
        match: {prefix: /}
        direct_response:
          status: 200
          content_type: text/plain
          body: |
            Sluice is running on its embedded default configuration.

            This listener only answers with this text. To proxy traffic, write a bootstrap file
            (see docs/configuration.md) and start:  sluice -c bootstrap.yaml

            Admin: http://127.0.0.1:9901/  (/ready, /stats, /stats/prometheus, /config_dump, /clusters)
)";
}

}  // namespace Server
}  // namespace sluice
