#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "source/common/event/dispatcher.h"
#include "source/common/http/conn_manager.h"
#include "source/common/upstream/cluster_manager.h"
#include "source/server/config/snapshot.h"

namespace sluice {
namespace Server {

// A listen socket bound by the main thread for one worker (SO_REUSEPORT: one per worker per
// listener, so the kernel spreads connections without a shared accept lock).
struct ListenSocket {
  std::string listener;
  int fd = -1;
};

// A worker thread: its own event loop, the connections it accepted, its connection pools. Shares
// nothing mutable with other workers; talks to the main thread only through posted callbacks.
class Worker {
 public:
  Worker(uint32_t index, const Http::HttpStats& stats);
  ~Worker();

  // Starts the thread. `sockets` are this worker's listen sockets.
  void start(SnapshotConstSharedPtr snapshot, std::vector<ListenSocket> sockets);
  // Publishes a new config (thread-safe; applied on the worker's loop). `sockets` are this
  // worker's listen sockets for listeners that are new or moved to another address. A listener
  // that is gone from `snapshot`, or that gets a new socket, stops accepting and drains its
  // connections; every other listener keeps its socket and connections, and its connections
  // take the new settings from their next request.
  void updateSnapshot(SnapshotConstSharedPtr snapshot, std::vector<ListenSocket> sockets = {});
  // Stops accepting and starts draining connections (thread-safe).
  void drain();
  // Number of open downstream connections (approximate, thread-safe).
  size_t connections() const { return connections_.load(std::memory_order_relaxed); }
  // Exits the loop and joins the thread.
  void stop();

 private:
  struct WorkerListener : public Http::ConfigSource {
    const Http::ConnectionManagerConfigConstSharedPtr& config() const override { return http; }
    std::string name;
    int fd = -1;
    Event::FileEventPtr event;
    Http::ConnectionManagerConfigConstSharedPtr http;
    // TLS of new connections (null: cleartext), updated with the config like `http`.
    Tls::ServerContextConstSharedPtr tls;
    std::chrono::milliseconds handshake_timeout{10000};
  };
  void run();
  void applySnapshot(SnapshotConstSharedPtr snapshot, std::vector<ListenSocket> sockets);
  void closeListener(WorkerListener& l);
  void onAccept(const std::shared_ptr<WorkerListener>& l);

  const uint32_t index_;
  const Http::HttpStats& stats_;
  Event::DispatcherPtr dispatcher_;
  std::unique_ptr<Upstream::ClusterManager> cluster_manager_;
  std::unique_ptr<Http::WorkerContext> context_;
  SnapshotConstSharedPtr snapshot_;
  std::vector<std::shared_ptr<WorkerListener>> listeners_;
  std::vector<ListenSocket> initial_sockets_;
  Event::TimerPtr sweep_timer_;
  std::atomic<size_t> connections_{0};
  std::thread thread_;
};

}  // namespace Server
}  // namespace sluice
