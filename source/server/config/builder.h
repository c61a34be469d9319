#pragma once

// The parts of buildSnapshot() (snapshot.cc), one file each: clusters, route tables, listeners.
// Private to this folder.

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "source/common/config/utility.h"
#include "source/server/config/snapshot.h"

namespace sluice {
namespace Server {

// Names a resource in error messages: static ones by their place in the file, dynamic ones
// (from the control plane) by type and name.
class PathNamer {
 public:
  PathNamer(const std::string& prefix, std::string list, std::string type, int first_dynamic)
      : prefix_(prefix),
        list_(std::move(list)),
        type_(std::move(type)),
        first_dynamic_(first_dynamic) {}
  std::string operator()(int i, const std::string& name) const {
    if (i >= first_dynamic_) return absl::StrCat(type_, " \"", name, "\"");
    return absl::StrCat(prefix_, list_, "[", i, "]");
  }
  bool dynamic(int i) const { return i >= first_dynamic_; }

 private:
  const std::string& prefix_;
  std::string list_;
  std::string type_;
  int first_dynamic_;
};

// What the parts share while one snapshot is built.
struct BuildState {
  BuildState(const sluice::config::v1::StaticResources& sr, const BuildOptions& o,
             Stats::Store* stats, Snapshot& snap, Config::ErrorList& errors)
      : sr(sr), o(o), stats(stats), snap(snap), errors(errors) {}
  const sluice::config::v1::StaticResources& sr;
  const BuildOptions& o;
  Stats::Store* stats;
  Snapshot& snap;
  Config::ErrorList& errors;
  Config::PolicySetConstSharedPtr policies;
  // Names of clusters and route tables that exist, even if invalid: a reference to one that
  // failed is not reported a second time as "unknown".
  absl::flat_hash_set<std::string> cluster_names;
  absl::flat_hash_set<std::string> table_names;
  // Secrets that exist and are valid, by name (buildSecrets); names of invalid ones.
  absl::flat_hash_map<std::string, const sluice::config::v1::Secret*> secrets;
  absl::flat_hash_set<std::string> secret_names;
};

void buildSecrets(BuildState& state);
void buildClusters(BuildState& state);
void buildRouteTables(BuildState& state);
void buildListeners(BuildState& state);

// TLS of a listener (tls_builder.cc): validates `tls` and, when files may be read, compiles the
// context into `li` (reusing the previous snapshot's when nothing it was made from changed) and
// the XFCC settings into `http`.
void buildListenerTls(BuildState& state, const sluice::config::v1::Listener& lc,
                      const std::string& path, ListenerInfo& li,
                      Http::ConnectionManagerConfig& http);
// TLS of a cluster: the client context (null without `tls`, after an error, or when files may
// not be read) and `key`, what it was made from (equal keys: the same context).
Tls::ClientContextConstSharedPtr buildClusterTls(BuildState& state,
                                                 const sluice::config::v1::Cluster& config,
                                                 const std::string& path, std::string& key);

}  // namespace Server
}  // namespace sluice
