#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "sluice/config/v1/bootstrap.pb.h"
#include "source/common/http/conn_manager.h"
#include "source/common/network/connection.h"
#include "source/common/router/config.h"
#include "source/common/upstream/cluster.h"

namespace sluice {
namespace Server {

struct ListenerInfo {
  std::string name;
  Network::Address address;
  uint32_t backlog = 1024;
  Http::ConnectionManagerConfigConstSharedPtr http;
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

// Validates and compiles `bootstrap`. Every error is reported, each naming its field. With
// `previous`, clusters whose config did not change are reused as they are, so workers keep
// their connection pools across a reload.
absl::StatusOr<SnapshotConstSharedPtr> buildSnapshot(const sluice::config::v1::Bootstrap& bootstrap,
                                                     Stats::Store* stats,
                                                     AccessLogRegistry* access_logs,
                                                     const Snapshot* previous = nullptr);

// The configuration `sluice` runs with no -c: a listener on 127.0.0.1:8080 that says what it is.
std::string defaultBootstrapYaml();

}  // namespace Server
}  // namespace sluice
