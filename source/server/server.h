#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "sluice/config/v1/bootstrap.pb.h"
#include "source/common/event/dispatcher.h"
#include "source/common/http/conn_manager.h"
#include "source/common/stats/stats.h"
#include "source/server/admin.h"
#include "source/server/snapshot.h"
#include "source/server/worker.h"

namespace sluice {
namespace Server {

struct Options {
  std::string config_path;   // empty: embedded default
  uint32_t concurrency = 0;  // 0: bootstrap, then cores
  std::string admin_address_path;
};

// The main thread: owns the config, the workers, the admin server and signal handling.
class Server {
 public:
  Server(Options options, sluice::config::v1::Bootstrap bootstrap);
  ~Server();
  // Builds everything and runs until drained. Returns the process exit code.
  int run();

 private:
  absl::Status bindListeners(const Snapshot& snap, uint32_t workers,
                             std::vector<std::vector<ListenSocket>>& out);
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

  Options options_;
  sluice::config::v1::Bootstrap bootstrap_;
  uint32_t concurrency_ = 1;
  std::unique_ptr<Stats::Store> stats_;
  Http::HttpStats http_stats_{};
  Event::DispatcherPtr dispatcher_;
  AccessLogRegistry access_logs_;
  SnapshotConstSharedPtr snapshot_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<AdminServer> admin_;
  std::vector<std::pair<std::string, std::string>> bound_listeners_;  // name, address
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
