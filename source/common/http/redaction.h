#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "source/common/config/policy_registry.h"

namespace sluice {
namespace Http {

// The request parts that carry credentials, whose values every log writes as "REDACTED": the
// access log (the query of the logged path) and http_log (headers, the query in uri, url,
// querystring and upstream_uri). Always: the headers Authorization, Proxy-Authorization,
// Cookie, Set-Cookie (a response's) and X-API-Key, and the query parameter access_token; plus
// what the policies of the snapshot take credentials from (PolicyType::credentialHeaders and
// credentialQueryParams: key-auth's key names, JWT token headers and query parameters).
// Built once per listener config; immutable.
class CredentialNames {
 public:
  CredentialNames();
  // Adds the names of every policy of `policies`.
  void addPolicies(const Config::PolicySet& policies);
  // `name` any case.
  void addHeader(absl::string_view name);
  // Compared case-sensitively, as auth reads them.
  void addQueryParam(absl::string_view name);

  // `name` lower case.
  bool isSecretHeader(absl::string_view name) const;
  bool isSecretQueryParam(absl::string_view name) const;
  const std::vector<std::string>& headers() const { return headers_; }
  const std::vector<std::string>& queryParams() const { return query_params_; }

 private:
  std::vector<std::string> headers_;  // lower case
  uint64_t header_lengths_ = 0;       // bit n: a name of n bytes (n < 64) is listed
  std::vector<std::string> query_params_;
};

// `target` ("/path?a=1&b=2") with the values of the named query parameters replaced by
// "REDACTED". Names are compared case-sensitively, as sent and percent-decoded (`api%6Bey` is
// `apikey`).
std::string redactQuery(absl::string_view target, const std::vector<std::string>& names);

}  // namespace Http
}  // namespace sluice
