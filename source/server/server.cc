#include "source/server/server.h"

#include <errno.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "source/common/common/json.h"
#include "source/common/config/redact.h"
#include "source/common/config/utility.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace Server {
namespace {

// How long /ready waits at start for the first answers of the DNS clusters' names.
constexpr std::chrono::milliseconds kInitialDnsWait{5000};

// At exit, after the drain: the time log sinks get to send what they hold.
constexpr std::chrono::milliseconds kSinkDrainTime{5000};

// The bootstrap's dns_resolvers (validated with the rest of the bootstrap; a bad entry is
// skipped here and refused by the build).
Network::DnsResolverOptionsConstSharedPtr dnsOptions(
    const sluice::config::v1::Bootstrap& bootstrap) {
  auto options = std::make_shared<Network::DnsResolverOptions>();
  for (const auto& r : bootstrap.dns_resolvers()) {
    Network::Address a;
    if (Network::Address::parse(r.address(), r.port() == 0 ? 53 : r.port(), a)) {
      options->servers.push_back(a);
    }
  }
  return options;
}

// The gRPC target for control_plane.address. gRPC resolves a host name itself (its c-ares
// resolver, asynchronously, off our loops); with dns_resolvers, it is told to ask the first of
// them (a `dns://server/host:port` target: gRPC's resolver takes one server). IP literals,
// localhost and explicit gRPC targets ("dns:///...", "ipv4:...", "unix:...") stay as written.
std::string controlPlaneTarget(const std::string& address, const Network::DnsResolverOptions& dns) {
  if (dns.servers.empty() || address.find(':') == std::string::npos ||
      address.find("://") != std::string::npos || absl::StartsWith(address, "unix:") ||
      absl::StartsWith(address, "ipv4:") || absl::StartsWith(address, "ipv6:") ||
      absl::StartsWith(address, "[")) {
    return address;
  }
  const std::string host = address.substr(0, address.rfind(':'));
  if (host == "localhost" || Network::isIpLiteral(host) || !Network::isValidHostName(host)) {
    return address;
  }
  return absl::StrCat("dns://", dns.servers.front().toString(), "/", address);
}

// Equal for bootstraps with the same DNS servers.
std::string dnsOptionsKey(const sluice::config::v1::Bootstrap& bootstrap) {
  std::string key;
  for (const auto& r : bootstrap.dns_resolvers()) key += r.SerializeAsString() + "\n";
  return key;
}

}  // namespace

Server::Server(Options options, sluice::config::v1::Bootstrap bootstrap)
    : options_(std::move(options)), bootstrap_(std::move(bootstrap)) {
  concurrency_ = options_.concurrency ? options_.concurrency : bootstrap_.concurrency();
  if (concurrency_ == 0) {
    concurrency_ = std::max(1u, std::thread::hardware_concurrency());
  }
  stats_ = std::make_unique<Stats::Store>(concurrency_ + 1);
  http_stats_ = Http::HttpStats::create(*stats_);
  reload_ok_ = &stats_->counter("server.config_reload", "server_config_reload_total");
  reload_failed_ =
      &stats_->counter("server.config_reload_failed", "server_config_reload_failed_total");
  dns_rebuild_failed_ =
      &stats_->counter("server.dns_rebuild_failed", "server_dns_rebuild_failed_total");
  dispatcher_ = Event::createLibeventDispatcher();
  dns_options_ = dnsOptions(bootstrap_);
  health_ = std::make_unique<Upstream::HealthManager>(*dispatcher_, stats_.get());
}

Server::~Server() {
  for (auto& w : workers_) w->stop();
  workers_.clear();
  if (signal_fd_ >= 0) close(signal_fd_);
}

absl::Status Server::bindListeners(const Snapshot& snap,
                                   std::vector<std::vector<ListenSocket>>& out,
                                   std::map<std::string, BoundListener>& bindings) {
  out.assign(concurrency_, {});
  bindings.clear();
  auto fail = [&out](absl::Status s) {
    for (auto& per_worker : out) {
      for (ListenSocket& ls : per_worker) close(ls.fd);
      per_worker.clear();
    }
    return s;
  };
  for (const ListenerInfo& li : snap.listeners) {
    Network::Address addr = li.address;
    const std::string configured = addr.toString();
    auto existing = bound_listeners_.find(li.name);
    if (existing != bound_listeners_.end() && existing->second.configured == configured) {
      continue;  // unchanged address: the workers keep their sockets
    }
    if (addr.port() != 0) {
      // SO_REUSEPORT would let us share a port another process already listens on (and split
      // its traffic). Probe with a plain bind first so that is an error, as it should be.
      int probe = socket(addr.ss.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      int one = 1;
      setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      const bool busy = bind(probe, reinterpret_cast<const sockaddr*>(&addr.ss), addr.len) != 0;
      const int err = errno;
      close(probe);
      if (busy) {
        return fail(absl::UnavailableError(absl::StrCat(
            "listener \"", li.name, "\": cannot listen on ", configured, ": ", strerror(err))));
      }
    }
    for (uint32_t w = 0; w < concurrency_; ++w) {
      int fd = socket(addr.ss.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
      if (bind(fd, reinterpret_cast<const sockaddr*>(&addr.ss), addr.len) != 0 ||
          listen(fd, li.backlog) != 0) {
        int err = errno;
        close(fd);
        return fail(absl::UnavailableError(absl::StrCat(
            "listener \"", li.name, "\": cannot listen on ", configured, ": ", strerror(err))));
      }
      if (w == 0) {
        // Port 0: the first socket picks the port; the others share it (SO_REUSEPORT).
        addr.len = sizeof(addr.ss);
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr.ss), &addr.len);
        bindings[li.name] = BoundListener{configured, addr.toString()};
      }
      out[w].push_back(ListenSocket{li.name, fd});
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<SnapshotConstSharedPtr> Server::build(
    const sluice::config::v1::Bootstrap& bootstrap,
    const sluice::config::v1::StaticResources& dynamic) {
  MergedConfig merged = mergeDynamic(bootstrap, dynamic);
  BuildOptions o;
  o.previous = snapshot_.get();
  o.access_logs = &access_logs_;
  o.static_may_reference_dynamic = bootstrap.has_control_plane();
  o.main_dispatcher = dispatcher_.get();
  o.singletons = &singletons_;
  o.admin_handlers = &admin_handlers_;
  o.cluster_states = &health_->registry();
  o.concurrency = concurrency_;
  o.resolved_dns = &dns_->resolved();
  o.main_dns_resolver = dns_resolver_.get();
  o.dns_options = dns_options_;
  o.first_dynamic_listener = merged.first_dynamic_listener;
  o.first_dynamic_route_table = merged.first_dynamic_route_table;
  o.first_dynamic_cluster = merged.first_dynamic_cluster;
  o.first_dynamic_cluster_endpoints = merged.first_dynamic_cluster_endpoints;
  o.first_dynamic_secret = merged.first_dynamic_secret;
  o.first_dynamic_policy = merged.first_dynamic_policy;
  return buildSnapshot(merged.bootstrap, stats_.get(), o);
}

absl::Status Server::publish(SnapshotConstSharedPtr next) {
  std::vector<std::vector<ListenSocket>> sockets;
  std::map<std::string, BoundListener> bindings;
  absl::Status s = bindListeners(*next, sockets, bindings);
  if (!s.ok()) return s;
  for (auto it = bound_listeners_.begin(); it != bound_listeners_.end();) {
    bool kept = false;
    for (const ListenerInfo& li : next->listeners) kept = kept || li.name == it->first;
    if (!kept) {
      spdlog::info("listener \"{}\" on {} removed: draining its connections", it->first,
                   it->second.bound);
    }
    it = kept ? std::next(it) : bound_listeners_.erase(it);
  }
  for (auto& [name, b] : bindings) {
    spdlog::info("listener \"{}\" on http://{}/", name, b.bound);
    bound_listeners_[name] = b;
  }
  auto snap = std::const_pointer_cast<Snapshot>(next);
  snap->version = absl::StrCat(++publishes_);
  snapshot_ = next;
  // RCU: every worker swaps its pointer on its own loop; in-flight requests keep the snapshot
  // they started with.
  for (uint32_t i = 0; i < workers_.size(); ++i) {
    workers_[i]->updateSnapshot(snapshot_, std::move(sockets[i]));
  }
  health_->update(snapshot_->clusters);
  dns_->update(snapshot_->clusters);
  return absl::OkStatus();
}

void Server::onDnsChange() {
  if (draining_ || snapshot_ == nullptr) {
    return;
  }
  // The running config again, with the new addresses: only the clusters whose addresses
  // changed are new objects.
  auto snap = build(bootstrap_, effective_);
  absl::Status s = snap.ok() ? publish(*snap) : snap.status();
  if (!s.ok()) {
    dns_rebuild_failed_->inc();
    spdlog::error("DNS: new addresses not applied, the running config stays:\n{}",
                  std::string(s.message()));
  }
}

int Server::run() {
  // Signals are read from a signalfd on the main loop; block them in every thread first.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  signal_fd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  signal_event_ = dispatcher_->createFileEvent(
      signal_fd_,
      [this](uint32_t) {
        signalfd_siginfo si;
        while (read(signal_fd_, &si, sizeof(si)) == sizeof(si)) {
          if (si.ssi_signo == SIGHUP) {
            reload();
            continue;
          }
          startDrain(si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
        }
      },
      Event::FileReadyType::Read);

  auto resolver = Network::createDnsResolver(*dispatcher_, *dns_options_);
  if (!resolver.ok()) {
    spdlog::error("{}", std::string(resolver.status().message()));
    return 1;
  }
  dns_resolver_ = std::move(*resolver);
  dns_ = std::make_unique<Upstream::DnsDiscovery>(*dispatcher_, *dns_resolver_, stats_.get(),
                                                  [this]() { onDnsChange(); });

  auto snap = build(bootstrap_, effective_);
  if (!snap.ok()) {
    spdlog::error("invalid configuration:\n{}", std::string(snap.status().message()));
    return 1;
  }
  snapshot_ = *snap;

  std::vector<std::vector<ListenSocket>> sockets;
  absl::Status s = bindListeners(*snapshot_, sockets, bound_listeners_);
  if (!s.ok()) {
    spdlog::error("{}", std::string(s.message()));
    return 1;
  }

  // Admin.
  const auto& ac = bootstrap_.admin();
  Network::Address admin_addr;
  const bool has_admin = bootstrap_.has_admin();
  Network::Address::parse(has_admin && !ac.address().empty() ? ac.address() : "127.0.0.1",
                          has_admin ? ac.port() : 9901, admin_addr);
  admin_ = std::make_unique<AdminServer>(
      *dispatcher_, [this](const std::string& m, const std::string& p, const std::string& q) {
        return handleAdmin(m, p, q);
      });
  std::string err;
  if (!admin_->listen(admin_addr, err)) {
    spdlog::error("{}", err);
    return 1;
  }
  for (const std::string& path : {ac.address_path(), options_.admin_address_path}) {
    if (path.empty()) continue;
    std::string tmp = path + ".tmp";
    std::ofstream(tmp) << admin_->address().toString() << "\n";
    rename(tmp.c_str(), path.c_str());
  }

  for (uint32_t i = 0; i < concurrency_; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, http_stats_));
  }
  for (uint32_t i = 0; i < concurrency_; ++i) {
    workers_[i]->start(snapshot_, std::move(sockets[i]));
  }
  health_->update(snapshot_->clusters);
  dns_->update(snapshot_->clusters);
  for (const auto& [name, b] : bound_listeners_) {
    spdlog::info("listener \"{}\" on http://{}/", name, b.bound);
  }
  spdlog::info("admin on http://{}/ ; {} worker(s)", admin_->address().toString(), concurrency_);

  started_ = dispatcher_->now();
  if (bootstrap_.has_control_plane()) {
    const auto& cp = bootstrap_.control_plane();
    Config::AdsOptions ao;
    ao.address = controlPlaneTarget(cp.address(), *dns_options_);
    ao.delta = cp.api_type() == sluice::config::v1::ControlPlane::DELTA;
    if (cp.has_tls()) {
      // Read once, at start (a certificate renewed on disk takes a restart).
      auto tls = loadControlPlaneTls(cp.tls());
      if (!tls.ok()) {
        spdlog::error("{}", std::string(tls.status().message()));
        return 1;
      }
      ao.tls = std::move(*tls);
      ao.tls_server_name = cp.tls().server_name();
    }
    ao.node = bootstrap_.node();
    if (ao.node.id().empty()) {
      char host[256] = {0};
      gethostname(host, sizeof(host) - 1);
      ao.node.set_id(host);
    }
    if (ao.node.cluster().empty()) ao.node.set_cluster("default");
    ao.node.set_user_agent("sluice/1.0");
    ao.retry_interval = Config::durationOr(cp.has_retry_interval(), cp.retry_interval(),
                                           std::chrono::milliseconds(250));
    ao.max_retry_interval = Config::durationOr(cp.has_max_retry_interval(), cp.max_retry_interval(),
                                               std::chrono::milliseconds(10000));
    ao.retry_interval = std::max(ao.retry_interval, std::chrono::milliseconds(1));
    ao.max_retry_interval = std::max(ao.max_retry_interval, ao.retry_interval);
    initial_fetch_timeout_ =
        Config::durationOr(cp.has_initial_fetch_timeout(), cp.initial_fetch_timeout(),
                           std::chrono::milliseconds(15000));
    spdlog::info("control plane {} ({}, {}), node \"{}\" in group \"{}\"", ao.address,
                 ao.delta ? "delta" : "state of the world",
                 !ao.tls                      ? "cleartext"
                 : ao.tls->cert_chain.empty() ? "TLS"
                                              : "TLS with a client certificate",
                 ao.node.id(), ao.node.cluster());
    ads_ = std::make_unique<Config::AdsClient>(*dispatcher_, ao, *this, stats_.get());
    ads_->start();
  }

  dispatcher_->run();

  ads_.reset();  // cancels the stream; waits until gRPC lets go of it
  for (auto& w : workers_) w->stop();
  // What filters still hold to send (http_log entries), now that no request adds any: sent
  // within a few seconds, else counted as dropped when the objects go.
  if (const size_t late = singletons_.drainAll(std::chrono::steady_clock::now() + kSinkDrainTime);
      late > 0) {
    spdlog::warn("{} log sink(s) not drained within {} ms", late, kSinkDrainTime.count());
  }
  access_logs_.flushAll();
  spdlog::info("drained; exiting");
  return 0;
}

void Server::reload() {
  if (options_.config_path.empty()) {
    spdlog::warn("SIGHUP: running on the embedded config, nothing to reload");
    return;
  }
  if (draining_) {
    return;
  }
  auto fail = [this](const std::string& why) {
    reload_failed_->inc();
    spdlog::error("SIGHUP: config not reloaded, the running config stays:\n{}", why);
  };
  sluice::config::v1::Bootstrap bootstrap;
  absl::Status s = Config::loadFromFile(options_.config_path, bootstrap);
  if (!s.ok()) {
    fail(std::string(s.message()));
    return;
  }
  if (!(bootstrap.admin().SerializeAsString() == bootstrap_.admin().SerializeAsString()) ||
      bootstrap.concurrency() != bootstrap_.concurrency() ||
      bootstrap.node().SerializeAsString() != bootstrap_.node().SerializeAsString() ||
      bootstrap.control_plane().SerializeAsString() !=
          bootstrap_.control_plane().SerializeAsString() ||
      dnsOptionsKey(bootstrap) != dnsOptionsKey(bootstrap_)) {
    fail("admin, concurrency, node, control_plane and dns_resolvers changes need a restart");
    return;
  }
  auto snap = build(bootstrap, effective_);
  if (!snap.ok()) {
    fail(std::string(snap.status().message()));
    return;
  }
  s = publish(*snap);
  if (!s.ok()) {
    fail(std::string(s.message()));
    return;
  }
  bootstrap_ = bootstrap;
  ++reloads_;
  reload_ok_->inc();
  spdlog::info("SIGHUP: config reloaded from {} (version {})", options_.config_path,
               snapshot_->version);
}

absl::StatusOr<std::string> Server::resourceName(const std::string& type_url,
                                                 const google::protobuf::Any& resource) {
  return sluice::Server::resourceName(type_url, resource);
}

absl::Status Server::onConfigUpdate(const std::string& type_url,
                                    const Config::ResourceSet& resources,
                                    const std::string& version) {
  if (draining_) {
    return absl::UnavailableError("draining: no config is applied while shutting down");
  }
  sluice::config::v1::StaticResources declared = declared_;
  absl::Status s = decodeResources(type_url, resources, declared);
  if (!s.ok()) return s;
  std::vector<std::string> retained;
  sluice::config::v1::StaticResources effective =
      withRetained(declared, effective_, bootstrap_.static_resources(), &retained);
  auto snap = build(bootstrap_, effective);
  if (!snap.ok()) return snap.status();
  s = publish(*snap);
  if (!s.ok()) return s;
  declared_ = std::move(declared);
  effective_ = std::move(effective);
  retained_ = std::move(retained);
  if (!retained_.empty()) {
    spdlog::info("kept until nothing refers to them: {}", absl::StrJoin(retained_, ", "));
  }
  (void)version;
  return absl::OkStatus();
}

bool Server::ready() const {
  if (draining_) return false;
  if (!dns_warm_) {
    // Latched: once warm, later configs with new names never make /ready flap.
    dns_warm_ =
        dns_ == nullptr || dns_->initialized() || dispatcher_->now() - started_ >= kInitialDnsWait;
    if (!dns_warm_) return false;
  }
  if (ads_ == nullptr || ads_->initialized()) return true;
  return initial_fetch_timeout_.count() > 0 &&
         dispatcher_->now() - started_ >= initial_fetch_timeout_;
}

void Server::startDrain(const char* why) {
  if (draining_) {
    return;
  }
  draining_ = true;
  spdlog::info("{}: draining (stop accepting, finish in-flight requests)", why);
  for (auto& w : workers_) w->drain();
  auto timeout = Config::durationOr(bootstrap_.has_drain_timeout(), bootstrap_.drain_timeout(),
                                    std::chrono::milliseconds(10000));
  drain_deadline_ = dispatcher_->now() + timeout;
  drain_timer_ = dispatcher_->createTimer([this]() { onDrainTick(); });
  drain_timer_->enableTimer(std::chrono::milliseconds(50));
}

void Server::onDrainTick() {
  size_t open = 0;
  for (auto& w : workers_) open += w->connections();
  if (open == 0 || dispatcher_->now() >= drain_deadline_) {
    if (open > 0) {
      spdlog::warn("drain timeout with {} connection(s) still open", open);
    }
    dispatcher_->exit();
    return;
  }
  drain_timer_->enableTimer(std::chrono::milliseconds(50));
}

std::string Server::configDumpJson() const {
  // Written by hand around toJson() pieces: a 10,000-route table is one resource, and this
  // keeps every resource's JSON exactly as the config schema prints it. Secrets (private keys)
  // are redacted (Config::toRedactedJson).
  std::string out = absl::StrCat("{\"version_info\":", Json::quote(snapshot_->version),
                                 ",\"bootstrap\":", Config::toRedactedJson(bootstrap_));
  if (ads_ != nullptr) {
    const Config::AdsOptions& o = ads_->options();
    absl::StrAppend(&out, ",\"control_plane\":{\"address\":", Json::quote(o.address), ",\"api\":\"",
                    o.delta ? "delta" : "sotw", "\",\"tls\":", o.tls ? "true" : "false",
                    ",\"connected\":", ads_->connected() ? "true" : "false",
                    ",\"initialized\":", ads_->initialized() ? "true" : "false",
                    ",\"reconnects\":", ads_->reconnects(), ",\"node\":", Config::toJson(o.node),
                    "}");
    absl::StrAppend(&out, ",\"dynamic_resources\":{");
    bool first_type = true;
    for (const std::string& type_url : Config::resourceTypeUrls()) {
      const Config::AdsClient::TypeState& st = ads_->state(type_url);
      absl::StrAppend(&out, first_type ? "" : ",", Json::quote(Config::shortTypeName(type_url)),
                      ":{\"version_info\":", Json::quote(st.version), ",\"accepted\":", st.accepted,
                      ",\"rejected\":", st.rejected);
      first_type = false;
      if (!st.last_error.empty()) {
        absl::StrAppend(&out,
                        ",\"last_rejected\":{\"version_info\":", Json::quote(st.rejected_version),
                        ",\"error\":", Json::quote(st.last_error), "}");
      }
      absl::StrAppend(&out, ",\"resources\":[");
      bool first = true;
      sluice::config::v1::StaticResources one;
      for (const auto& [name, r] : st.resources) {
        Config::ResourceSet single{{name, r}};
        std::string body = "null";
        if (decodeResources(type_url, single, one).ok()) {
          const google::protobuf::Message* m = firstResource(type_url, one);
          if (m != nullptr) body = Config::toRedactedJson(*m);
        }
        absl::StrAppend(&out, first ? "" : ",", "{\"name\":", Json::quote(name));
        if (!r.version.empty()) absl::StrAppend(&out, ",\"version\":", Json::quote(r.version));
        absl::StrAppend(&out, ",\"resource\":", body, "}");
        first = false;
      }
      absl::StrAppend(&out, "]}");
    }
    absl::StrAppend(&out, "},\"retained\":[");
    for (size_t i = 0; i < retained_.size(); ++i) {
      absl::StrAppend(&out, i ? "," : "", Json::quote(retained_[i]));
    }
    absl::StrAppend(&out, "]");
  }
  out += "}";
  return out;
}

std::string Server::listenersJson() const {
  Json::Writer w;
  w.beginObject();
  w.key("listeners");
  w.beginArray();
  for (const auto& [name, b] : bound_listeners_) {
    w.beginObject();
    w.field("name", name);
    w.field("address", b.bound);
    w.endObject();
  }
  w.endArray();
  w.endObject();
  return w.take();
}

std::string Server::clustersJson() const {
  const uint32_t slots = stats_->slots();
  Json::Writer w;
  w.beginObject();
  w.key("clusters");
  w.beginArray();
  std::vector<const Upstream::ClusterInfo*> sorted;
  for (const auto& [n, c] : snapshot_->clusters) sorted.push_back(c.get());
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->name() < b->name(); });
  for (const Upstream::ClusterInfo* c : sorted) {
    w.beginObject();
    w.field("name", c->name());
    w.field("lb_policy", sluice::config::v1::Cluster::LbPolicy_Name(c->lbPolicy()));
    w.field("type", sluice::config::v1::Cluster::DiscoveryType_Name(c->config().type()));
    if (c->usesDns()) {
      // Each host name and what it resolved to (the endpoints below are built from these).
      w.key("dns");
      w.beginObject();
      w.field("refresh_rate_ms", static_cast<uint64_t>(c->dns().refresh_rate.count()));
      w.field("respect_dns_ttl", c->dns().respect_ttl);
      w.field("lookup_family",
              sluice::config::v1::Cluster::DnsLookupFamily_Name(c->dns().lookup_family));
      w.key("hosts");
      w.beginArray();
      for (const auto& e : c->config().endpoints()) {
        if (Network::isIpLiteral(e.address()) || e.address() == "localhost") continue;
        w.beginObject();
        w.field("host", e.address());
        w.field("port", e.port());
        auto it = c->resolvedHosts().find(e.address());
        w.field("resolved", it != c->resolvedHosts().end());
        w.key("addresses");
        w.beginArray();
        if (it != c->resolvedHosts().end()) {
          for (const std::string& ip : it->second) w.value(ip);
        }
        w.endArray();
        w.endObject();
      }
      w.endArray();
      w.endObject();
    }
    w.field("connect_timeout_ms", static_cast<uint64_t>(c->connectTimeout().count()));
    const size_t healthy = Upstream::HealthManager::healthyCount(*c);
    w.field("healthy_endpoints", static_cast<uint64_t>(healthy));
    // No endpoint healthy: requests go to all of them (panic mode).
    w.field("panic", healthy == 0 && !c->endpoints().empty());
    w.field("health_check",
            c->healthCheck().enabled ? (c->healthCheck().tcp ? "TCP" : "HTTP") : "none");
    w.field("outlier_detection", c->outlier().enabled);
    const Upstream::CircuitBreakerConfig& cb = c->circuitBreakers();
    Upstream::ClusterState& st = c->state();
    w.key("circuit_breakers");
    w.beginObject();
    w.field("max_connections", cb.max_connections);
    w.field("max_pending_requests", cb.max_pending_requests);
    w.field("max_requests", cb.max_requests);
    w.field("max_retries", cb.max_retries);
    w.field("connections", st.cx_active.load(std::memory_order_relaxed));
    w.field("pending_requests", st.rq_pending.load(std::memory_order_relaxed));
    w.field("requests", st.rq_active.load(std::memory_order_relaxed));
    w.field("retries", st.retries_active.load(std::memory_order_relaxed));
    w.endObject();
    w.key("endpoints");
    w.beginArray();
    const auto now = dispatcher_->now();
    for (const Upstream::Endpoint& e : c->endpoints()) {
      const Upstream::EndpointState& es = *e.state;
      const uint32_t flags = es.flags();
      w.beginObject();
      w.field("address", e.name);
      w.field("weight", e.weight);
      w.field("health", es.healthy() ? "healthy" : "unhealthy");
      w.key("health_flags");
      w.beginArray();
      if (flags & Upstream::kFailedActiveHealthCheck) w.value("failed_active_health_check");
      if (flags & Upstream::kFailedOutlierCheck) w.value("ejected");
      w.endArray();
      w.field("active_requests", e.stats.rq_active->value(slots));
      w.field("requests_total", e.stats.rq_total->value(slots));
      w.field("connect_failures", e.stats.connect_fail->value(slots));
      if (c->healthCheck().enabled) {
        w.key("active_health_check");
        w.beginObject();
        w.field("status", !es.hc.checked                                 ? "unknown"
                          : (flags & Upstream::kFailedActiveHealthCheck) ? "unhealthy"
                                                                         : "healthy");
        w.field("checks", es.hc.checks);
        w.field("failures", es.hc.failures);
        w.field("consecutive_successes", es.hc.successes_in_row);
        w.field("consecutive_failures", es.hc.failures_in_row);
        w.field("last_failure", es.hc.last_failure);
        w.endObject();
      }
      if (c->outlier().enabled) {
        w.key("outlier");
        w.beginObject();
        const bool ejected = (flags & Upstream::kFailedOutlierCheck) != 0;
        w.field("ejected", ejected);
        w.field("ejections", es.outlier.ejections);
        w.field("ejection_multiplier", es.outlier.ejection_multiplier);
        if (ejected) {
          w.field("ejected_for_ms", static_cast<int64_t>(std::max<int64_t>(
                                        0, std::chrono::duration_cast<std::chrono::milliseconds>(
                                               es.outlier.ejected_until - now)
                                               .count())));
        }
        w.field("last_reason", es.outlier.last_reason);
        w.field("consecutive_5xx", es.consecutive_5xx.load(std::memory_order_relaxed));
        w.field("consecutive_gateway_failures",
                es.consecutive_gateway_failure.load(std::memory_order_relaxed));
        w.endObject();
      }
      w.endObject();
    }
    w.endArray();
    w.endObject();
  }
  w.endArray();
  w.endObject();
  return w.take();
}

AdminResponse Server::handleAdmin(const std::string& method, const std::string& path,
                                  const std::string& query) {
  AdminResponse r;
  const bool get = method == "GET" || method == "HEAD";
  auto json = [&r](std::string body) {
    r.content_type = "application/json";
    r.body = std::move(body);
    r.body += "\n";
  };
  if (path == "/quitquitquit") {
    if (method != "POST") {
      r.status = 405;
      r.body = "use POST\n";
      return r;
    }
    r.body = "OK\n";
    dispatcher_->deferred([this]() { startDrain("POST /quitquitquit"); });
    return r;
  }
  if (Admin::Handler extension = admin_handlers_.find(path)) {
    return extension(method, path, query);  // an endpoint a filter added (it checks the method)
  }
  if (!get) {
    r.status = 405;
    r.body = "method not allowed\n";
    return r;
  }
  if (path == "/ready") {
    r.status = ready() ? 200 : 503;
    r.body = draining_ ? "DRAINING\n" : ready() ? "LIVE\n" : "INITIALIZING\n";
  } else if (path == "/stats") {
    if (query.find("format=json") != std::string::npos) {
      json(stats_->renderJson());
    } else if (query.find("format=prometheus") != std::string::npos) {
      r.content_type = "text/plain; version=0.0.4";
      r.body = stats_->renderPrometheus();
    } else {
      r.body = stats_->renderText();
    }
  } else if (path == "/stats/prometheus") {
    r.content_type = "text/plain; version=0.0.4";
    r.body = stats_->renderPrometheus();
  } else if (path == "/config_dump") {
    json(configDumpJson());
  } else if (path == "/clusters") {
    json(clustersJson());
  } else if (path == "/listeners") {
    json(listenersJson());
  } else if (path == "/") {
    r.body =
        "Sluice admin\n"
        "  GET  /ready              200 LIVE, or 503 DRAINING / INITIALIZING (no config yet)\n"
        "  GET  /stats              counters, gauges, histograms (?format=json|prometheus)\n"
        "  GET  /stats/prometheus   Prometheus text format\n"
        "  GET  /config_dump        the active configuration: bootstrap, dynamic resources\n"
        "                           with their versions, control-plane stream state (JSON)\n"
        "  GET  /clusters           clusters and endpoints: health, ejections, circuit\n"
        "                           breakers, request counters (JSON)\n"
        "  GET  /listeners          listeners and their bound addresses (JSON)\n"
        "  POST /quitquitquit       drain and exit\n";
    for (const std::string& line : admin_handlers_.help())
      absl::StrAppend(&r.body, "  ", line, "\n");
  } else {
    r.status = 404;
    r.body = "not found; see /\n";
  }
  return r;
}

}  // namespace Server
}  // namespace sluice
