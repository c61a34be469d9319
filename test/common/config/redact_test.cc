#include "source/common/config/redact.h"

#include "google/protobuf/struct.pb.h"
#include "gtest/gtest.h"
#include "sluice/config/v1/bootstrap.pb.h"
#include "source/common/config/utility.h"

namespace sluice {
namespace Config {
namespace {

using sluice::config::v1::Bootstrap;
using sluice::config::v1::RouteTable;
using sluice::config::v1::Secret;
using sluice::config::v1::StaticResources;

constexpr char kKey[] =
    "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEG\n-----END PRIVATE KEY-----\n";

StaticResources withSecrets() {
  StaticResources sr;
  Secret* a = sr.add_secrets();
  a->set_name("edge");
  a->mutable_tls_certificate()->set_certificate_chain("CERT");
  a->mutable_tls_certificate()->set_private_key(kKey);
  Secret* b = sr.add_secrets();
  b->set_name("ca");
  b->mutable_validation_context()->set_trusted_ca("CA");
  return sr;
}

TEST(RedactTest, TheMarkedFieldIsTheSensitiveOne) {
  const auto* tls = sluice::config::v1::TlsCertificateSecret::descriptor();
  EXPECT_TRUE(isSensitive(*tls->FindFieldByName("private_key")));
  EXPECT_FALSE(isSensitive(*tls->FindFieldByName("certificate_chain")));
}

TEST(RedactTest, MayHoldFollowsNestedTypes) {
  EXPECT_TRUE(mayHoldSensitive(*Bootstrap::descriptor()));
  EXPECT_TRUE(mayHoldSensitive(*StaticResources::descriptor()));
  EXPECT_TRUE(mayHoldSensitive(*Secret::descriptor()));
  EXPECT_FALSE(mayHoldSensitive(*RouteTable::descriptor()));
  EXPECT_FALSE(mayHoldSensitive(*sluice::config::v1::ValidationContextSecret::descriptor()));
  // Recursive types terminate.
  EXPECT_FALSE(mayHoldSensitive(*google::protobuf::Value::descriptor()));
}

TEST(RedactTest, RedactsWithAFingerprint) {
  StaticResources sr = withSecrets();
  const std::string json = toRedactedJson(sr);
  EXPECT_EQ(json.find("PRIVATE KEY"), std::string::npos) << json;
  EXPECT_NE(json.find(redactedValue(kKey)), std::string::npos) << json;
  EXPECT_NE(json.find("CERT"), std::string::npos);
  EXPECT_NE(json.find("\"trusted_ca\":\"CA\""), std::string::npos);
  // The original is untouched.
  EXPECT_EQ(sr.secrets(0).tls_certificate().private_key(), kKey);
  // 8 hex digits, different for a different key, the same for the same one.
  EXPECT_EQ(redactedValue(kKey).size(), std::string("[redacted sha256:]").size() + 8);
  EXPECT_NE(redactedValue(kKey), redactedValue("other"));
  EXPECT_EQ(redactedValue(kKey), redactedValue(std::string(kKey)));
}

TEST(RedactTest, ReachesTheBootstrapsSecrets) {
  Bootstrap b;
  *b.mutable_static_resources() = withSecrets();
  redact(b);
  EXPECT_EQ(b.static_resources().secrets(0).tls_certificate().private_key(), redactedValue(kKey));
}

TEST(RedactTest, ForEachSensitiveNamesPathsAndStopsAtAnError) {
  StaticResources sr = withSecrets();
  *sr.add_secrets() = sr.secrets(0);
  sr.mutable_secrets(2)->mutable_tls_certificate()->set_private_key("");  // empty: not visited
  std::vector<std::string> paths;
  ASSERT_TRUE(forEachSensitive(sr, [&](const std::string& path, std::string& value) {
                paths.push_back(path);
                value = "x" + value;
                return absl::OkStatus();
              }).ok());
  EXPECT_EQ(paths, std::vector<std::string>{"secrets[0].tls_certificate.private_key"});
  EXPECT_EQ(sr.secrets(0).tls_certificate().private_key(), std::string("x") + kKey);

  *sr.add_secrets() = sr.secrets(0);
  int calls = 0;
  absl::Status s = forEachSensitive(sr, [&](const std::string& path, std::string&) {
    ++calls;
    return absl::InvalidArgumentError(path);
  });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(s.message(), "secrets[0].tls_certificate.private_key");
}

TEST(RedactTest, PlaceholdersAppliedAgainAreErrors) {
  StaticResources sr = withSecrets();
  EXPECT_TRUE(redactedPlaceholders(sr).empty());
  redact(sr);
  EXPECT_EQ(redactedPlaceholders(sr),
            std::vector<std::string>{
                "secrets[0].tls_certificate.private_key: is a redacted placeholder (as "
                "`sluicectl get` prints it), not a value: give the secret itself"});
}

TEST(RedactTest, CredentialsAndFilterConfigSecretsAreRedacted) {
  StaticResources sr;
  ASSERT_TRUE(loadFromYaml(R"(
listeners:
- name: public
  http_filters:
  - name: http_log
    config:
      http_endpoint: "https://logger:s3cret-pw@logs.example.com:8443/ingest?x=1"
      headers: {Authorization: "Bearer tok-123", X-Tenant: tenant-a}
      queue_size: 100
  - name: request_transformer
    config: {add: {headers: ["x-added:plain"]}}
  - name: router
route_tables:
- name: main
  virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
    - match: {prefix: /}
      direct_response: {status: 200}
      filter_config:
        http_log: {http_endpoint: "http://u:route-pw@127.0.0.1:9/", headers: {}}
        custom: {nested: {client_secret: cs-1, list: [{password: pw-2}]}}
auth_policies:
- name: keys
  key_auth: {}
  consumers:
  - username: alice
    keyauth_credentials: [{key: alice-key-1}]
    jwt_credentials: [{key: alice-iss, secret: hs-secret-1}]
rate_limit_policies:
- name: rl
  minute: 5
  policy: REDIS
  redis: {host: 127.0.0.1, password: redis-pw}
)",
                           sr)
                  .ok());
  const std::string json = toRedactedJson(sr);
  for (const char* secret : {"s3cret-pw", "tok-123", "tenant-a", "route-pw", "cs-1", "pw-2",
                             "alice-key-1", "hs-secret-1", "redis-pw"}) {
    EXPECT_EQ(json.find(secret), std::string::npos) << secret << " in " << json;
  }
  // What is not a secret stays readable: the endpoint, the user, other filters' headers, the
  // credential's key claim value.
  EXPECT_NE(json.find("https://logger:[redacted sha256:"), std::string::npos) << json;
  EXPECT_NE(json.find("@logs.example.com:8443/ingest?x=1"), std::string::npos) << json;
  EXPECT_NE(json.find("x-added:plain"), std::string::npos) << json;
  EXPECT_NE(json.find("alice-iss"), std::string::npos) << json;
  EXPECT_NE(json.find("\"queue_size\":100"), std::string::npos) << json;

  // Applied again, every placeholder is refused.
  redact(sr);
  const std::vector<std::string> errors = redactedPlaceholders(sr);
  EXPECT_EQ(errors.size(), 9u);
  for (const std::string& e : errors) {
    EXPECT_NE(e.find("is a redacted placeholder"), std::string::npos) << e;
  }
}

TEST(RedactTest, MessagesWithoutSecretsPrintAsToJson) {
  RouteTable t;
  t.set_name("main");
  EXPECT_EQ(toRedactedJson(t), toJson(t));
}

}  // namespace
}  // namespace Config
}  // namespace sluice
