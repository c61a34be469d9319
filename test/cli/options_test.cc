#include "source/cli/options.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sluice {
namespace Cli {
namespace {

using testing::HasSubstr;

Options parse(std::vector<std::string> args, const char* env = nullptr) {
  return parseArgs(args, env);
}

TEST(OptionsTest, Defaults) {
  Options o = parse({"status"});
  EXPECT_EQ(o.error, "");
  EXPECT_EQ(o.command, Command::Status);
  EXPECT_EQ(o.server, "127.0.0.1:18000");
  EXPECT_EQ(o.timeout, absl::Seconds(10));
  EXPECT_EQ(o.output, "text");
  EXPECT_FALSE(o.help);
}

TEST(OptionsTest, ServerFromFlagThenEnvThenDefault) {
  EXPECT_EQ(parse({"status"}, "cp:1").server, "cp:1");
  EXPECT_EQ(parse({"status"}, "").server, "127.0.0.1:18000");
  EXPECT_EQ(parse({"--server", "cp:2", "status"}, "cp:1").server, "cp:2");
  EXPECT_EQ(parse({"--server=cp:3", "status"}, "cp:1").server, "cp:3");
  // Global flags also after the command.
  EXPECT_EQ(parse({"status", "--server", "cp:4"}).server, "cp:4");
}

TEST(OptionsTest, TlsFromFlagsThenEnvironment) {
  Options o = parse({"status"});
  EXPECT_FALSE(o.tls);

  o = parse({"--tls", "status"});
  EXPECT_EQ(o.error, "");
  EXPECT_TRUE(o.tls);
  EXPECT_EQ(o.tls_ca, "");

  o = parse({"status", "--tls-ca", "ca.pem", "--tls-cert=c.pem", "--tls-key", "k.pem",
             "--tls-server-name", "cp.internal"});
  EXPECT_EQ(o.error, "");
  EXPECT_TRUE(o.tls);
  EXPECT_EQ(o.tls_ca, "ca.pem");
  EXPECT_EQ(o.tls_cert, "c.pem");
  EXPECT_EQ(o.tls_key, "k.pem");
  EXPECT_EQ(o.tls_server_name, "cp.internal");

  Environment env;
  env.tls_ca = "env-ca.pem";
  env.tls_cert = "env-c.pem";
  env.tls_key = "env-k.pem";
  o = parseArgs({"status"}, env);
  EXPECT_TRUE(o.tls);
  EXPECT_EQ(o.tls_ca, "env-ca.pem");
  EXPECT_EQ(o.tls_cert, "env-c.pem");
  o = parseArgs({"--tls-ca", "flag.pem", "status"}, env);
  EXPECT_EQ(o.tls_ca, "flag.pem");

  EXPECT_THAT(parse({"--tls-cert", "c.pem", "status"}).error,
              HasSubstr("--tls-cert needs --tls-key"));
  EXPECT_THAT(parse({"--tls-key", "k.pem", "status"}).error,
              HasSubstr("--tls-key needs --tls-cert"));
  EXPECT_THAT(parse({"--tls-ca=", "status"}).error, HasSubstr("--tls-ca must not be empty"));
  EXPECT_THAT(parse({"--tls-ca"}).error, HasSubstr("needs a value"));
}

TEST(OptionsTest, Timeout) {
  EXPECT_EQ(parse({"--timeout", "500ms", "status"}).timeout, absl::Milliseconds(500));
  EXPECT_EQ(parse({"--timeout=2m", "status"}).timeout, absl::Minutes(2));
  for (const char* bad : {"10", "0s", "-1s", "soon", "inf"}) {
    EXPECT_THAT(parse({"--timeout", bad, "status"}).error, HasSubstr("--timeout")) << bad;
  }
}

TEST(OptionsTest, FileCommands) {
  Options o = parse({"validate", "-f", "edge.yaml"});
  EXPECT_EQ(o.error, "");
  EXPECT_EQ(o.command, Command::Validate);
  EXPECT_EQ(o.file, "edge.yaml");

  o = parse({"apply", "--file=-", "--group", "edge"});
  EXPECT_EQ(o.error, "");
  EXPECT_EQ(o.command, Command::Apply);
  EXPECT_EQ(o.file, "-");
  EXPECT_EQ(o.group, "edge");

  o = parse({"diff", "-f", "x.json"});
  EXPECT_EQ(o.error, "");
  EXPECT_EQ(o.command, Command::Diff);
  EXPECT_EQ(o.group, "default");

  EXPECT_THAT(parse({"apply"}).error, HasSubstr("needs -f FILE"));
  EXPECT_THAT(parse({"validate", "-f"}).error, HasSubstr("-f needs a value"));
  EXPECT_THAT(parse({"validate", "-f", "a", "b"}).error, HasSubstr("unexpected argument \"b\""));
  EXPECT_THAT(parse({"validate", "-f", "a", "--group", "g"}).error,
              HasSubstr("--group does not apply to validate"));
}

TEST(OptionsTest, Get) {
  Options o = parse({"get", "clusters"});
  EXPECT_EQ(o.error, "");
  EXPECT_EQ(o.type, "clusters");
  EXPECT_EQ(o.name, "");
  EXPECT_EQ(o.output, "yaml");
  EXPECT_EQ(o.group, "default");

  o = parse({"get", "Cluster", "users", "-o", "json", "--group", "edge"});
  EXPECT_EQ(o.error, "");
  EXPECT_EQ(o.type, "Cluster");
  EXPECT_EQ(o.name, "users");
  EXPECT_EQ(o.output, "json");
  EXPECT_EQ(o.group, "edge");

  // "--" ends the flags: a resource named "-x".
  o = parse({"get", "Cluster", "--", "-x"});
  EXPECT_EQ(o.error, "");
  EXPECT_EQ(o.name, "-x");

  EXPECT_THAT(parse({"get"}).error, HasSubstr("needs a resource TYPE"));
  EXPECT_THAT(parse({"get", "a", "b", "c"}).error, HasSubstr("unexpected argument \"c\""));
  EXPECT_THAT(parse({"get", "a", "-o", "text"}).error, HasSubstr("yaml or json"));
  EXPECT_THAT(parse({"get", "a", "-f", "x"}).error, HasSubstr("--file does not apply to get"));
}

TEST(OptionsTest, Status) {
  EXPECT_EQ(parse({"status", "-o", "json"}).output, "json");
  EXPECT_THAT(parse({"status", "-o", "yaml"}).error, HasSubstr("text or json"));
  EXPECT_THAT(parse({"status", "x"}).error, HasSubstr("unexpected argument"));
  EXPECT_THAT(parse({"status", "--group", "g"}).error, HasSubstr("does not apply"));
}

TEST(OptionsTest, UsageErrors) {
  EXPECT_EQ(parse({}).error, "missing command");
  EXPECT_EQ(parse({"frobnicate"}).error, "unknown command \"frobnicate\"");
  EXPECT_EQ(parse({"status", "--verbose"}).error, "unknown flag --verbose");
  EXPECT_EQ(parse({"status", "-x"}).error, "unknown flag -x");
  EXPECT_EQ(parse({"--server", "", "status"}).error, "--server must not be empty");
  EXPECT_EQ(parse({"apply", "-f", "x", "--group="}).error, "--group must not be empty");
}

TEST(OptionsTest, Help) {
  Options o = parse({"-h"});
  EXPECT_TRUE(o.help);
  EXPECT_EQ(o.command, Command::None);
  EXPECT_EQ(o.error, "");

  o = parse({"get", "--help"});
  EXPECT_TRUE(o.help);
  EXPECT_EQ(o.command, Command::Get);
  EXPECT_EQ(o.error, "");  // help wins over the missing TYPE

  o = parse({"help", "apply"});
  EXPECT_TRUE(o.help);
  EXPECT_EQ(o.command, Command::Apply);

  EXPECT_TRUE(parse({"help"}).help);
  EXPECT_EQ(parse({"help", "nope"}).error, "unknown command \"nope\"");
}

TEST(OptionsTest, UsageTexts) {
  EXPECT_THAT(usage(Command::None), HasSubstr("usage: sluicectl [--server ADDR]"));
  for (Command c :
       {Command::Validate, Command::Diff, Command::Apply, Command::Status, Command::Get}) {
    EXPECT_THAT(usage(c), HasSubstr("usage: sluicectl " + commandName(c)));
    EXPECT_THAT(usage(c), HasSubstr("--server ADDR"));
  }
  // The types of `get`, from StaticResources (the filters' policy types included).
  EXPECT_THAT(usage(Command::Get),
              HasSubstr("TYPE: Listener, RouteTable, Cluster, ClusterEndpoints, "));
  EXPECT_THAT(usage(Command::Get), HasSubstr("AuthPolicy"));
  EXPECT_THAT(usage(Command::Get), HasSubstr("RateLimitPolicy"));
}

TEST(OptionsTest, ConvertTakesAFormatAFileAndAnOutput) {
  Options o = parse({"convert", "kong", "-f", "kong.yml", "-o", "out.yaml", "--lenient",
                     "--oauth2-jwks", "https://idp/jwks", "--listen", "127.0.0.1:9000"});
  EXPECT_EQ(o.error, "");
  EXPECT_EQ(o.command, Command::Convert);
  EXPECT_EQ(o.format, "kong");
  EXPECT_EQ(o.file, "kong.yml");
  EXPECT_EQ(o.output, "out.yaml");
  EXPECT_TRUE(o.lenient);
  EXPECT_EQ(o.oauth2_jwks, "https://idp/jwks");
  EXPECT_EQ(o.listen, "127.0.0.1:9000");

  o = parse({"convert", "-f", "api.yaml"});
  EXPECT_EQ(o.error, "");
  EXPECT_EQ(o.format, "");  // detected
  EXPECT_EQ(o.output, "");  // stdout
  EXPECT_FALSE(o.lenient);

  EXPECT_EQ(parse({"convert", "-f", "x", "-o", "-"}).output, "");
  EXPECT_EQ(parse({"convert", "nginx", "-f", "x"}).error,
            "convert takes kong or openapi, not \"nginx\"");
  EXPECT_EQ(parse({"convert", "kong"}).error, "convert needs -f FILE (\"-\" reads stdin)");
  EXPECT_EQ(parse({"convert", "kong", "openapi", "-f", "x"}).error,
            "unexpected argument \"openapi\"");
  EXPECT_EQ(parse({"convert", "-f", "x", "--group", "g"}).error,
            "flag --group does not apply to convert");
  EXPECT_EQ(parse({"convert", "-f", "x", "--listen", ""}).error, "--listen must not be empty");
  // OpenAPI: the JWKS of every JWT authorizer.
  o = parse({"convert", "openapi", "-f", "api.yaml", "--jwks-uri", "http://127.0.0.1:1/jwks"});
  EXPECT_EQ(o.error, "");
  EXPECT_EQ(o.jwks_uri, "http://127.0.0.1:1/jwks");
  EXPECT_EQ(parse({"apply", "-f", "api.yaml", "--jwks-uri=u"}).jwks_uri, "u");
  EXPECT_EQ(parse({"convert", "-f", "x", "--jwks-uri", ""}).error, "--jwks-uri must not be empty");
  EXPECT_EQ(parse({"status", "--jwks-uri", "u"}).error, "flag --jwks-uri does not apply to status");
}

TEST(OptionsTest, ImportFlagsApplyToValidateDiffAndApply) {
  for (const char* command : {"validate", "diff", "apply"}) {
    Options o = parse({command, "-f", "kong.yml", "--lenient", "--oauth2-jwks=u"});
    EXPECT_EQ(o.error, "") << command;
    EXPECT_TRUE(o.lenient);
    EXPECT_EQ(o.oauth2_jwks, "u");
  }
  EXPECT_EQ(parse({"status", "--lenient"}).error, "flag --lenient does not apply to status");
  EXPECT_EQ(parse({"get", "clusters", "--listen", "x:1"}).error,
            "flag --listen does not apply to get");
}

}  // namespace
}  // namespace Cli
}  // namespace sluice
