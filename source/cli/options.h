#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace sluice {
namespace Cli {

enum class Command { None, Validate, Diff, Apply, Status, Get };

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
  // --timeout: deadline of each call.
  absl::Duration timeout = absl::Seconds(10);
  // -f/--file (validate, diff, apply); "-" is stdin.
  std::string file;
  // --group (diff, apply, get).
  std::string group = "default";
  // -o/--output: "text" or "json" (status), "yaml" or "json" (get).
  std::string output;
  // get TYPE [NAME].
  std::string type;
  std::string name;
};

// `args` excludes argv[0]; `env_server` is $SLUICECTL_SERVER (nullptr when unset).
Options parseArgs(const std::vector<std::string>& args, const char* env_server);

// The usage text of a command, or the global one for Command::None.
std::string usage(Command command);

// "validate", ...; "" for Command::None.
std::string commandName(Command command);

}  // namespace Cli
}  // namespace sluice
