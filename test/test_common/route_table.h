#pragma once

#include "source/common/http/filter_config.h"
#include "source/common/router/config.h"

namespace sluice {
namespace Testing {

// Compiles a route table the way the snapshot does, with the per-route config of the filters
// the test links (`auth: NAME` and friends), leniently: the policies need not exist.
inline absl::StatusOr<Router::RouteTableConstSharedPtr> compileRouteTable(
    const sluice::config::v1::RouteTable& config, Stats::Store* stats = nullptr) {
  static const Config::PolicySet* none = new Config::PolicySet();
  Http::FilterValidationContext ctx;
  ctx.policies = none;
  ctx.lenient = true;
  Http::FilterConfigCompiler filters(ctx);
  return Router::RouteTableImpl::create(config, "route_tables[0]", stats, nullptr, &filters);
}

}  // namespace Testing
}  // namespace sluice
