#include "source/control_plane/diff.h"

#include <map>
#include <string>

#include "google/protobuf/util/message_differencer.h"
#include "source/common/config/redact.h"
#include "source/control_plane/resources.h"

namespace sluice {
namespace ControlPlane {
namespace {

using sluice::service::control::v1::ResourceChange;

// name -> first resource of that name.
std::map<std::string, const google::protobuf::Message*> byName(
    const sluice::config::v1::StaticResources* resources, ResourceType type) {
  std::map<std::string, const google::protobuf::Message*> out;
  if (resources != nullptr) {
    for (const google::protobuf::Message* m : resourcesOf(*resources, type)) {
      out.emplace(resourceName(*m, type), m);
    }
  }
  return out;
}

}  // namespace

std::vector<ResourceChange> diffResources(const sluice::config::v1::StaticResources* before,
                                          const sluice::config::v1::StaticResources& after) {
  std::vector<ResourceChange> changes;
  for (ResourceType t : allTypes()) {
    const auto old_set = byName(before, t);
    const auto new_set = byName(&after, t);
    auto o = old_set.begin();
    auto n = new_set.begin();
    while (o != old_set.end() || n != new_set.end()) {
      ResourceChange change;
      change.set_type(shortName(t));
      if (n == new_set.end() || (o != old_set.end() && o->first < n->first)) {
        change.set_kind(ResourceChange::REMOVED);
        change.set_name(o->first);
        change.set_before_json(Config::toRedactedJson(*o->second, true));
        ++o;
      } else if (o == old_set.end() || n->first < o->first) {
        change.set_kind(ResourceChange::ADDED);
        change.set_name(n->first);
        change.set_after_json(Config::toRedactedJson(*n->second, true));
        ++n;
      } else {
        const bool same =
            google::protobuf::util::MessageDifferencer::Equals(*o->second, *n->second);
        if (!same) {
          change.set_kind(ResourceChange::CHANGED);
          change.set_name(n->first);
          change.set_before_json(Config::toRedactedJson(*o->second, true));
          change.set_after_json(Config::toRedactedJson(*n->second, true));
        }
        ++o;
        ++n;
        if (same) {
          continue;
        }
      }
      changes.push_back(std::move(change));
    }
  }
  return changes;
}

}  // namespace ControlPlane
}  // namespace sluice
