#include "source/server/snapshot.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "source/common/config/utility.h"
#include "source/common/http/filter.h"

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

absl::StatusOr<SnapshotConstSharedPtr> buildSnapshot(const sluice::config::v1::Bootstrap& bootstrap,
                                                     Stats::Store* stats,
                                                     AccessLogRegistry* access_logs,
                                                     const Snapshot* previous) {
  auto snap = std::make_shared<Snapshot>();
  snap->bootstrap = bootstrap;
  Config::ErrorList errors;
  const auto& sr = bootstrap.static_resources();

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

  // Names of clusters and route tables that exist, even if invalid: a reference to one that
  // failed is not reported a second time as "unknown".
  absl::flat_hash_set<std::string> cluster_names;
  absl::flat_hash_set<std::string> table_names;
  for (const auto& c : sr.clusters()) cluster_names.insert(c.name());
  for (const auto& t : sr.route_tables()) table_names.insert(t.name());

  for (int i = 0; i < sr.clusters_size(); ++i) {
    const std::string path = absl::StrCat("static_resources.clusters[", i, "]");
    Upstream::ClusterInfoConstSharedPtr info;
    if (previous != nullptr) {
      auto it = previous->clusters.find(sr.clusters(i).name());
      if (it != previous->clusters.end() &&
          it->second->config().SerializeAsString() == sr.clusters(i).SerializeAsString()) {
        info = it->second;  // unchanged: the same object, so workers keep its pools
      }
    }
    if (info == nullptr) {
      auto c = Upstream::ClusterInfo::create(sr.clusters(i), path, stats);
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
  for (int i = 0; i < sr.route_tables_size(); ++i) {
    const std::string path = absl::StrCat("static_resources.route_tables[", i, "]");
    auto t = Router::RouteTableImpl::create(
        sr.route_tables(i), path, stats,
        [&cluster_names](const std::string& c) { return cluster_names.contains(c); });
    if (!t.ok()) {
      errors.add(t.status());
      continue;
    }
    if (!snap->route_tables.emplace((*t)->name(), *t).second) {
      errors.add(path + ".name", absl::StrCat("duplicate route table \"", (*t)->name(), "\""));
    }
  }
  absl::flat_hash_set<std::string> listener_names;
  for (int i = 0; i < sr.listeners_size(); ++i) {
    const auto& lc = sr.listeners(i);
    const std::string path = absl::StrCat("static_resources.listeners[", i, "]");
    ListenerInfo li;
    li.name = lc.name();
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
      } else if (!table_names.contains(lc.route_table())) {
        errors.add(path + ".route_table",
                   absl::StrCat("unknown route table \"", lc.route_table(), "\""));
      }
    }
    // Filter chain.
    Http::FactoryContext fctx{stats, lc.name()};
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
    http->buffer_limit = lim.buffer_limit_bytes() ? lim.buffer_limit_bytes() : 1024 * 1024;
    if (http->buffer_limit < 16384) {
      errors.add(lpath + ".buffer_limit_bytes", "must be >= 16384");
    }
    http->scheme = lc.scheme().empty() ? "http" : lc.scheme();
    if (http->scheme != "http" && http->scheme != "https") {
      errors.add(path + ".scheme", "must be http or https");
    }
    if (lc.has_access_log()) {
      if (lc.access_log().path().empty()) {
        errors.add(path + ".access_log.path", "is required");
      } else if (access_logs == nullptr) {
        // Validation only: check the file could be opened, without creating it.
        absl::Status s = AccessLog::FileSink::checkWritable(lc.access_log().path());
        if (!s.ok()) errors.add(path + ".access_log.path", std::string(s.message()));
      } else {
        auto sink = access_logs->get(lc.access_log().path());
        if (!sink.ok()) {
          errors.add(path + ".access_log.path", std::string(sink.status().message()));
        } else {
          http->access_log = *sink;
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
