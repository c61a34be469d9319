#include "source/common/http/filter_config.h"
#include "source/server/config/builder.h"

namespace sluice {
namespace Server {
namespace {

// The previous snapshot's compiled table when its config did not change and everything it
// names still exists: compiling 10,000 routes again on every update of another resource would
// be wasted work on the main thread. The compiled table holds cluster and policy names, not
// pointers, so it stays valid while they exist; otherwise it is compiled again to report the
// error.
Router::RouteTableConstSharedPtr reusable(const BuildState& s,
                                          const sluice::config::v1::RouteTable& tc, bool lenient) {
  const Snapshot* previous = s.o.previous;
  if (previous == nullptr) return nullptr;
  auto it = previous->route_table_configs.find(tc.name());
  auto table = previous->route_tables.find(tc.name());
  if (it == previous->route_table_configs.end() || table == previous->route_tables.end() ||
      it->second != tc.SerializeAsString()) {
    return nullptr;
  }
  if (lenient) return table->second;
  bool names_exist = true;
  forEachClusterReference(
      tc, [&](const std::string& c) { names_exist = names_exist && s.cluster_names.contains(c); });
  Http::forEachRouteReference(tc, [&](const std::string& type, const std::string& name) {
    names_exist = names_exist && s.policies->contains(type, name);
  });
  return names_exist ? table->second : nullptr;
}

}  // namespace

void buildRouteTables(BuildState& s) {
  for (const auto& t : s.sr.route_tables()) s.table_names.insert(t.name());
  PathNamer table_path(s.o.static_prefix, "route_tables", "RouteTable",
                       s.o.first_dynamic_route_table);
  for (int i = 0; i < s.sr.route_tables_size(); ++i) {
    const auto& tc = s.sr.route_tables(i);
    const std::string path = table_path(i, tc.name());
    // Static tables under a control plane may name clusters and policies it provides later.
    const bool lenient = s.o.static_may_reference_dynamic && !table_path.dynamic(i);
    Router::RouteTableConstSharedPtr table = reusable(s, tc, lenient);
    if (table == nullptr) {
      Http::FilterValidationContext fctx;
      fctx.policies = s.policies.get();
      fctx.read_files = s.o.check_files;
      fctx.lenient = lenient;
      Http::FilterConfigCompiler filters(fctx);
      auto t = Router::RouteTableImpl::create(
          tc, path, s.stats,
          [&s, lenient](const std::string& c) { return lenient || s.cluster_names.contains(c); },
          &filters);
      if (!t.ok()) {
        s.errors.add(t.status());
        continue;
      }
      table = *t;
    }
    if (!s.snap.route_tables.emplace(table->name(), table).second) {
      s.errors.add(path + ".name", absl::StrCat("duplicate route table \"", table->name(), "\""));
    }
    s.snap.route_table_configs[tc.name()] = tc.SerializeAsString();
  }
}

}  // namespace Server
}  // namespace sluice
