#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "sluice/config/v1/bootstrap.pb.h"
#include "source/common/config/ads_client.h"
#include "source/common/event/dispatcher.h"
#include "source/common/http/conn_manager.h"
#include "source/common/network/dns_resolver.h"
#include "source/common/stats/stats.h"
#include "source/common/upstream/dns_discovery.h"
#include "source/common/upstream/health_manager.h"
#include "source/server/admin.h"
#include "source/server/config/snapshot.h"
#include "source/server/dynamic_resources.h"
#include "source/server/worker.h"

namespace sluice {
namespace Server {

struct Options {
  std::string config_path;   // empty: embedded default
  uint32_t concurrency = 0;  // 0: bootstrap, then cores
  std::string admin_address_path;
};

// The main thread: owns the config, the workers, the admin server, signal handling and the
// control-plane stream.
class Server : public Config::AdsCallbacks {
 public:
  Server(Options options, sluice::config::v1::Bootstrap bootstrap);
  ~Server() override;
  // Builds everything and runs until drained. Returns the process exit code.
  int run();

 private:
  // Config::AdsCallbacks
  absl::Status onConfigUpdate(const std::string& type_url, const Config::ResourceSet& resources,
                              const std::string& version) override;
  absl::StatusOr<std::string> resourceName(const std::string& type_url,
                                           const google::protobuf::Any& resource) override;

  struct BoundListener {
    std::string configured;  // address as configured ("127.0.0.1:0")
    std::string bound;       // address actually bound
  };
  // Binds one socket per worker for each listener of `snap` that is new or moved to another
  // address. On error nothing stays bound.
  absl::Status bindListeners(const Snapshot& snap, std::vector<std::vector<ListenSocket>>& out,
                             std::map<std::string, BoundListener>& bindings);
  // Validates and compiles the bootstrap's static resources plus `dynamic`.
  absl::StatusOr<SnapshotConstSharedPtr> build(const sluice::config::v1::Bootstrap& bootstrap,
                                               const sluice::config::v1::StaticResources& dynamic);
  // Binds what is new and hands the snapshot to every worker (RCU). An error (a port that
  // can't be bound) changes nothing.
  absl::Status publish(SnapshotConstSharedPtr next);
  bool ready() const;
  std::string configDumpJson() const;
  AdminResponse handleAdmin(const std::string& method, const std::string& path,
                            const std::string& query);
  std::string clustersJson() const;
  std::string listenersJson() const;
  // SIGHUP: re-reads the config file, validates and compiles it, and publishes it to every
  // worker (listener addresses, admin and concurrency need a restart). A bad file changes
  // nothing.
  void reload();
  void startDrain(const char* why);
  void onDrainTick();
  // Names of STRICT_DNS / LOGICAL_DNS clusters resolved to other addresses: the running config
  // is built again with them and published (the endpoints that stay keep their pools and health).
  void onDnsChange();

  Options options_;
  sluice::config::v1::Bootstrap bootstrap_;
  uint32_t concurrency_ = 1;
  std::unique_ptr<Stats::Store> stats_;
  Http::HttpStats http_stats_{};
  Event::DispatcherPtr dispatcher_;
  // The main thread's resolver (DNS clusters, remote JWKS); outlives everything that uses it.
  Network::DnsResolverOptionsConstSharedPtr dns_options_;
  Network::DnsResolverPtr dns_resolver_;
  // Health checks, outlier ejection and the state they share with workers (main thread).
  std::unique_ptr<Upstream::HealthManager> health_;
  AccessLogRegistry access_logs_;
  SnapshotConstSharedPtr snapshot_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<AdminServer> admin_;
  std::map<std::string, BoundListener> bound_listeners_;  // by listener name
  // Dynamic resources: as declared by the control plane, and what runs (declared plus removed
  // ones still referenced, see withRetained()).
  sluice::config::v1::StaticResources declared_;
  sluice::config::v1::StaticResources effective_;
  std::vector<std::string> retained_;
  std::unique_ptr<Config::AdsClient> ads_;
  std::unique_ptr<Upstream::DnsDiscovery> dns_;
  // /ready waits (at most kInitialDnsWait) for the first answers of the DNS clusters of the
  // config sluice starts with; later configs never make it wait.
  mutable bool dns_warm_ = false;
  Stats::Counter* dns_rebuild_failed_ = nullptr;
  std::chrono::steady_clock::time_point started_;
  std::chrono::milliseconds initial_fetch_timeout_{15000};
  uint64_t publishes_ = 0;
  // Process-wide objects of filters (JWKS caches, Redis clients), kept across snapshots.
  Http::SingletonManager singletons_;
  // Admin endpoints filters added (the cache's DELETE /cache); kept for the process.
  Admin::HandlerRegistry admin_handlers_;
  Event::FileEventPtr signal_event_;
  int signal_fd_ = -1;
  Event::TimerPtr drain_timer_;
  std::chrono::steady_clock::time_point drain_deadline_;
  bool draining_ = false;
  uint64_t reloads_ = 0;
  Stats::Counter* reload_ok_ = nullptr;
  Stats::Counter* reload_failed_ = nullptr;
};

}  // namespace Server
}  // namespace sluice
