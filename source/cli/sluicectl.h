#pragma once

#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "sluice/service/control/v1/control.grpc.pb.h"

namespace sluice {
namespace Cli {

using ControlStub = sluice::service::control::v1::ControlService::StubInterface;
// Makes the stub for sluice-cp's address (main: an insecure channel; tests: in-process).
using StubFactory = std::function<std::unique_ptr<ControlStub>(const std::string& address)>;

struct Io {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
};

// The whole of sluicectl: parses `args` (argv without argv[0]), runs the command and returns
// the exit status (0 success, 1 failure, 2 usage error; diff: 0 no changes, 1 changes,
// 2 error). Never throws.
int run(const std::vector<std::string>& args, const char* env_server, const StubFactory& stubs,
        Io io);

// The one-line message for a failed call to sluice-cp at `address`.
std::string rpcErrorMessage(const std::string& address, const grpc::Status& status);

}  // namespace Cli
}  // namespace sluice
