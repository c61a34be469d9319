#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"

namespace sluice {
namespace Config {

// The resource types of the config API are the repeated message fields of StaticResources
// (listeners, clusters, ..., and each filter's policy list). This is the one place that reads
// them: the data plane's ADS client, its decoding of pushed resources and sluice-cp all use it.

// Every list, in the order a control plane sends them and a data plane subscribes
// (make-before-break): Secret, Cluster, ClusterEndpoints, the other lists in field order (policies),
// RouteTable, Listener.
const std::vector<const google::protobuf::FieldDescriptor*>& resourceLists();

// "type.googleapis.com/sluice.config.v1.Cluster" for the clusters list.
std::string typeUrlOf(const google::protobuf::FieldDescriptor& list);

// The list holding resources of `type_url` (matched by the message's short name, the text after
// the URL's last '.'); null for none.
const google::protobuf::FieldDescriptor* resourceListOf(absl::string_view type_url);

// The field naming a resource of `type`: `name`, or `cluster_name` (ClusterEndpoints); null when
// it has neither.
const google::protobuf::FieldDescriptor* nameFieldOf(const google::protobuf::Descriptor& type);

}  // namespace Config
}  // namespace sluice
