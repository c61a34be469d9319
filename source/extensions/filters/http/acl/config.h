#pragma once

#include <memory>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "source/common/config/utility.h"
#include "source/common/router/config.h"
#include "source/extensions/filters/http/acl/config.pb.h"

namespace sluice {
namespace Extensions {
namespace Acl {

inline constexpr char kFilterName[] = "acl";

using AclProto = sluice::extensions::filters::http::acl::v1::Acl;
using PerRouteProto = sluice::extensions::filters::http::acl::v1::AclPerRoute;

// A compiled ACL; immutable, shared by every worker.
struct AclRules {
  bool deny = false;  // the groups are a deny list (else an allow list)
  absl::flat_hash_set<std::string> groups;
  bool hide_groups_header = false;
};
using AclRulesConstSharedPtr = std::shared_ptr<const AclRules>;

// A route's (or virtual host's) filter_config.acl: the ACL there, or null for `disabled: true`.
struct RouteConfig : public Router::RouteSpecificFilterConfig {
  AclRulesConstSharedPtr rules;
};

// Compiles either message (they share their fields); errors name fields under `path`.
template <class Proto>
AclRulesConstSharedPtr compileAcl(const Proto& config, const std::string& path,
                                  Config::ErrorList& errors);

}  // namespace Acl
}  // namespace Extensions
}  // namespace sluice
