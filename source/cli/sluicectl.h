#pragma once

#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "sluice/service/control/v1/control.grpc.pb.h"
#include "source/cli/options.h"

namespace sluice {
namespace Cli {

using ControlStub = sluice::service::control::v1::ControlService::StubInterface;

// How to reach sluice-cp: its address, the credentials (cleartext, or TLS from the --tls-*
// files) and channel arguments (the TLS name override).
struct ChannelSpec {
  std::string address;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  grpc::ChannelArguments args;
};
// Makes the stub (main: a channel from the spec; tests: in-process).
using StubFactory = std::function<std::unique_ptr<ControlStub>(const ChannelSpec& channel)>;

struct Io {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
};

// The whole of sluicectl: parses `args` (argv without argv[0]), runs the command and returns
// the exit status (0 success, 1 failure, 2 usage error; diff: 0 no changes, 1 changes,
// 2 error). Never throws.
int run(const std::vector<std::string>& args, const Environment& env, const StubFactory& stubs,
        Io io);
// Only $SLUICECTL_SERVER set (nullptr when unset).
inline int run(const std::vector<std::string>& args, const char* env_server,
               const StubFactory& stubs, Io io) {
  Environment env;
  env.server = env_server;
  return run(args, env, stubs, io);
}

// The one-line message for a failed call to sluice-cp at `address`.
std::string rpcErrorMessage(const std::string& address, const grpc::Status& status);

}  // namespace Cli
}  // namespace sluice
