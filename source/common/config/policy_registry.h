#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "sluice/config/v1/bootstrap.pb.h"
#include "source/common/config/utility.h"

namespace sluice {
namespace Config {

// Policy resources are owned by the filter that enforces them: `auth` owns AuthPolicy,
// `rate_limit` owns RateLimitPolicy. The core knows a policy type only through this interface:
// where its resources sit in StaticResources, and how the owning filter validates one. Routes
// refer to policies by name through their filter's per-route config.
struct PolicyValidationOptions {
  // False: nothing on this host is checked (the control plane validating for data planes on
  // other machines; `local_jwks` files are not read).
  bool read_files = true;
};

class PolicyType {
 public:
  virtual ~PolicyType() = default;
  // The StaticResources field holding the resources: "auth_policies". Its message type names
  // the resource type ("AuthPolicy", type URL type.googleapis.com/sluice.config.v1.AuthPolicy).
  virtual std::string field() const = 0;
  // Checks one policy beyond its name (which the core checks); errors name fields under `path`.
  virtual void validate(const google::protobuf::Message& policy, const std::string& path,
                        const PolicyValidationOptions& options, ErrorList& errors) const = 0;
  // Query parameters a policy takes credentials from (key-auth's key names, JWT query
  // parameters): logs (the access log, http_log) write REDACTED for their values.
  virtual void credentialQueryParams(const google::protobuf::Message& /*policy*/,
                                     std::vector<std::string>& /*names*/) const {}
  // Request headers a policy takes credentials from (key-auth's key names, JWT token headers),
  // any case: logs that print headers write REDACTED for their values.
  virtual void credentialHeaders(const google::protobuf::Message& /*policy*/,
                                 std::vector<std::string>& /*names*/) const {}
};

// Policy types, registered at static-initialisation time by the filters' config libraries.
class PolicyTypeRegistry {
 public:
  static void add(std::unique_ptr<PolicyType> type);
  // In the order of their StaticResources field numbers (stable across builds).
  static const std::vector<const PolicyType*>& all();
  // By resource type name ("AuthPolicy"); null when no linked filter owns it.
  static const PolicyType* get(absl::string_view type_name);
  // The descriptor of the StaticResources field of `type`.
  static const google::protobuf::FieldDescriptor* fieldOf(const PolicyType& type);
  // "AuthPolicy".
  static const std::string& typeName(const PolicyType& type);
};

template <class T>
struct PolicyTypeRegistration {
  PolicyTypeRegistration() { PolicyTypeRegistry::add(std::make_unique<T>()); }
};
#define REGISTER_POLICY_TYPE(T) static ::sluice::Config::PolicyTypeRegistration<T> T##_registration

// The policies of one snapshot: type name -> policy name -> resource. Immutable once built;
// shared by the filter factories of every listener (keep the shared_ptr: streams can outlive the
// snapshot that created their filters).
class PolicySet {
 public:
  using ByName = absl::flat_hash_map<std::string, std::shared_ptr<const google::protobuf::Message>>;
  // False if `name` is already there.
  bool add(const std::string& type_name, const std::string& name,
           std::shared_ptr<const google::protobuf::Message> policy);
  const google::protobuf::Message* find(absl::string_view type_name, absl::string_view name) const;
  bool contains(absl::string_view type_name, absl::string_view name) const {
    return find(type_name, name) != nullptr;
  }
  // Every policy of a type (empty when there is none).
  const ByName& of(absl::string_view type_name) const;
  // Typed view: `for (auto& [name, p] : set.all<AuthPolicy>())`.
  template <class T>
  std::vector<std::pair<std::string, std::shared_ptr<const T>>> all() const {
    std::vector<std::pair<std::string, std::shared_ptr<const T>>> out;
    for (const auto& [name, m] : of(T::descriptor()->name())) {
      out.emplace_back(name, std::static_pointer_cast<const T>(m));
    }
    return out;
  }

 private:
  absl::flat_hash_map<std::string, ByName> types_;
};
using PolicySetConstSharedPtr = std::shared_ptr<const PolicySet>;

// "RateLimitPolicy" -> "rate limit policy", for error messages.
std::string describeType(absl::string_view type_name);

// Validates every policy resource of `resources` (names, duplicates, the owning filter's
// checks) and collects them. `namer(field, index, name)` names a resource in errors.
void buildPolicies(
    const sluice::config::v1::StaticResources& resources, const PolicyValidationOptions& options,
    const std::function<std::string(const PolicyType&, int, const std::string&)>& namer,
    PolicySet& out, ErrorList& errors);

}  // namespace Config
}  // namespace sluice
