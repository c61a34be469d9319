#include "source/common/http/filter_config.h"

#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"

namespace sluice {
namespace Http {
namespace {

std::map<std::string, std::unique_ptr<FilterType>>& types() {
  static auto* t = new std::map<std::string, std::unique_ptr<FilterType>>();
  return *t;
}

std::string routeWhere(const std::string& path, const std::string& name) {
  return name.empty() ? path : absl::StrCat("\"", name, "\" (", path, ")");
}

}  // namespace

void FilterTypeRegistry::add(std::unique_ptr<FilterType> type) {
  std::string name = type->name();
  types()[name] = std::move(type);
}

const FilterType* FilterTypeRegistry::get(absl::string_view name) {
  auto it = types().find(std::string(name));
  return it == types().end() ? nullptr : it->second.get();
}

std::vector<std::string> FilterTypeRegistry::names() {
  std::vector<std::string> out;
  for (const auto& [n, t] : types()) out.push_back(n);
  return out;
}

std::vector<const FilterType*> FilterTypeRegistry::all() {
  std::vector<const FilterType*> out;
  for (const auto& [n, t] : types()) out.push_back(t.get());
  return out;
}

std::string routeConfigPath(const RouteConfigContext& ctx) {
  std::string path = ctx.field_path ? ctx.field_path("") : ctx.route_path;
  if (!path.empty() && path.back() == '.') path.pop_back();
  return path;
}

absl::Status decodeFilterConfig(const google::protobuf::Struct& config,
                                google::protobuf::Message& out, const std::string& path) {
  std::string json;
  auto printed = google::protobuf::util::MessageToJsonString(config, &json);
  if (!printed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", printed.ToString()));
  }
  // The file's rules (durations like "250ms", enum values checked, field names in errors).
  absl::Status s = Config::loadFromYaml(json, out);
  if (s.ok()) return s;
  // protobuf says "policy.x: Cannot find field."; name the field under `path` instead.
  absl::string_view message = s.message();
  constexpr absl::string_view kUnknown = ": Cannot find field.";
  if (absl::EndsWith(message, kUnknown)) {
    message.remove_suffix(kUnknown.size());
    return absl::InvalidArgumentError(absl::StrCat(path, ".", message, ": unknown field"));
  }
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", message));
}

Router::PerFilterConfigs FilterConfigCompiler::compile(
    const google::protobuf::Map<std::string, google::protobuf::Struct>& filter_config,
    const sluice::config::v1::Route* route, const std::string& path,
    Config::ErrorList& errors) const {
  Router::PerFilterConfigs out;
  RouteConfigContext ctx;
  static_cast<FilterValidationContext&>(ctx) = context_;
  ctx.virtual_host = route == nullptr;
  if (route != nullptr) ctx.route_name = route->name();
  ctx.route_path = path;
  // Entries in name order, so errors come out the same on every build.
  std::map<std::string, const google::protobuf::Struct*> sorted;
  for (const auto& [name, config] : filter_config) sorted.emplace(name, &config);
  for (const auto& [name, config] : sorted) {
    const std::string fpath = absl::StrCat(path, ".filter_config.", name);
    const FilterType* type = FilterTypeRegistry::get(name);
    if (type == nullptr) {
      errors.add(fpath, absl::StrCat("unknown filter \"", name, "\" (known: ",
                                     absl::StrJoin(FilterTypeRegistry::names(), ", "), ")"));
      continue;
    }
    std::unique_ptr<google::protobuf::Message> proto = type->createEmptyRouteConfigProto();
    if (proto == nullptr) {
      errors.add(fpath, absl::StrCat("the ", name, " filter takes no per-route config"));
      continue;
    }
    absl::Status decoded = decodeFilterConfig(*config, *proto, fpath);
    if (!decoded.ok()) {
      errors.add(decoded);
      continue;
    }
    ctx.field_path = [&fpath](absl::string_view field) { return absl::StrCat(fpath, ".", field); };
    auto compiled = type->createRouteConfig(*proto, ctx, errors);
    if (compiled != nullptr) out.emplace_back(name, std::move(compiled));
  }
  if (route == nullptr) return out;
  // Shorthands (`auth: NAME`).
  for (const FilterType* type : FilterTypeRegistry::all()) {
    std::string field;
    std::unique_ptr<google::protobuf::Message> proto = type->routeShorthand(*route, &field);
    if (proto == nullptr) continue;
    const std::string spath = absl::StrCat(path, ".", field);
    if (filter_config.contains(type->name())) {
      errors.add(spath, absl::StrCat("set either ", field, " or filter_config.", type->name(),
                                     ", not both"));
      continue;
    }
    ctx.field_path = [&spath](absl::string_view) { return spath; };
    auto compiled = type->createRouteConfig(*proto, ctx, errors);
    if (compiled != nullptr) out.emplace_back(type->name(), std::move(compiled));
  }
  return out;
}

namespace {

// Calls fn(type, config message) for every per-route config of a route or virtual host that
// decodes (bad ones are reported by the route table's compilation).
void forEachDecoded(
    const google::protobuf::Map<std::string, google::protobuf::Struct>& filter_config,
    const sluice::config::v1::Route* route,
    const std::function<void(const FilterType&, const google::protobuf::Message&)>& fn) {
  std::map<std::string, const google::protobuf::Struct*> sorted;
  for (const auto& [name, config] : filter_config) sorted.emplace(name, &config);
  for (const auto& [name, config] : sorted) {
    const FilterType* type = FilterTypeRegistry::get(name);
    if (type == nullptr) continue;
    std::unique_ptr<google::protobuf::Message> proto = type->createEmptyRouteConfigProto();
    if (proto == nullptr || !decodeFilterConfig(*config, *proto, "").ok()) continue;
    fn(*type, *proto);
  }
  if (route == nullptr) return;
  for (const FilterType* type : FilterTypeRegistry::all()) {
    std::string field;
    std::unique_ptr<google::protobuf::Message> proto = type->routeShorthand(*route, &field);
    if (proto != nullptr) fn(*type, *proto);
  }
}

}  // namespace

void forEachRouteFilter(const sluice::config::v1::RouteTable& table, const std::string& table_path,
                        const std::function<void(const std::string& filter, const std::string& what,
                                                 const std::string& where)>& fn) {
  for (int v = 0; v < table.virtual_hosts_size(); ++v) {
    const auto& vh = table.virtual_hosts(v);
    const std::string vpath = absl::StrCat(table_path, ".virtual_hosts[", v, "]");
    forEachDecoded(vh.filter_config(), nullptr,
                   [&](const FilterType& type, const google::protobuf::Message& config) {
                     fn(type.name(), type.describeRouteConfig(config),
                        absl::StrCat("virtual host ", routeWhere(vpath, vh.name())));
                   });
    for (int r = 0; r < vh.routes_size(); ++r) {
      const auto& rc = vh.routes(r);
      const std::string rpath = absl::StrCat(vpath, ".routes[", r, "]");
      forEachDecoded(rc.filter_config(), &rc,
                     [&](const FilterType& type, const google::protobuf::Message& config) {
                       fn(type.name(), type.describeRouteConfig(config),
                          absl::StrCat("route ", routeWhere(rpath, rc.name())));
                     });
    }
  }
}

void forEachListenerReference(
    const sluice::config::v1::Listener& listener,
    const std::function<void(const std::string& type, const std::string& name)>& fn) {
  for (const auto& fc : listener.http_filters()) {
    const FilterType* type = FilterTypeRegistry::get(fc.name());
    if (type == nullptr) continue;
    std::unique_ptr<google::protobuf::Message> config = type->createEmptyConfigProto();
    if (decodeFilterConfig(fc.config(), *config, "").ok()) type->configReferences(*config, fn);
  }
}

void forEachRouteReference(
    const sluice::config::v1::RouteTable& table,
    const std::function<void(const std::string& type, const std::string& name)>& fn) {
  auto visit = [&](const FilterType& type, const google::protobuf::Message& config) {
    type.routeConfigReferences(config, fn);
  };
  for (const auto& vh : table.virtual_hosts()) {
    forEachDecoded(vh.filter_config(), nullptr, visit);
    for (const auto& rc : vh.routes()) forEachDecoded(rc.filter_config(), &rc, visit);
  }
}

}  // namespace Http
}  // namespace sluice
