#include "source/server/snapshot.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "source/common/config/utility.h"
#include "source/common/http/filter.h"
#include "source/extensions/filters/http/auth/policy.h"
#include "source/extensions/filters/http/rate_limit/policy.h"

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

namespace {

// Names a resource in error messages: static ones by their place in the file, dynamic ones
// (from the control plane) by type and name.
class PathNamer {
 public:
  PathNamer(const std::string& prefix, const char* list, const char* type, int first_dynamic)
      : prefix_(prefix), list_(list), type_(type), first_dynamic_(first_dynamic) {}
  std::string operator()(int i, const std::string& name) const {
    if (i >= first_dynamic_) return absl::StrCat(type_, " \"", name, "\"");
    return absl::StrCat(prefix_, list_, "[", i, "]");
  }
  bool dynamic(int i) const { return i >= first_dynamic_; }

 private:
  const std::string& prefix_;
  const char* list_;
  const char* type_;
  int first_dynamic_;
};

void validatePolicies(const sluice::config::v1::StaticResources& sr, const BuildOptions& o,
                      Http::Policies& policies, Config::ErrorList& errors) {
  PathNamer auth_path(o.static_prefix, "auth_policies", "AuthPolicy", o.first_dynamic_auth_policy);
  for (int i = 0; i < sr.auth_policies_size(); ++i) {
    const auto& p = sr.auth_policies(i);
    const std::string path = auth_path(i, p.name());
    if (p.name().empty()) {
      errors.add(path + ".name", "is required");
      continue;
    }
    if (!policies.auth.emplace(p.name(), std::make_shared<const sluice::config::v1::AuthPolicy>(p))
             .second) {
      errors.add(path + ".name", absl::StrCat("duplicate auth policy \"", p.name(), "\""));
    }
    if (!p.has_jwt() && !p.has_key_auth() && !p.allow_anonymous()) {
      errors.add(path, "needs jwt, key_auth or allow_anonymous");
    }
    absl::flat_hash_set<std::string> users;
    for (int c = 0; c < p.consumers_size(); ++c) {
      const std::string cpath = absl::StrCat(path, ".consumers[", c, "].username");
      if (p.consumers(c).username().empty()) {
        errors.add(cpath, "is required");
      } else if (!users.insert(p.consumers(c).username()).second) {
        errors.add(cpath, absl::StrCat("duplicate consumer \"", p.consumers(c).username(), "\""));
      }
    }
    // Keys, algorithms, JWKS documents, URIs: the auth filter's own compilation, without
    // fetching anything (local_jwks files are read only when this host's files are checked).
    Extensions::Auth::CompileOptions auth_options;
    auth_options.read_files = o.check_files;
    errors.add(Extensions::Auth::compilePolicy(p, path, auth_options).status());
  }
  PathNamer rl_path(o.static_prefix, "rate_limit_policies", "RateLimitPolicy",
                    o.first_dynamic_rate_limit_policy);
  for (int i = 0; i < sr.rate_limit_policies_size(); ++i) {
    const auto& p = sr.rate_limit_policies(i);
    const std::string path = rl_path(i, p.name());
    if (p.name().empty()) {
      errors.add(path + ".name", "is required");
      continue;
    }
    if (!policies.rate_limit
             .emplace(p.name(), std::make_shared<const sluice::config::v1::RateLimitPolicy>(p))
             .second) {
      errors.add(path + ".name", absl::StrCat("duplicate rate limit policy \"", p.name(), "\""));
    }
    // Windows, limit_by, Redis address and timeout: the rate_limit filter's own checks.
    Extensions::RateLimit::validatePolicy(p, path, errors);
  }
}

}  // namespace

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
  return buildSnapshot(b, nullptr, o).status();
}

absl::StatusOr<SnapshotConstSharedPtr> buildSnapshot(const sluice::config::v1::Bootstrap& bootstrap,
                                                     Stats::Store* stats, const BuildOptions& o) {
  auto snap = std::make_shared<Snapshot>();
  snap->bootstrap = bootstrap;
  Config::ErrorList errors;
  const auto& sr = bootstrap.static_resources();
  const Snapshot* previous = o.previous;

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
  }

  auto policies = std::make_shared<Http::Policies>();
  validatePolicies(sr, o, *policies, errors);
  snap->policies = policies;

  // Endpoint sets of EDS clusters, checked on their own so errors name the resource.
  PathNamer ce_path(o.static_prefix, "cluster_endpoints", "ClusterEndpoints",
                    o.first_dynamic_cluster_endpoints);
  absl::flat_hash_map<std::string, const sluice::config::v1::ClusterEndpoints*> endpoint_sets;
  for (int i = 0; i < sr.cluster_endpoints_size(); ++i) {
    const auto& ce = sr.cluster_endpoints(i);
    const std::string path = ce_path(i, ce.cluster_name());
    if (ce.cluster_name().empty()) {
      errors.add(path + ".cluster_name", "is required");
      continue;
    }
    sluice::config::v1::Cluster probe;
    probe.set_name(ce.cluster_name());
    probe.set_eds(true);
    *probe.mutable_endpoints() = ce.endpoints();
    auto checked = Upstream::ClusterInfo::create(probe, path, nullptr);
    if (!checked.ok()) {
      errors.add(checked.status());
      continue;
    }
    if (!endpoint_sets.emplace(ce.cluster_name(), &ce).second) {
      errors.add(path + ".cluster_name",
                 absl::StrCat("duplicate endpoints for cluster \"", ce.cluster_name(), "\""));
    }
  }

  // Names of clusters and route tables that exist, even if invalid: a reference to one that
  // failed is not reported a second time as "unknown".
  absl::flat_hash_set<std::string> cluster_names;
  absl::flat_hash_set<std::string> table_names;
  for (const auto& c : sr.clusters()) cluster_names.insert(c.name());
  for (const auto& t : sr.route_tables()) table_names.insert(t.name());

  PathNamer cluster_path(o.static_prefix, "clusters", "Cluster", o.first_dynamic_cluster);
  absl::flat_hash_set<std::string> eds_clusters;
  for (int i = 0; i < sr.clusters_size(); ++i) {
    const std::string path = cluster_path(i, sr.clusters(i).name());
    const sluice::config::v1::Cluster* config = &sr.clusters(i);
    sluice::config::v1::Cluster merged;
    if (config->eds()) {
      eds_clusters.insert(config->name());
      if (config->endpoints_size() > 0) {
        errors.add(path + ".endpoints", "must be empty when eds is set (see cluster_endpoints)");
        continue;
      }
      auto it = endpoint_sets.find(config->name());
      if (it != endpoint_sets.end()) {
        merged = *config;
        *merged.mutable_endpoints() = it->second->endpoints();
        config = &merged;
      }
    }
    Upstream::ClusterInfoConstSharedPtr info;
    if (previous != nullptr) {
      auto it = previous->clusters.find(config->name());
      if (it != previous->clusters.end() &&
          it->second->config().SerializeAsString() == config->SerializeAsString()) {
        info = it->second;  // unchanged: the same object, so workers keep its pools
      }
    }
    if (info == nullptr) {
      auto c = Upstream::ClusterInfo::create(*config, path, stats, o.cluster_states);
      if (!c.ok()) {
        errors.add(c.status());
        continue;
      }
      info = *c;
    }
    if (!snap->clusters.emplace(info->name(), info).second) {
      errors.add(path + ".name", absl::StrCat("duplicate cluster \"", info->name(), "\""));
    }
  }
  for (int i = 0; i < sr.cluster_endpoints_size(); ++i) {
    // Endpoints of an unknown cluster are an error in a file, but not from the control plane:
    // there a cluster's removal arrives before its endpoints' (make-before-break).
    const auto& ce = sr.cluster_endpoints(i);
    if (!ce_path.dynamic(i) && !ce.cluster_name().empty() &&
        !eds_clusters.contains(ce.cluster_name())) {
      errors.add(ce_path(i, ce.cluster_name()) + ".cluster_name",
                 cluster_names.contains(ce.cluster_name())
                     ? absl::StrCat("cluster \"", ce.cluster_name(), "\" does not set eds: true")
                     : absl::StrCat("unknown cluster \"", ce.cluster_name(), "\""));
    }
  }

  PathNamer table_path(o.static_prefix, "route_tables", "RouteTable", o.first_dynamic_route_table);
  for (int i = 0; i < sr.route_tables_size(); ++i) {
    const auto& tc = sr.route_tables(i);
    const std::string path = table_path(i, tc.name());
    const bool lenient = o.static_may_reference_dynamic && !table_path.dynamic(i);
    // Policy references (the policies' filters are configured on the listener).
    for (int v = 0; v < tc.virtual_hosts_size(); ++v) {
      const auto& vh = tc.virtual_hosts(v);
      for (int r = 0; r < vh.routes_size(); ++r) {
        const auto& rc = vh.routes(r);
        const std::string rpath = absl::StrCat(path, ".virtual_hosts[", v, "].routes[", r, "]");
        if (lenient) continue;
        if (!rc.auth().empty() && !policies->auth.contains(rc.auth())) {
          errors.add(rpath + ".auth", absl::StrCat("unknown auth policy \"", rc.auth(), "\""));
        }
        if (!rc.rate_limit().empty() && !policies->rate_limit.contains(rc.rate_limit())) {
          errors.add(rpath + ".rate_limit",
                     absl::StrCat("unknown rate limit policy \"", rc.rate_limit(), "\""));
        }
        auto rl = policies->rate_limit.find(rc.rate_limit());
        if (rl != policies->rate_limit.end() &&
            rl->second->limit_by() == sluice::config::v1::RateLimitPolicy::ROUTE &&
            rc.name().empty()) {
          errors.add(rpath + ".name", absl::StrCat("is required: rate limit policy \"",
                                                   rc.rate_limit(), "\" limits by ROUTE"));
        }
      }
    }
    Router::RouteTableConstSharedPtr table;
    if (previous != nullptr) {
      // Unchanged tables are reused: compiling 10,000 routes again on every update of another
      // resource would be wasted work on the main thread.
      auto it = previous->route_table_configs.find(tc.name());
      if (it != previous->route_table_configs.end() && it->second == tc.SerializeAsString() &&
          previous->route_tables.contains(tc.name())) {
        // The compiled table holds cluster names, not pointers, so it stays valid while the
        // clusters it names exist; otherwise it is compiled again to report the error.
        bool clusters_exist = true;
        forEachClusterReference(tc, [&](const std::string& c) {
          clusters_exist = clusters_exist && cluster_names.contains(c);
        });
        if (clusters_exist || lenient) table = previous->route_tables.at(tc.name());
      }
    }
    if (table == nullptr) {
      auto t = Router::RouteTableImpl::create(tc, path, stats,
                                              [&cluster_names, lenient](const std::string& c) {
                                                return lenient || cluster_names.contains(c);
                                              });
      if (!t.ok()) {
        errors.add(t.status());
        continue;
      }
      table = *t;
    }
    if (!snap->route_tables.emplace(table->name(), table).second) {
      errors.add(path + ".name", absl::StrCat("duplicate route table \"", table->name(), "\""));
    }
    snap->route_table_configs[tc.name()] = tc.SerializeAsString();
  }
  PathNamer listener_path(o.static_prefix, "listeners", "Listener", o.first_dynamic_listener);
  absl::flat_hash_set<std::string> listener_names;
  for (int i = 0; i < sr.listeners_size(); ++i) {
    const auto& lc = sr.listeners(i);
    const std::string path = listener_path(i, lc.name());
    ListenerInfo li;
    li.name = lc.name();
    li.config = lc.SerializeAsString();
    if (lc.name().empty()) {
      errors.add(path + ".name", "is required");
    } else if (!listener_names.insert(lc.name()).second) {
      errors.add(path + ".name", absl::StrCat("duplicate listener \"", lc.name(), "\""));
    }
    if (!Network::Address::parse(lc.address().host(), lc.address().port(), li.address)) {
      errors.add(path + ".address", absl::StrCat("invalid address \"", lc.address().host(), ":",
                                                 lc.address().port(), "\""));
    }
    for (const ListenerInfo& other : snap->listeners) {
      if (other.address.toString() == li.address.toString() && li.address.port() != 0) {
        errors.add(path + ".address", absl::StrCat("same address as listener \"", other.name,
                                                   "\" (", li.address.toString(), ")"));
      }
    }
    li.backlog = lc.backlog() ? lc.backlog() : 1024;
    auto http = std::make_shared<Http::ConnectionManagerConfig>();
    http->listener_name = lc.name();
    if (lc.route_table().empty()) {
      errors.add(path + ".route_table", "is required");
    } else {
      auto it = snap->route_tables.find(lc.route_table());
      if (it != snap->route_tables.end()) {
        http->route_table = it->second;
      } else if (!table_names.contains(lc.route_table()) &&
                 !(o.static_may_reference_dynamic && !listener_path.dynamic(i))) {
        errors.add(path + ".route_table",
                   absl::StrCat("unknown route table \"", lc.route_table(), "\""));
      }
    }
    // Filter chain.
    Http::FactoryContext fctx;
    fctx.stats = stats;
    fctx.listener_name = lc.name();
    fctx.policies = policies;
    fctx.main_dispatcher = o.main_dispatcher;
    fctx.singletons = o.singletons;
    fctx.concurrency = o.concurrency;
    if (lc.http_filters_size() == 0) {
      http->filter_factories.push_back(
          *Http::FilterRegistry::get("router")->createFilterFactory({}, path, fctx));
    }
    for (int f = 0; f < lc.http_filters_size(); ++f) {
      const auto& fc = lc.http_filters(f);
      const std::string fpath = absl::StrCat(path, ".http_filters[", f, "]");
      Http::NamedHttpFilterConfigFactory* factory = Http::FilterRegistry::get(fc.name());
      if (factory == nullptr) {
        errors.add(fpath + ".name",
                   absl::StrCat("unknown filter \"", fc.name(), "\" (known: ",
                                absl::StrJoin(Http::FilterRegistry::names(), ", "), ")"));
        continue;
      }
      const bool last = f == lc.http_filters_size() - 1;
      if (factory->isTerminal() != last) {
        errors.add(fpath, factory->isTerminal() ? "a terminal filter must be last"
                                                : "the last filter must be terminal (router)");
      }
      auto cb = factory->createFilterFactory(fc.config(), fpath, fctx);
      if (!cb.ok()) {
        errors.add(cb.status());
        continue;
      }
      http->filter_factories.push_back(std::move(*cb));
    }
    // A route that names a policy must never be served without the filter that enforces it
    // (unauthenticated, or unlimited).
    auto require_filter = [&](const char* filter, const char* what,
                              const std::string& (*policy)(const sluice::config::v1::Route&)) {
      for (const auto& fc : lc.http_filters()) {
        if (fc.name() == filter) return;
      }
      for (int t = 0; t < sr.route_tables_size(); ++t) {
        const auto& tc = sr.route_tables(t);
        if (tc.name() != lc.route_table()) continue;
        for (int v = 0; v < tc.virtual_hosts_size(); ++v) {
          for (int r = 0; r < tc.virtual_hosts(v).routes_size(); ++r) {
            const auto& rc = tc.virtual_hosts(v).routes(r);
            if (policy(rc).empty()) continue;
            const std::string where =
                absl::StrCat(table_path(t, tc.name()), ".virtual_hosts[", v, "].routes[", r, "]");
            const std::string route_name =
                rc.name().empty() ? where : absl::StrCat("\"", rc.name(), "\" (", where, ")");
            errors.add(
                path + ".http_filters",
                absl::StrCat("route ", route_name, " requires ", what, " \"", policy(rc),
                             "\" but listener \"", lc.name(), "\" has no ", filter, " filter"));
          }
        }
      }
    };
    require_filter(
        "auth", "auth policy",
        [](const sluice::config::v1::Route& r) -> const std::string& { return r.auth(); });
    require_filter(
        "rate_limit", "rate limit policy",
        [](const sluice::config::v1::Route& r) -> const std::string& { return r.rate_limit(); });
    // Limits.
    const auto& lim = lc.limits();
    const std::string lpath = path + ".limits";
    if (lim.max_request_headers_kb() > 8192) {
      errors.add(lpath + ".max_request_headers_kb", "must be <= 8192");
    }
    http->codec.max_request_headers_bytes =
        (lim.max_request_headers_kb() ? lim.max_request_headers_kb() : 60) * 1024;
    http->codec.max_headers_count = lim.max_headers_count() ? lim.max_headers_count() : 100;
    http->codec.max_request_body_bytes = lim.max_request_body_bytes();
    for (auto [has, d, field] :
         {std::make_tuple(lim.has_request_headers_timeout(), &lim.request_headers_timeout(),
                          "request_headers_timeout"),
          std::make_tuple(lim.has_idle_timeout(), &lim.idle_timeout(), "idle_timeout"),
          std::make_tuple(lim.has_request_timeout(), &lim.request_timeout(), "request_timeout"),
          std::make_tuple(lim.has_stream_idle_timeout(), &lim.stream_idle_timeout(),
                          "stream_idle_timeout")}) {
      if (has) errors.add(Config::durationMs(*d, lpath + "." + field).status());
    }
    http->request_headers_timeout =
        Config::durationOr(lim.has_request_headers_timeout(), lim.request_headers_timeout(),
                           std::chrono::milliseconds(30000));
    if (http->request_headers_timeout.count() == 0) {
      errors.add(lpath + ".request_headers_timeout", "must be > 0 (slow clients must be cut off)");
    }
    http->idle_timeout = Config::durationOr(lim.has_idle_timeout(), lim.idle_timeout(),
                                            std::chrono::milliseconds(60000));
    http->request_timeout = Config::durationOr(lim.has_request_timeout(), lim.request_timeout(),
                                               std::chrono::milliseconds(0));
    http->stream_idle_timeout =
        Config::durationOr(lim.has_stream_idle_timeout(), lim.stream_idle_timeout(),
                           std::chrono::milliseconds(300000));
    http->buffer_limit = lim.buffer_limit_bytes() ? lim.buffer_limit_bytes() : 32 * 1024;
    if (http->buffer_limit < 16384) {
      errors.add(lpath + ".buffer_limit_bytes", "must be >= 16384");
    }
    http->request_buffering = !lc.has_request_buffering() || lc.request_buffering();
    http->request_buffer_bytes =
        lim.request_buffer_bytes() ? lim.request_buffer_bytes() : 64 * 1024;
    if (lim.request_buffer_bytes() > 16 * 1024 * 1024) {
      errors.add(lpath + ".request_buffer_bytes", "must be <= 16777216");
    }
    if (lim.has_request_body_timeout()) {
      errors.add(
          Config::durationMs(lim.request_body_timeout(), lpath + ".request_body_timeout").status());
    }
    http->request_body_timeout =
        Config::durationOr(lim.has_request_body_timeout(), lim.request_body_timeout(),
                           std::chrono::milliseconds(60000));
    // Request path and header hygiene.
    http->path.normalize = !lc.has_normalize_path() || lc.normalize_path();
    http->path.merge_slashes = !lc.has_merge_slashes() || lc.merge_slashes();
    using Escaped = sluice::config::v1::EscapedSlashes;
    switch (lc.path_with_escaped_slashes_action()) {
      case Escaped::REJECT_REQUEST:
        http->path.escaped_slashes = Http::Path::EscapedSlashesAction::RejectRequest;
        break;
      case Escaped::KEEP_UNCHANGED:
        http->path.escaped_slashes = Http::Path::EscapedSlashesAction::KeepUnchanged;
        break;
      case Escaped::UNESCAPE_AND_FORWARD:
        http->path.escaped_slashes = Http::Path::EscapedSlashesAction::UnescapeAndForward;
        break;
      case Escaped::UNESCAPE_AND_REDIRECT:
        http->path.escaped_slashes = Http::Path::EscapedSlashesAction::UnescapeAndRedirect;
        break;
      default:
        errors.add(path + ".path_with_escaped_slashes_action", "unknown value");
    }
    using Underscores = sluice::config::v1::UnderscoreHeaders;
    switch (lc.headers_with_underscores_action()) {
      case Underscores::DROP_HEADER:
        http->underscores = Http::UnderscoreHeadersAction::Drop;
        break;
      case Underscores::REJECT_REQUEST:
        http->underscores = Http::UnderscoreHeadersAction::Reject;
        break;
      case Underscores::ALLOW:
        http->underscores = Http::UnderscoreHeadersAction::Allow;
        break;
      default:
        errors.add(path + ".headers_with_underscores_action", "unknown value");
    }
    http->allow_trace = lc.allow_trace();
    http->scheme = lc.scheme().empty() ? "http" : lc.scheme();
    if (http->scheme != "http" && http->scheme != "https") {
      errors.add(path + ".scheme", "must be http or https");
    }
    if (lc.has_access_log()) {
      if (lc.access_log().path().empty()) {
        errors.add(path + ".access_log.path", "is required");
      } else if (!o.check_files) {
        // The control plane validates for data planes on other machines.
      } else if (o.access_logs == nullptr) {
        // Validation only: check the file could be opened, without creating it.
        absl::Status s = AccessLog::FileSink::checkWritable(lc.access_log().path());
        if (!s.ok()) errors.add(path + ".access_log.path", std::string(s.message()));
      } else {
        auto sink = o.access_logs->get(lc.access_log().path());
        if (!sink.ok()) {
          errors.add(path + ".access_log.path", std::string(sink.status().message()));
        } else {
          http->access_log = *sink;
        }
      }
      // Credentials never reach the log: the key-auth query parameters of every auth policy,
      // OAuth's access_token and the configured names have their values replaced.
      auto redact = [&](const std::string& name) {
        if (!name.empty() &&
            std::find(http->redact_query_params.begin(), http->redact_query_params.end(), name) ==
                http->redact_query_params.end()) {
          http->redact_query_params.push_back(name);
        }
      };
      redact("access_token");
      for (const std::string& name : lc.access_log().redact_query_params()) redact(name);
      if (policies != nullptr) {
        for (const auto& [name, policy] : policies->auth) {
          if (!policy->has_key_auth()) continue;
          if (policy->key_auth().key_names_size() == 0) redact("apikey");
          for (const std::string& k : policy->key_auth().key_names()) redact(k);
        }
      }
    }
    li.http = std::move(http);
    snap->listeners.push_back(std::move(li));
  }
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
