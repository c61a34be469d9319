#include "source/control_plane/node_registry.h"

#include <algorithm>
#include <tuple>

namespace sluice {
namespace ControlPlane {

uint64_t NodeRegistry::newStreamId() {
  absl::MutexLock lock(&mu_);
  return ++last_stream_id_;
}

void NodeRegistry::connected(NodeRecord record) {
  absl::MutexLock lock(&mu_);
  record.connected = true;
  nodes_[record.id] = std::move(record);
}

void NodeRegistry::update(uint64_t stream_id, const std::string& id, const Progress& types,
                          absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = nodes_.find(id);
  if (it == nodes_.end() || it->second.stream_id != stream_id) {
    return;
  }
  it->second.types = types;
  it->second.last_seen = now;
}

void NodeRegistry::disconnected(uint64_t stream_id, const std::string& id, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = nodes_.find(id);
  if (it == nodes_.end() || it->second.stream_id != stream_id) {
    return;
  }
  it->second.connected = false;
  it->second.last_seen = now;
  pruneLocked();
}

void NodeRegistry::pruneLocked() {
  std::vector<std::pair<absl::Time, std::string>> gone;
  for (const auto& [id, record] : nodes_) {
    if (!record.connected) {
      gone.emplace_back(record.last_seen, id);
    }
  }
  if (gone.size() <= max_disconnected_) {
    return;
  }
  std::sort(gone.begin(), gone.end());
  for (size_t i = 0; i < gone.size() - max_disconnected_; ++i) {
    nodes_.erase(gone[i].second);
  }
}

std::vector<NodeRecord> NodeRegistry::nodes() const {
  std::vector<NodeRecord> out;
  {
    absl::ReaderMutexLock lock(&mu_);
    out.reserve(nodes_.size());
    for (const auto& [id, record] : nodes_) {
      out.push_back(record);
    }
  }
  std::sort(out.begin(), out.end(), [](const NodeRecord& a, const NodeRecord& b) {
    return std::tie(a.group, a.id) < std::tie(b.group, b.id);
  });
  return out;
}

}  // namespace ControlPlane
}  // namespace sluice
