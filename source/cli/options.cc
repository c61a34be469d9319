#include "source/cli/options.h"

#include <cstdlib>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "source/cli/format.h"

namespace sluice {
namespace Cli {

namespace {

constexpr struct {
  Command command;
  const char* name;
} kCommands[] = {{Command::Validate, "validate"}, {Command::Diff, "diff"},
                 {Command::Apply, "apply"},       {Command::Status, "status"},
                 {Command::Get, "get"},           {Command::Convert, "convert"}};

const char kImportFlags[] =
    "Kong and OpenAPI files (convert, validate, diff, apply; docs/imports.md):\n"
    "  --lenient           unknown fields, unsupported plugins and dangling references are\n"
    "                      warnings and are skipped (default: errors, like decK)\n"
    "  --oauth2-jwks URL   JWKS of the authorization server whose tokens Kong oauth2 plugins\n"
    "                      accept (Sluice is a resource server; required with oauth2)\n"
    "  --listen HOST:PORT  the listener of the imported routes (default 0.0.0.0:8000 for Kong,\n"
    "                      0.0.0.0:8080 for OpenAPI)\n"
    "  --jwks-uri URL      OpenAPI: the JWKS URL of every JWT authorizer, instead of the one\n"
    "                      derived from the spec (Cognito pool ARN, issuer, openIdConnectUrl)\n";

const char kGlobalFlags[] =
    "Global flags:\n"
    "  --server ADDR       sluice-cp's address (default: $SLUICECTL_SERVER, else "
    "127.0.0.1:18000)\n"
    "  --timeout DURATION  deadline of each call, e.g. 10s, 500ms (default 10s)\n"
    "  --tls               TLS to sluice-cp (implied by the --tls-* flags below)\n"
    "  --tls-ca FILE       PEM CAs sluice-cp's certificate must chain to (default: the\n"
    "                      system's; $SLUICECTL_TLS_CA)\n"
    "  --tls-cert FILE     client certificate, PEM, for a sluice-cp started with --client-ca\n"
    "                      ($SLUICECTL_TLS_CERT) ...\n"
    "  --tls-key FILE      ... and its PEM private key ($SLUICECTL_TLS_KEY)\n"
    "  --tls-server-name NAME  name to verify in sluice-cp's certificate (default: the host\n"
    "                      of --server; $SLUICECTL_TLS_SERVER_NAME)\n"
    "  -h, --help          help (`sluicectl COMMAND --help` for a command's)\n";

// "TYPE: Listener, RouteTable, ...": every type sluice-cp serves.
std::string typesHelp() {
  return absl::StrCat("TYPE: ", absl::StrJoin(typeNames(), ", "),
                      "\n"
                      "(case-insensitive; plural and snake_case forms such as route_tables also "
                      "work).\n");
}

Command commandByName(const std::string& name) {
  for (const auto& c : kCommands) {
    if (name == c.name) {
      return c.command;
    }
  }
  return Command::None;
}

// The flags of Kong / OpenAPI imports.
bool isImportFlag(const std::string& flag) {
  return flag == "lenient" || flag == "oauth2-jwks" || flag == "listen" || flag == "jwks-uri";
}

// Which per-command flags (by long name) each command accepts.
bool acceptsFlag(Command command, const std::string& flag) {
  switch (command) {
    case Command::Validate:
      return flag == "file" || isImportFlag(flag);
    case Command::Diff:
    case Command::Apply:
      return flag == "file" || flag == "group" || isImportFlag(flag);
    case Command::Convert:
      return flag == "file" || flag == "output" || isImportFlag(flag);
    case Command::Status:
      return flag == "output";
    case Command::Get:
      return flag == "group" || flag == "output";
    case Command::None:
      return false;
  }
  return false;
}

// Checks what only makes sense once the command is known; returns the usage error or "".
std::string checkCommand(Options& o, const std::vector<std::string>& positional,
                         const std::set<std::string>& flags_seen) {
  const std::string name = commandName(o.command);
  for (const std::string& flag : flags_seen) {
    if (!acceptsFlag(o.command, flag)) {
      return absl::StrCat("flag --", flag, " does not apply to ", name);
    }
  }
  switch (o.command) {
    case Command::Validate:
    case Command::Diff:
    case Command::Apply:
      if (!positional.empty()) {
        return absl::StrCat("unexpected argument \"", positional[0], "\"");
      }
      if (o.file.empty()) {
        return absl::StrCat(name, " needs -f FILE (\"-\" reads stdin)");
      }
      return "";
    case Command::Convert:
      if (positional.size() > 1) {
        return absl::StrCat("unexpected argument \"", positional[1], "\"");
      }
      if (!positional.empty()) {
        o.format = positional[0];
        if (o.format != "kong" && o.format != "openapi") {
          return absl::StrCat("convert takes kong or openapi, not \"", o.format, "\"");
        }
      }
      if (o.file.empty()) {
        return "convert needs -f FILE (\"-\" reads stdin)";
      }
      if (o.output == "-") {
        o.output.clear();
      }
      return "";
    case Command::Status:
      if (!positional.empty()) {
        return absl::StrCat("unexpected argument \"", positional[0], "\"");
      }
      if (o.output.empty()) {
        o.output = "text";
      }
      if (o.output != "text" && o.output != "json") {
        return absl::StrCat("-o must be text or json, not \"", o.output, "\"");
      }
      return "";
    case Command::Get:
      if (positional.empty()) {
        return "get needs a resource TYPE";
      }
      if (positional.size() > 2) {
        return absl::StrCat("unexpected argument \"", positional[2], "\"");
      }
      o.type = positional[0];
      o.name = positional.size() > 1 ? positional[1] : "";
      if (o.output.empty()) {
        o.output = "yaml";
      }
      if (o.output != "yaml" && o.output != "json") {
        return absl::StrCat("-o must be yaml or json, not \"", o.output, "\"");
      }
      return "";
    case Command::None:
      return "";
  }
  return "";
}

}  // namespace

std::string commandName(Command command) {
  for (const auto& c : kCommands) {
    if (command == c.command) {
      return c.name;
    }
  }
  return "";
}

Environment Environment::fromProcess() {
  Environment env;
  env.server = std::getenv("SLUICECTL_SERVER");
  env.tls_ca = std::getenv("SLUICECTL_TLS_CA");
  env.tls_cert = std::getenv("SLUICECTL_TLS_CERT");
  env.tls_key = std::getenv("SLUICECTL_TLS_KEY");
  env.tls_server_name = std::getenv("SLUICECTL_TLS_SERVER_NAME");
  return env;
}

Options parseArgs(const std::vector<std::string>& args, const Environment& env) {
  Options o;
  for (auto [value, field] :
       {std::make_pair(env.server, &o.server), std::make_pair(env.tls_ca, &o.tls_ca),
        std::make_pair(env.tls_cert, &o.tls_cert), std::make_pair(env.tls_key, &o.tls_key),
        std::make_pair(env.tls_server_name, &o.tls_server_name)}) {
    if (value != nullptr && *value != '\0') {
      *field = value;
    }
  }
  std::vector<std::string> positional;
  std::set<std::string> flags_seen;  // per-command flags, checked once the command is known
  bool only_positional = false;
  for (size_t i = 0; i < args.size() && o.error.empty(); ++i) {
    const std::string& arg = args[i];
    if (only_positional || arg == "-" || !absl::StartsWith(arg, "-")) {
      if (o.command != Command::None) {
        positional.push_back(arg);
      } else if (arg == "help" && !o.help) {
        o.help = true;  // `help [COMMAND]`
      } else if ((o.command = commandByName(arg)) == Command::None) {
        o.error = absl::StrCat("unknown command \"", arg, "\"");
      }
      continue;
    }
    if (arg == "--") {
      only_positional = true;
      continue;
    }
    // --name=value, --name value, -x value.
    std::string flag = arg;
    std::string value;
    bool has_value = false;
    if (absl::StartsWith(arg, "--") && arg.find('=') != std::string::npos) {
      flag = arg.substr(0, arg.find('='));
      value = arg.substr(arg.find('=') + 1);
      has_value = true;
    }
    if (flag == "-h" || flag == "--help") {
      o.help = true;
      continue;
    }
    if (arg == "--tls") {
      o.tls = true;
      continue;
    }
    if (arg == "--lenient") {
      o.lenient = true;
      flags_seen.insert("lenient");
      continue;
    }
    std::string long_name;
    if (flag == "--server" || flag == "--timeout" || flag == "--group" || flag == "--tls-ca" ||
        flag == "--tls-cert" || flag == "--tls-key" || flag == "--tls-server-name" ||
        flag == "--oauth2-jwks" || flag == "--listen" || flag == "--jwks-uri") {
      long_name = flag.substr(2);
    } else if (flag == "-f" || flag == "--file") {
      long_name = "file";
    } else if (flag == "-o" || flag == "--output") {
      long_name = "output";
    } else {
      o.error = absl::StrCat("unknown flag ", flag);
      break;
    }
    if (!has_value) {
      if (i + 1 >= args.size()) {
        o.error = absl::StrCat("flag ", flag, " needs a value");
        break;
      }
      value = args[++i];
    }
    if (long_name == "server") {
      if (value.empty()) {
        o.error = "--server must not be empty";
      }
      o.server = value;
    } else if (absl::StartsWith(long_name, "tls-")) {
      if (value.empty()) {
        o.error = absl::StrCat("--", long_name, " must not be empty");
      }
      (long_name == "tls-ca"     ? o.tls_ca
       : long_name == "tls-cert" ? o.tls_cert
       : long_name == "tls-key"  ? o.tls_key
                                 : o.tls_server_name) = value;
    } else if (long_name == "timeout") {
      if (!absl::ParseDuration(value, &o.timeout) || o.timeout <= absl::ZeroDuration() ||
          o.timeout == absl::InfiniteDuration()) {
        o.error = absl::StrCat("--timeout: \"", value, "\" is not a positive duration like 10s");
      }
    } else {
      flags_seen.insert(long_name);
      if (long_name == "file") {
        o.file = value;
      } else if (long_name == "oauth2-jwks" || long_name == "listen" || long_name == "jwks-uri") {
        if (value.empty()) {
          o.error = absl::StrCat("--", long_name, " must not be empty");
        }
        (long_name == "listen"     ? o.listen
         : long_name == "jwks-uri" ? o.jwks_uri
                                   : o.oauth2_jwks) = value;
      } else if (long_name == "group") {
        if (value.empty()) {
          o.error = "--group must not be empty";
        }
        o.group = value;
      } else {
        o.output = value;
      }
    }
  }
  if (!o.error.empty() || o.help) {
    return o;
  }
  o.tls = o.tls || !o.tls_ca.empty() || !o.tls_cert.empty() || !o.tls_key.empty() ||
          !o.tls_server_name.empty();
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    o.error = o.tls_cert.empty() ? "--tls-key needs --tls-cert" : "--tls-cert needs --tls-key";
    return o;
  }
  if (o.command == Command::None) {
    o.error = "missing command";
    return o;
  }
  o.error = checkCommand(o, positional, flags_seen);
  return o;
}

std::string usage(Command command) {
  switch (command) {
    case Command::None:
      return absl::StrCat(
          "usage: sluicectl [--server ADDR] [--timeout DURATION] [--tls-* ...] COMMAND [ARGS]\n"
          "\n"
          "Operates sluice-cp, the control plane of Sluice.\n"
          "\n"
          "Commands:\n"
          "  validate -f FILE                 check a declared config\n"
          "  diff -f FILE [--group G]         what apply would change\n"
          "  apply -f FILE [--group G]        validate and publish a group's declared config\n"
          "  status [-o text|json]            groups, versions and every data plane's state\n"
          "  get TYPE [NAME] [--group G] [-o yaml|json]\n"
          "                                   the resources published for a group\n"
          "  convert [kong|openapi] -f FILE [-o OUT]\n"
          "                                   a Kong declarative file or an OpenAPI spec as\n"
          "                                   Sluice resources (offline)\n"
          "\n"
          "FILE (YAML or JSON) has the keys of a bootstrap's static_resources, or is a Kong\n"
          "declarative file (_format_version) or an OpenAPI 3 spec (openapi), converted on the\n"
          "fly (see `sluicectl convert --help`); \"-\" reads stdin.\n"
          "G is the node group (default \"default\").\n"
          "\n",
          kGlobalFlags, "\n", kImportFlags,
          "\n"
          "Exit status: 0 success, 1 failure (invalid config, refused apply, server error),\n"
          "2 usage error; diff: 0 no changes, 1 changes, 2 error.\n");
    case Command::Validate:
      return absl::StrCat(
          "usage: sluicectl validate -f FILE [--lenient] [--oauth2-jwks URL] [--listen HOST:PORT]\n"
          "\n"
          "Validates a declared config (YAML or JSON, the keys of a bootstrap's\n"
          "static_resources; \"-\" reads stdin) with sluice-cp, without publishing it.\n"
          "Prints \"valid\" (exit 0) or every error, one per line (exit 1).\n"
          "A Kong or OpenAPI file is converted first; its warnings go to stderr.\n"
          "\n",
          kImportFlags, "\n", kGlobalFlags);
    case Command::Diff:
      return absl::StrCat(
          "usage: sluicectl diff -f FILE [--group G] [--lenient] [--oauth2-jwks URL] [--listen "
          "H:P]\n"
          "\n"
          "Shows what `apply` would change in group G (default \"default\"), resource by\n"
          "resource: \"+ Type name\" added, \"- Type name\" removed, \"~ Type name\" changed\n"
          "(followed by a line diff of its JSON). Validation errors are listed after it.\n"
          "Exit status: 0 no changes, 1 changes, 2 error (including an invalid config).\n"
          "\n",
          kImportFlags, "\n", kGlobalFlags);
    case Command::Apply:
      return absl::StrCat(
          "usage: sluicectl apply -f FILE [--group G] [--lenient] [--oauth2-jwks URL] [--listen "
          "H:P]\n"
          "\n"
          "Validates FILE and publishes it as the whole declared config of group G\n"
          "(default \"default\"), replacing the previous one. Prints the group's new version;\n"
          "when refused prints every error and exits 1 (nothing changes). A Kong or OpenAPI\n"
          "file is converted first (its warnings go to stderr).\n"
          "\n",
          kImportFlags, "\n", kGlobalFlags);
    case Command::Status:
      return absl::StrCat(
          "usage: sluicectl status [-o text|json]\n"
          "\n"
          "Groups (version, source, resource counts) and every data plane seen (connected,\n"
          "in sync, version ACKed per type, NACKs with their reason). -o json prints the\n"
          "StatusResponse in the protobuf JSON mapping.\n"
          "\n",
          kGlobalFlags);
    case Command::Get:
      return absl::StrCat(
          "usage: sluicectl get TYPE [NAME] [--group G] [-o yaml|json]\n"
          "\n"
          "Prints the resources of TYPE published for group G (default \"default\"): a list,\n"
          "or the single resource NAME. YAML by default; the output can be applied again,\n"
          "except secrets: their private keys are printed redacted, as\n"
          "\"[redacted sha256:ab12cd34]\" (a fingerprint that tells keys apart).\n",
          typesHelp(), "\n", kGlobalFlags);
    case Command::Convert:
      return absl::StrCat(
          "usage: sluicectl convert [kong|openapi] -f FILE [-o OUT] [--lenient]\n"
          "                         [--oauth2-jwks URL] [--listen HOST:PORT] [--jwks-uri URL]\n"
          "\n"
          "Converts a Kong declarative file (_format_version 1.1, 2.1 or 3.0) or an OpenAPI 3\n"
          "spec with AWS API Gateway extensions into Sluice resources (YAML, the keys of a\n"
          "bootstrap's static_resources), written to OUT (default stdout). The format is\n"
          "detected when not given. Needs no sluice-cp. Every error and warning is printed\n"
          "on stderr as FILE:LINE: error|warning: PATH: MESSAGE; with an error nothing is\n"
          "written and the exit status is 1.\n"
          "\n",
          kImportFlags);
  }
  return "";
}

}  // namespace Cli
}  // namespace sluice
