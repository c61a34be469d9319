// The auth filter's config side: its config messages, its policy resource type (AuthPolicy),
// their validation. Linked by sluice and sluice-cp; no runtime dependencies beyond policy
// compilation without I/O.
#include "source/extensions/filters/http/auth/config.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "source/common/http/policy_filter_type.h"
#include "source/extensions/filters/http/auth/config.pb.h"
#include "source/extensions/filters/http/auth/policy.h"

namespace sluice {
namespace Extensions {
namespace Auth {
namespace {

using AuthProto = sluice::extensions::filters::http::auth::v1::Auth;
using PerRouteProto = sluice::extensions::filters::http::auth::v1::AuthPerRoute;
using PolicyProto = sluice::config::v1::AuthPolicy;

// {policy} on the listener, {policy | disabled} per route, `auth: NAME` on a route.
class AuthFilterType : public Http::PolicyFilterType<AuthProto, PerRouteProto, PolicyProto> {
 public:
  AuthFilterType() : PolicyFilterType(kFilterName, "auth") {}
};

// AuthPolicy resources: `static_resources.auth_policies`, or pushed by the control plane.
class AuthPolicyType : public Config::PolicyType {
 public:
  std::string field() const override { return "auth_policies"; }
  void validate(const google::protobuf::Message& message, const std::string& path,
                const Config::PolicyValidationOptions& options,
                Config::ErrorList& errors) const override {
    const auto& p = static_cast<const PolicyProto&>(message);
    if (!p.has_jwt() && !p.has_key_auth() && !p.has_mtls() && !p.allow_anonymous()) {
      errors.add(path, "needs jwt, key_auth, mtls or allow_anonymous");
    }
    absl::flat_hash_set<std::string> users;
    for (int c = 0; c < p.consumers_size(); ++c) {
      const std::string cpath = absl::StrCat(path, ".consumers[", c, "].username");
      if (p.consumers(c).username().empty()) {
        errors.add(cpath, "is required");
      } else if (!users.insert(p.consumers(c).username()).second) {
        errors.add(cpath, absl::StrCat("duplicate consumer \"", p.consumers(c).username(), "\""));
      }
    }
    // Keys, algorithms, JWKS documents, URIs: the filter's own compilation, without fetching
    // anything (local_jwks files are read only when this host's files are checked).
    CompileOptions compile;
    compile.read_files = options.read_files;
    errors.add(compilePolicy(p, path, compile).status());
  }
  void credentialQueryParams(const google::protobuf::Message& message,
                             std::vector<std::string>& names) const override {
    const auto& p = static_cast<const PolicyProto&>(message);
    if (p.has_key_auth()) keyNames(p, names);
    for (const auto& provider : p.jwt().providers()) {
      for (const std::string& param : provider.from_params()) names.push_back(param);
    }
  }
  void credentialHeaders(const google::protobuf::Message& message,
                         std::vector<std::string>& names) const override {
    const auto& p = static_cast<const PolicyProto&>(message);
    if (p.has_key_auth()) keyNames(p, names);
    for (const auto& provider : p.jwt().providers()) {
      for (const auto& header : provider.from_headers()) names.push_back(header.name());
    }
  }

 private:
  static void keyNames(const PolicyProto& p, std::vector<std::string>& names) {
    if (p.key_auth().key_names_size() == 0) names.push_back("apikey");
    for (const std::string& k : p.key_auth().key_names()) names.push_back(k);
  }
};

REGISTER_HTTP_FILTER_TYPE(AuthFilterType);
REGISTER_POLICY_TYPE(AuthPolicyType);

}  // namespace
}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
