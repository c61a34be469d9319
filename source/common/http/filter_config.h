#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "google/protobuf/struct.pb.h"
#include "sluice/config/v1/listener.pb.h"
#include "sluice/config/v1/route.pb.h"
#include "source/common/config/policy_registry.h"
#include "source/common/config/utility.h"
#include "source/common/router/config.h"

namespace sluice {
namespace Http {

// The config side of an HTTP filter: its name, its typed config messages and their validation.
// Registered by the filter's config library, which has no runtime dependencies, so the control
// plane validates with the filters' own code without linking the data plane. The runtime side
// (NamedHttpFilterConfigFactory in filter.h) turns a validated config into per-stream filters.

// What validation knows of the snapshot being built.
struct FilterValidationContext {
  // The snapshot's policies (never null).
  const Config::PolicySet* policies = nullptr;
  // False: nothing on this host is read (the control plane validating for other machines).
  bool read_files = true;
  // Static config under a control plane may name policies only the control plane provides:
  // unknown policy names are then not errors (such a route answers 503 until they arrive).
  bool lenient = false;
};

struct RouteConfigContext : FilterValidationContext {
  // The route's name; empty for an unnamed route and for a virtual host's config.
  std::string route_name;
  // Where the route (or virtual host) is, for errors about its other fields.
  std::string route_path;
  // The config belongs to a virtual host (applies to all its routes that don't set their own).
  bool virtual_host = false;
  // Where a field of the per-route config is, for errors: `...routes[2].filter_config.auth.policy`,
  // or for a shorthand the shorthand's own field (`...routes[2].auth`).
  std::function<std::string(absl::string_view field)> field_path;
};

class FilterType {
 public:
  virtual ~FilterType() = default;
  // The name listeners use in `http_filters[].name` and routes in `filter_config`.
  virtual std::string name() const = 0;
  // Must the filter be last in the chain (the router)?
  virtual bool isTerminal() const { return false; }

  // The message `http_filters[].config` is decoded into (a proto of the filter's own).
  virtual std::unique_ptr<google::protobuf::Message> createEmptyConfigProto() const = 0;
  // Checks what the message's schema can't; errors name fields under `path`.
  virtual void validateConfig(const google::protobuf::Message& /*config*/,
                              const std::string& /*path*/, const FilterValidationContext&,
                              Config::ErrorList&) const {}

  // The message of `filter_config.<name>` on routes and virtual hosts; null: the filter takes no
  // per-route config (an entry for it is refused).
  virtual std::unique_ptr<google::protobuf::Message> createEmptyRouteConfigProto() const {
    return nullptr;
  }
  // Validates and compiles a per-route config. On error, adds to `errors` and returns null.
  virtual Router::RouteSpecificFilterConfigConstSharedPtr createRouteConfig(
      const google::protobuf::Message& /*config*/, const RouteConfigContext&,
      Config::ErrorList&) const {
    return nullptr;
  }
  // A Route field that stands for this filter's per-route config (`auth: NAME` means
  // `filter_config: {auth: {policy: NAME}}`): returns that config and sets `*field` to the
  // field's name, or returns null when the route doesn't use it.
  virtual std::unique_ptr<google::protobuf::Message> routeShorthand(
      const sluice::config::v1::Route& /*route*/, std::string* /*field*/) const {
    return nullptr;
  }
  // What a per-route config asks of the listener, for the error when the listener lacks the
  // filter: `auth policy "partner-jwt"`. Empty: nothing (e.g. the filter disabled on a route).
  virtual std::string describeRouteConfig(const google::protobuf::Message& /*config*/) const {
    return "config for the " + name() + " filter";
  }
  // Resources a per-route config refers to, as (type name, resource name): a data plane keeps a
  // policy the control plane removed while a route still names it.
  virtual void routeConfigReferences(
      const google::protobuf::Message& /*config*/,
      const std::function<void(const std::string& type, const std::string& name)>&) const {}
  // The same for the listener config (`http_filters[].config`).
  virtual void configReferences(
      const google::protobuf::Message& /*config*/,
      const std::function<void(const std::string& type, const std::string& name)>&) const {}
};

// Where a per-route config itself is, for errors about it as a whole or under a prefix: the
// context's field_path("") without its trailing '.' (`...routes[2].filter_config.cors`).
std::string routeConfigPath(const RouteConfigContext& ctx);

// For per-route messages whose `disabled: true` must stand alone (a whole config replacing the
// listener's, or the filter switched off): false, with the error at `disabled`, when any other
// field is set with it.
template <class PerRouteProto>
bool disabledStandsAlone(const PerRouteProto& config, const RouteConfigContext& ctx,
                         Config::ErrorList& errors) {
  PerRouteProto others = config;
  others.clear_disabled();
  if (others.ByteSizeLong() == 0) return true;
  errors.add(ctx.field_path("disabled"), "no other field may be set with disabled: true");
  return false;
}

class FilterTypeRegistry {
 public:
  static void add(std::unique_ptr<FilterType> type);
  static const FilterType* get(absl::string_view name);
  static std::vector<std::string> names();
  static std::vector<const FilterType*> all();
};

template <class T>
struct FilterTypeRegistration {
  FilterTypeRegistration() { FilterTypeRegistry::add(std::make_unique<T>()); }
};
#define REGISTER_HTTP_FILTER_TYPE(T) \
  static ::sluice::Http::FilterTypeRegistration<T> T##_type_registration

// `config` (a Struct, as files and the wire carry it) -> the typed message `out`, with the
// file's rules (durations like "250ms", no unknown fields, enum values checked). Errors are
// prefixed with `path`.
absl::Status decodeFilterConfig(const google::protobuf::Struct& config,
                                google::protobuf::Message& out, const std::string& path);

// Compiles the `filter_config` of routes and virtual hosts (and route shorthands) for
// Router::RouteTableImpl::create, with the registered filter types.
class FilterConfigCompiler : public Router::PerFilterConfigCompiler {
 public:
  explicit FilterConfigCompiler(const FilterValidationContext& context) : context_(context) {}
  Router::PerFilterConfigs compile(
      const google::protobuf::Map<std::string, google::protobuf::Struct>& filter_config,
      const sluice::config::v1::Route* route, const std::string& path,
      Config::ErrorList& errors) const override;

 private:
  FilterValidationContext context_;
};

// Every filter a route (with its virtual host) configures, with what it asks of the listener:
// `fn(filter, what, where)`, `where` being "route \"name\" (path)" or "virtual host ...".
// Unknown filter names are skipped (the route table's compilation reports them).
void forEachRouteFilter(const sluice::config::v1::RouteTable& table, const std::string& table_path,
                        const std::function<void(const std::string& filter, const std::string& what,
                                                 const std::string& where)>& fn);

// Resources a listener refers to through its filters' configs (a default policy, say).
void forEachListenerReference(
    const sluice::config::v1::Listener& listener,
    const std::function<void(const std::string& type, const std::string& name)>& fn);

// Resources every route of `table` refers to through its filters' per-route configs.
void forEachRouteReference(
    const sluice::config::v1::RouteTable& table,
    const std::function<void(const std::string& type, const std::string& name)>& fn);

}  // namespace Http
}  // namespace sluice
