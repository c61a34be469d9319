// The credential names logs redact: the built-in ones, and those of policies (auth's key-auth
// names and JWT token headers and parameters, through Config::PolicyType).
#include "source/common/http/redaction.h"

#include <memory>

#include "gtest/gtest.h"
#include "sluice/config/v1/policy.pb.h"
#include "source/common/config/utility.h"

namespace sluice {
namespace Http {
namespace {

TEST(CredentialNamesTest, BuiltInsAndPolicies) {
  CredentialNames names;
  for (const char* h :
       {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}) {
    EXPECT_TRUE(names.isSecretHeader(h)) << h;
  }
  EXPECT_TRUE(names.isSecretQueryParam("access_token"));
  EXPECT_FALSE(names.isSecretHeader("x-partner"));

  sluice::config::v1::AuthPolicy policy;
  ASSERT_TRUE(Config::loadFromYaml(R"(
name: partners
key_auth: {key_names: [apikey, X-Partner]}
jwt:
  providers:
  - local_jwks: {inline: '{"keys":[]}'}
    from_headers: [{name: X-Jwt-Assertion}]
    from_params: [jwt]
)",
                                   policy)
                  .ok());
  Config::PolicySet set;
  set.add("AuthPolicy", "partners", std::make_shared<sluice::config::v1::AuthPolicy>(policy));
  names.addPolicies(set);
  EXPECT_TRUE(names.isSecretHeader("x-partner"));
  EXPECT_TRUE(names.isSecretHeader("apikey"));
  EXPECT_TRUE(names.isSecretHeader("x-jwt-assertion"));
  EXPECT_TRUE(names.isSecretQueryParam("apikey"));
  EXPECT_TRUE(names.isSecretQueryParam("X-Partner"));
  EXPECT_TRUE(names.isSecretQueryParam("jwt"));
  EXPECT_FALSE(names.isSecretQueryParam("page"));
}

TEST(RedactQueryTest, NamesAsSentAndDecoded) {
  const std::vector<std::string> names = {"apikey", "access_token"};
  EXPECT_EQ("/p", redactQuery("/p", names));
  EXPECT_EQ("/p?apikey=REDACTED&page=2&apikey", redactQuery("/p?apikey=k&page=2&apikey", names));
  EXPECT_EQ("/p?api%6Bey=REDACTED&access%5Ftoken=REDACTED&APIKEY=k",
            redactQuery("/p?api%6Bey=k&access%5Ftoken=t&APIKEY=k", names));
  EXPECT_EQ("/p?&&apikey=REDACTED", redactQuery("/p?&&apikey=", names));
}

}  // namespace
}  // namespace Http
}  // namespace sluice
