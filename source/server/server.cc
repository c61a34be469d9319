#include "source/server/server.h"

#include <errno.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "source/common/common/json.h"
#include "source/common/config/utility.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace Server {

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
  dispatcher_ = Event::createLibeventDispatcher();
}

Server::~Server() {
  for (auto& w : workers_) w->stop();
  workers_.clear();
  if (signal_fd_ >= 0) close(signal_fd_);
}

absl::Status Server::bindListeners(const Snapshot& snap, uint32_t workers,
                                   std::vector<std::vector<ListenSocket>>& out) {
  out.assign(workers, {});
  for (const ListenerInfo& li : snap.listeners) {
    Network::Address addr = li.address;
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
        return absl::UnavailableError(absl::StrCat("listener \"", li.name, "\": cannot listen on ",
                                                   addr.toString(), ": ", strerror(err)));
      }
    }
    for (uint32_t w = 0; w < workers; ++w) {
      int fd = socket(addr.ss.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
      if (bind(fd, reinterpret_cast<const sockaddr*>(&addr.ss), addr.len) != 0 ||
          listen(fd, li.backlog) != 0) {
        int err = errno;
        close(fd);
        return absl::UnavailableError(absl::StrCat("listener \"", li.name, "\": cannot listen on ",
                                                   addr.toString(), ": ", strerror(err)));
      }
      if (w == 0) {
        // Port 0: the first socket picks the port; the others share it (SO_REUSEPORT).
        addr.len = sizeof(addr.ss);
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr.ss), &addr.len);
        bound_listeners_.emplace_back(li.name, addr.toString());
      }
      out[w].push_back(ListenSocket{li.name, fd});
    }
  }
  return absl::OkStatus();
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

  auto snap = buildSnapshot(bootstrap_, stats_.get(), &access_logs_, nullptr);
  if (!snap.ok()) {
    spdlog::error("invalid configuration:\n{}", std::string(snap.status().message()));
    return 1;
  }
  snapshot_ = *snap;

  std::vector<std::vector<ListenSocket>> sockets;
  absl::Status s = bindListeners(*snapshot_, concurrency_, sockets);
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
  for (const auto& [name, addr] : bound_listeners_) {
    spdlog::info("listener \"{}\" on http://{}/", name, addr);
  }
  spdlog::info("admin on http://{}/ ; {} worker(s)", admin_->address().toString(), concurrency_);

  dispatcher_->run();

  for (auto& w : workers_) w->stop();
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
  auto snap = buildSnapshot(bootstrap, stats_.get(), &access_logs_, snapshot_.get());
  if (!snap.ok()) {
    fail(std::string(snap.status().message()));
    return;
  }
  // Listener sockets are bound once at start; adding, removing or moving a listener needs a
  // restart until listeners become dynamic (the xDS issue).
  auto listeners = [](const Snapshot& sn) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const ListenerInfo& li : sn.listeners) out.emplace_back(li.name, li.address.toString());
    std::sort(out.begin(), out.end());
    return out;
  };
  if (listeners(**snap) != listeners(*snapshot_)) {
    fail("listeners were added, removed or moved: that needs a restart");
    return;
  }
  if (!(bootstrap.admin().SerializeAsString() == bootstrap_.admin().SerializeAsString()) ||
      bootstrap.concurrency() != bootstrap_.concurrency()) {
    fail("admin and concurrency changes need a restart");
    return;
  }
  auto next = std::const_pointer_cast<Snapshot>(*snap);
  next->version = absl::StrCat(++reloads_);
  bootstrap_ = bootstrap;
  snapshot_ = next;
  // RCU: every worker swaps its pointer on its own loop; in-flight requests keep the snapshot
  // they started with.
  for (auto& w : workers_) {
    w->updateSnapshot(snapshot_);
  }
  reload_ok_->inc();
  spdlog::info("SIGHUP: config reloaded from {} (version {})", options_.config_path,
               snapshot_->version);
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

std::string Server::listenersJson() const {
  Json::Writer w;
  w.beginObject();
  w.key("listeners");
  w.beginArray();
  for (const auto& [name, addr] : bound_listeners_) {
    w.beginObject();
    w.field("name", name);
    w.field("address", addr);
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
    w.field("connect_timeout_ms", static_cast<uint64_t>(c->connectTimeout().count()));
    w.key("endpoints");
    w.beginArray();
    for (const Upstream::Endpoint& e : c->endpoints()) {
      w.beginObject();
      w.field("address", e.name);
      w.field("weight", e.weight);
      w.field("active_requests", e.stats.rq_active->value(slots));
      w.field("requests_total", e.stats.rq_total->value(slots));
      w.field("connect_failures", e.stats.connect_fail->value(slots));
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
  if (!get) {
    r.status = 405;
    r.body = "method not allowed\n";
    return r;
  }
  if (path == "/ready") {
    r.status = draining_ ? 503 : 200;
    r.body = draining_ ? "DRAINING\n" : "LIVE\n";
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
    json(absl::StrCat("{\"version_info\":\"", snapshot_->version,
                      "\",\"bootstrap\":", Config::toJson(snapshot_->bootstrap), "}"));
  } else if (path == "/clusters") {
    json(clustersJson());
  } else if (path == "/listeners") {
    json(listenersJson());
  } else if (path == "/") {
    r.body =
        "Sluice admin\n"
        "  GET  /ready              200 LIVE, or 503 DRAINING\n"
        "  GET  /stats              counters, gauges, histograms (?format=json|prometheus)\n"
        "  GET  /stats/prometheus   Prometheus text format\n"
        "  GET  /config_dump        the active configuration (JSON)\n"
        "  GET  /clusters           clusters and endpoints with request counters (JSON)\n"
        "  GET  /listeners          listeners and their bound addresses (JSON)\n"
        "  POST /quitquitquit       drain and exit\n";
  } else {
    r.status = 404;
    r.body = "not found; see /\n";
  }
  return r;
}

}  // namespace Server
}  // namespace sluice
