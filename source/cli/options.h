#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace sluice {
namespace Cli {

enum class Command { None, Validate, Diff, Apply, Status, Get, Convert };

// The parsed command line of sluicectl. Parsing never fails hard: a usage error is reported in
// `error` (the caller prints it with usage(command) and exits 2).
struct Options {
  Command command = Command::None;
  // -h/--help/`help [COMMAND]`: print usage(command) on stdout and exit 0.
  bool help = false;
  // Non-empty: what is wrong with the command line.
  std::string error;

  // --server, else $SLUICECTL_SERVER, else the default.
  std::string server = "127.0.0.1:18000";
  // TLS to sluice-cp: on with --tls or any of the files or the name below. Each flag, else its
  // $SLUICECTL_TLS_* variable. ca: PEM CAs the server certificate must chain to (default: the
  // system's); cert/key: a client certificate and its key (sluice-cp with --client-ca);
  // server_name: the name to verify instead of the host of `server`.
  bool tls = false;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_server_name;
  // --timeout: deadline of each call.
  absl::Duration timeout = absl::Seconds(10);
  // -f/--file (validate, diff, apply); "-" is stdin.
  std::string file;
  // --group (diff, apply, get).
  std::string group = "default";
  // -o/--output: "text" or "json" (status), "yaml" or "json" (get); convert: the file to write
  // (default stdout).
  std::string output;
  // convert FORMAT: "kong" or "openapi"; "" = detected from the file.
  std::string format;
  // Kong / OpenAPI files (convert, validate, diff, apply): --lenient turns unknown fields,
  // unsupported plugins and dangling references into warnings (the thing is skipped);
  // --oauth2-jwks is the JWKS URL of Kong oauth2 plugins' authorization server; --listen the
  // address of the listener the imported routes get (default 0.0.0.0:8000 for Kong, 0.0.0.0:8080
  // for OpenAPI).
  bool lenient = false;
  std::string oauth2_jwks;
  std::string listen;
  // OpenAPI: --jwks-uri replaces the JWKS URL of every JWT authorizer (ConfigImport::Options).
  std::string jwks_uri;
  // get TYPE [NAME].
  std::string type;
  std::string name;
};

// What sluicectl reads from its environment (nullptr: unset).
struct Environment {
  const char* server = nullptr;           // $SLUICECTL_SERVER
  const char* tls_ca = nullptr;           // $SLUICECTL_TLS_CA
  const char* tls_cert = nullptr;         // $SLUICECTL_TLS_CERT
  const char* tls_key = nullptr;          // $SLUICECTL_TLS_KEY
  const char* tls_server_name = nullptr;  // $SLUICECTL_TLS_SERVER_NAME
  // The process's.
  static Environment fromProcess();
};

// `args` excludes argv[0]. Flags win over the environment.
Options parseArgs(const std::vector<std::string>& args, const Environment& env);
// Only $SLUICECTL_SERVER set (nullptr when unset).
inline Options parseArgs(const std::vector<std::string>& args, const char* env_server) {
  Environment env;
  env.server = env_server;
  return parseArgs(args, env);
}

// The usage text of a command, or the global one for Command::None.
std::string usage(Command command);

// "validate", ...; "" for Command::None.
std::string commandName(Command command);

}  // namespace Cli
}  // namespace sluice
