#include "source/control_plane/control_service.h"

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "source/common/config/redact.h"
#include "source/control_plane/diff.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace ControlPlane {
namespace {

namespace control = sluice::service::control::v1;

google::protobuf::Timestamp toTimestamp(absl::Time t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

std::string groupOrDefault(const std::string& group) {
  return group.empty() ? kDefaultGroup : group;
}

void fillGroup(const std::string& name, const SnapshotCache::GroupInfo& info,
               const std::string& source, const MeshCache* mesh, control::GroupStatus& out) {
  out.set_name(name);
  out.set_version(info.snapshot->version());
  out.set_source(source);
  *out.mutable_applied_at() = toTimestamp(info.applied_at);
  for (ResourceType t : allTypes()) {
    (*out.mutable_resources())[shortName(t)] =
        static_cast<uint32_t>(info.snapshot->type(t).resources.size());
  }
  if (mesh != nullptr) {
    auto m = mesh->get(info.snapshot);
    for (const std::string& target : m->targets()) {
      out.add_mesh_targets(target);
    }
    for (const std::string& note : m->notes()) {
      out.add_mesh_notes(note);
    }
  }
}

grpc::ServerUnaryReactor* finish(grpc::CallbackServerContext* context, grpc::Status status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(std::move(status));
  return reactor;
}

}  // namespace

grpc::Status ControlServiceImpl::apply(const control::ApplyRequest& request,
                                       const std::string& peer, control::ApplyResponse& out) {
  const std::string group = groupOrDefault(request.group());
  const std::string source =
      request.source().empty() ? absl::StrCat("apply from ", peer) : request.source();
  SnapshotCache::ApplyResult result = cache_.apply(group, request.resources(), source);
  if (!result.status.ok()) {
    return grpc::Status(grpc::StatusCode::INTERNAL, std::string(result.status.message()));
  }
  out.set_accepted(result.accepted);
  out.set_changed(result.changed);
  out.set_version(result.version);
  for (std::string& e : result.errors) {
    out.add_errors(std::move(e));
  }
  return grpc::Status::OK;
}

grpc::Status ControlServiceImpl::validate(const control::ValidateRequest& request,
                                          control::ValidateResponse& out) const {
  std::vector<std::string> errors = cache_.validate(request.resources());
  out.set_valid(errors.empty());
  for (std::string& e : errors) {
    out.add_errors(std::move(e));
  }
  return grpc::Status::OK;
}

grpc::Status ControlServiceImpl::diff(const control::DiffRequest& request,
                                      control::DiffResponse& out) const {
  const std::string group = groupOrDefault(request.group());
  // Against what the group's nodes are served now (the default group's config when it has none
  // of its own).
  GroupSnapshotConstSharedPtr current = cache_.effective(group);
  for (auto& change :
       diffResources(current ? &current->declared() : nullptr, request.resources())) {
    *out.add_changes() = std::move(change);
  }
  for (std::string& e : cache_.validate(request.resources())) {
    out.add_errors(std::move(e));
  }
  return grpc::Status::OK;
}

grpc::Status ControlServiceImpl::status(control::StatusResponse& out) const {
  const auto groups = cache_.groups();
  const auto nodes = registry_.nodes();
  const auto default_group = groups.find(kDefaultGroup);

  std::map<std::string, control::GroupStatus> group_status;
  for (const auto& [name, info] : groups) {
    fillGroup(name, info, info.source, mesh_, group_status[name]);
  }
  // Groups that only have nodes: they are served the default group's config.
  for (const NodeRecord& node : nodes) {
    if (groups.count(node.group) != 0 || group_status.count(node.group) != 0) {
      continue;
    }
    control::GroupStatus& g = group_status[node.group];
    if (default_group != groups.end()) {
      fillGroup(node.group, default_group->second, "default group", mesh_, g);
    } else {
      g.set_name(node.group);
      g.set_source("no config");
    }
  }
  for (auto& [name, g] : group_status) {
    *out.add_groups() = std::move(g);
  }

  for (const NodeRecord& node : nodes) {
    control::NodeStatus* n = out.add_nodes();
    n->set_id(node.id);
    n->set_group(node.group);
    n->set_connected(node.connected);
    n->set_api(node.api);
    n->set_peer(node.peer);
    n->set_user_agent(node.user_agent);
    *n->mutable_connected_since() = toTimestamp(node.connected_since);
    *n->mutable_last_seen() = toTimestamp(node.last_seen);
    GroupSnapshotConstSharedPtr current;
    auto own = groups.find(node.group);
    if (own != groups.end()) {
      current = own->second.snapshot;
    } else if (default_group != groups.end()) {
      current = default_group->second.snapshot;
    }
    n->set_kind(node.kind);
    n->set_client(node.client);
    bool in_sync = node.connected && current != nullptr;
    bool any = false;
    if (!node.type_names.empty()) {
      // A proxyless node: Envoy's types, versions of the group's mesh translation.
      MeshSnapshotConstSharedPtr mesh =
          mesh_ != nullptr && current != nullptr ? mesh_->get(current) : nullptr;
      for (MeshType t : allMeshTypes()) {
        const size_t i = meshIndex(t);
        if (i >= node.types.size() || !node.types[i].subscribed) {
          continue;
        }
        const TypeProgress& p = node.types[i];
        any = true;
        control::TypeStatus* ts = n->add_types();
        ts->set_type(meshTypeName(t));
        ts->set_sent_version(p.sent_version);
        ts->set_acked_version(p.acked_version);
        ts->set_nacked_version(p.nacked_version);
        ts->set_nack_reason(p.nack_reason);
        if (!p.nacked_version.empty()) {
          *ts->mutable_nack_time() = toTimestamp(p.nack_time);
        }
        if (mesh == nullptr || p.acked_version != mesh->type(t).version) {
          in_sync = false;
        }
      }
      n->set_in_sync(in_sync && any);
      continue;
    }
    for (ResourceType t : allTypes()) {
      const TypeProgress& p = node.types[typeIndex(t)];
      if (!p.subscribed) {
        continue;
      }
      any = true;
      control::TypeStatus* ts = n->add_types();
      ts->set_type(shortName(t));
      ts->set_sent_version(p.sent_version);
      ts->set_acked_version(p.acked_version);
      ts->set_nacked_version(p.nacked_version);
      ts->set_nack_reason(p.nack_reason);
      if (!p.nacked_version.empty()) {
        *ts->mutable_nack_time() = toTimestamp(p.nack_time);
      }
      if (current == nullptr || p.acked_version != current->type(t).version) {
        in_sync = false;
      }
    }
    n->set_in_sync(in_sync && any);
  }
  return grpc::Status::OK;
}

grpc::Status ControlServiceImpl::get(const control::GetRequest& request,
                                     control::GetResponse& out) const {
  const std::string group = groupOrDefault(request.group());
  if (request.type().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("type is required: one of ", typeNameList()));
  }
  auto type = parseTypeName(request.type());
  if (!type) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("unknown type \"", request.type(), "\": one of ",
                                     typeNameList(), " (singular or plural, any case)"));
  }
  GroupSnapshotConstSharedPtr snapshot = cache_.effective(group);
  if (snapshot == nullptr) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("group \"", group, "\" has no config, and neither has the \"",
                                     kDefaultGroup, "\" group"));
  }
  const TypeSnapshot& ts = snapshot->type(*type);
  out.set_version(ts.version);
  if (!request.name().empty()) {
    const NamedResource* r = ts.find(request.name());
    if (r == nullptr) {
      return grpc::Status(
          grpc::StatusCode::NOT_FOUND,
          absl::StrCat(shortName(*type), " \"", request.name(), "\" not found in group \"", group,
                       "\"",
                       snapshot->group() != group ? " (served the default group's config)" : "",
                       " at version ", ts.version));
    }
    out.add_resources_json(Config::toRedactedJson(*r->message, true));
    return grpc::Status::OK;
  }
  for (const NamedResource& r : ts.resources) {
    out.add_resources_json(Config::toRedactedJson(*r.message, true));
  }
  return grpc::Status::OK;
}

grpc::ServerUnaryReactor* ControlServiceImpl::Apply(grpc::CallbackServerContext* context,
                                                    const control::ApplyRequest* request,
                                                    control::ApplyResponse* response) {
  return finish(context, apply(*request, context->peer(), *response));
}

grpc::ServerUnaryReactor* ControlServiceImpl::Validate(grpc::CallbackServerContext* context,
                                                       const control::ValidateRequest* request,
                                                       control::ValidateResponse* response) {
  return finish(context, validate(*request, *response));
}

grpc::ServerUnaryReactor* ControlServiceImpl::Diff(grpc::CallbackServerContext* context,
                                                   const control::DiffRequest* request,
                                                   control::DiffResponse* response) {
  return finish(context, diff(*request, *response));
}

grpc::ServerUnaryReactor* ControlServiceImpl::Status(grpc::CallbackServerContext* context,
                                                     const control::StatusRequest* request,
                                                     control::StatusResponse* response) {
  return finish(context, status(*response));
}

grpc::ServerUnaryReactor* ControlServiceImpl::Get(grpc::CallbackServerContext* context,
                                                  const control::GetRequest* request,
                                                  control::GetResponse* response) {
  return finish(context, get(*request, *response));
}

}  // namespace ControlPlane
}  // namespace sluice
