#include <algorithm>
#include <chrono>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "source/common/http/filter.h"
#include "source/extensions/filters/http/auth/config.h"
#include "source/extensions/filters/http/auth/config.pb.h"
#include "source/extensions/filters/http/auth/filter.h"

namespace sluice {
namespace Extensions {
namespace Auth {

namespace {

int64_t wallClockSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool readsFiles(const sluice::config::v1::AuthPolicy& p) {
  for (const auto& prov : p.jwt().providers()) {
    if (!prov.local_jwks().filename().empty()) return true;
  }
  return false;
}

}  // namespace

// `auth`: enforces the AuthPolicy that a route names (`auth: <name>`, filter_config.auth) or
// the listener's default policy. Compiles every policy of the snapshot once per listener config;
// on the main thread, a policy whose config did not change is reused as the same object, so its
// remote JWKS keys and the workers' token caches survive unrelated config changes.
class AuthFactory : public Http::NamedHttpFilterConfigFactory {
 public:
  std::string name() const override { return kFilterName; }
  absl::StatusOr<Http::FilterFactoryCb> createFilterFactory(const google::protobuf::Message& config,
                                                            const std::string&,
                                                            Http::FactoryContext& ctx) override {
    auto fc = std::make_shared<FilterConfig>();
    fc->default_policy =
        static_cast<const sluice::extensions::filters::http::auth::v1::Auth&>(config).policy();
    fc->now_s = wallClockSeconds;
    CompileOptions o;
    o.read_files = ctx.main_dispatcher != nullptr;
    o.stats = ctx.stats;
    o.main_dispatcher = ctx.main_dispatcher;
    o.singletons = ctx.singletons;
    o.dns_resolver = ctx.main_dns_resolver;
    if (ctx.policies != nullptr) {
      for (const auto& [name, proto] : ctx.policies->all<sluice::config::v1::AuthPolicy>()) {
        CompiledPolicyConstSharedPtr compiled;
        const std::string serialized = proto->SerializeAsString();
        const bool reusable = ctx.main_dispatcher != nullptr && !readsFiles(*proto);
        if (reusable) {
          auto it = compiled_.find(name);
          if (it != compiled_.end() && it->second.config == serialized) {
            compiled = it->second.policy.lock();
          }
        }
        if (compiled == nullptr) {
          auto c = compilePolicy(*proto, absl::StrCat("AuthPolicy \"", name, "\""), o);
          // Invalid policies are reported by the snapshot's policy validation, which runs the
          // same compilation; the snapshot is rejected, so nothing serves without them.
          if (!c.ok()) continue;
          compiled = *c;
          if (reusable) compiled_[name] = Compiled{serialized, compiled};
        }
        fc->policies.emplace(name, std::move(compiled));
      }
    }
    fc->identity_headers = {"x-consumer-username", "x-authenticated-scope"};
    for (const auto& [name, policy] : fc->policies) {
      for (const std::string& h : policy->owned_headers) {
        if (std::find(fc->identity_headers.begin(), fc->identity_headers.end(), h) ==
            fc->identity_headers.end()) {
          fc->identity_headers.push_back(h);
        }
      }
    }
    FilterConfigConstSharedPtr shared = std::move(fc);
    return Http::FilterFactoryCb([shared](Http::FilterChainFactoryCallbacks& cb) {
      cb.addStreamDecoderFilter(std::make_shared<AuthFilter>(shared));
    });
  }

 private:
  // Main thread only (builds with a main dispatcher).
  struct Compiled {
    std::string config;
    std::weak_ptr<const CompiledPolicy> policy;
  };
  absl::flat_hash_map<std::string, Compiled> compiled_;
};

REGISTER_HTTP_FILTER(AuthFactory);

}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
