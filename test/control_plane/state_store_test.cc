#include "source/control_plane/state_store.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/control_plane/state_cipher.h"
#include "test/control_plane/test_utility.h"

namespace sluice {
namespace ControlPlane {
namespace {

using sluice::control_plane::v1::GroupState;
using testing::HasSubstr;
using testing::Not;

constexpr char kKey[] =
    "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----\n";

std::array<uint8_t, StateCipher::kKeyBytes> key(uint8_t fill) {
  std::array<uint8_t, StateCipher::kKeyBytes> k;
  k.fill(fill);
  return k;
}

GroupState withSecret(const std::string& group) {
  GroupState st;
  st.set_group(group);
  st.set_version(3);
  auto* secret = st.mutable_resources()->add_secrets();
  secret->set_name("edge");
  secret->mutable_tls_certificate()->set_certificate_chain("CERT");
  secret->mutable_tls_certificate()->set_private_key(kKey);
  return st;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

mode_t modeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

TEST(StateCipherTest, SealsAndOpensOnlyWithTheKeyAndAssociatedData) {
  StateCipher a(key(1));
  StateCipher b(key(2));
  auto sealed = a.seal("secret", "g\nf");
  ASSERT_TRUE(sealed.ok());
  EXPECT_TRUE(StateCipher::isSealed(*sealed));
  EXPECT_THAT(*sealed, Not(HasSubstr("secret")));
  EXPECT_NE(*sealed, *a.seal("secret", "g\nf"));  // a fresh nonce each time
  EXPECT_EQ(*a.open(*sealed, "g\nf"), "secret");
  EXPECT_FALSE(b.open(*sealed, "g\nf").ok());
  EXPECT_FALSE(a.open(*sealed, "other\nf").ok());
  EXPECT_FALSE(a.open("enc:v1:!!", "g\nf").ok());
  std::string tampered = *sealed;
  tampered[tampered.size() - 3] ^= 1;
  EXPECT_FALSE(a.open(tampered, "g\nf").ok());
}

TEST(StateCipherTest, KeyFiles) {
  const std::string dir = TestUtil::tempDir("key");
  const std::string path = dir + "/state.key";
  bool created = false;
  std::string warning;
  auto first = StateCipher::loadOrCreate(path, &created, &warning);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(created);
  EXPECT_EQ(modeOf(path), 0600u);
  EXPECT_EQ(slurp(path).size(), 65u);  // 64 hex digits and a newline
  auto again = StateCipher::loadOrCreate(path, &created, &warning);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(created);
  EXPECT_EQ(*again->open(*first->seal("x", ""), ""), "x");  // the same key

  std::ofstream(dir + "/raw.key") << std::string(32, 'k');
  ::chmod((dir + "/raw.key").c_str(), 0644);
  EXPECT_TRUE(StateCipher::fromKeyFile(dir + "/raw.key", &warning).ok());
  EXPECT_THAT(warning, HasSubstr("mode 0644"));

  std::ofstream(dir + "/bad.key") << "too short\n";
  auto bad = StateCipher::fromKeyFile(dir + "/bad.key", &warning);
  EXPECT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("64 hex digits"));
  EXPECT_FALSE(StateCipher::fromKeyFile(dir + "/missing.key", &warning).ok());
}

TEST(StateStoreTest, SecretsAreEncryptedOnDiskAndPrivate) {
  const std::string dir = TestUtil::tempDir("state");
  StateCipher cipher(key(7));
  StateStore store(dir, &cipher);
  ASSERT_TRUE(store.init().ok());
  ASSERT_TRUE(store.save(withSecret("edge")).ok());
  const std::string text = slurp(store.pathFor("edge"));
  EXPECT_THAT(text, Not(HasSubstr("PRIVATE KEY")));
  EXPECT_THAT(text, HasSubstr("enc:v1:"));
  EXPECT_THAT(text, HasSubstr("CERT"));
  EXPECT_EQ(modeOf(store.pathFor("edge")), 0600u);
  EXPECT_EQ(modeOf(dir), 0700u);
  EXPECT_EQ(modeOf(dir + "/groups"), 0700u);

  auto loaded = store.load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->size(), 1u);
  EXPECT_EQ((*loaded)[0].resources().secrets(0).tls_certificate().private_key(), kKey);

  StateCipher other(key(8));
  StateStore wrong(dir, &other);
  auto refused = wrong.load();
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(),
              HasSubstr("resources.secrets[0].tls_certificate.private_key: does not decrypt"));
  StateStore keyless(dir);
  EXPECT_FALSE(keyless.load().ok());
  EXPECT_FALSE(keyless.save(withSecret("edge")).ok());
}

TEST(StateStoreTest, ASecretInClearIsWrittenAgainEncrypted) {
  const std::string dir = TestUtil::tempDir("state");
  StateStore store(dir);
  ASSERT_TRUE(store.init().ok());
  {
    std::ofstream out(store.pathFor("old"));
    out << "{\"group\":\"old\",\"version\":\"3\",\"resources\":{\"secrets\":[{\"name\":\"edge\","
           "\"tls_certificate\":{\"private_key\":\"KEY\"}}]}}";
  }
  ::chmod(store.pathFor("old").c_str(), 0644);
  StateCipher cipher(key(7));
  store.setCipher(&cipher);
  ASSERT_TRUE(store.init().ok());
  EXPECT_EQ(modeOf(store.pathFor("old")), 0600u);
  auto loaded = store.load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)[0].resources().secrets(0).tls_certificate().private_key(), "KEY");
  EXPECT_THAT(slurp(store.pathFor("old")), Not(HasSubstr("\"KEY\"")));
  EXPECT_THAT(slurp(store.pathFor("old")), HasSubstr("enc:v1:"));
}

}  // namespace
}  // namespace ControlPlane
}  // namespace sluice
