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
                "`sluicectl get` prints it), not a value: give the PEM text"});
}

TEST(RedactTest, MessagesWithoutSecretsPrintAsToJson) {
  RouteTable t;
  t.set_name("main");
  EXPECT_EQ(toRedactedJson(t), toJson(t));
}

}  // namespace
}  // namespace Config
}  // namespace sluice
