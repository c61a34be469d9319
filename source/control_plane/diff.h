#pragma once

#include <vector>

#include "sluice/config/v1/bootstrap.pb.h"
#include "sluice/service/control/v1/control.pb.h"

namespace sluice {
namespace ControlPlane {

// Resource by resource, what replacing `before` (nullptr = nothing published) with `after`
// changes: ADDED / REMOVED / CHANGED with each side as JSON (secrets redacted,
// with a fingerprint that tells whether a key changed), in type order (see ResourceType)
// then name order. Resources are compared by content, so reordering a list changes nothing.
// Within a type, the first resource of a name counts (a duplicate is a validation error).
std::vector<sluice::service::control::v1::ResourceChange> diffResources(
    const sluice::config::v1::StaticResources* before,
    const sluice::config::v1::StaticResources& after);

}  // namespace ControlPlane
}  // namespace sluice
