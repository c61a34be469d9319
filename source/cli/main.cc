// sluicectl: the operator CLI of sluice-cp. See `sluicectl --help` and source/cli/sluicectl.h.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "grpc/support/log.h"
#include "grpcpp/grpcpp.h"
#include "source/cli/sluicectl.h"

namespace {

// sluicectl reports a failed call itself (the status names a failed TLS handshake's reason);
// gRPC's own log lines would only repeat it in another format.
void quietGrpcLog(gpr_log_func_args*) {}

}  // namespace

int main(int argc, char** argv) {
  gpr_set_log_function(quietGrpcLog);
  std::vector<std::string> args(argv + 1, argv + argc);
  auto stubs =
      [](const sluice::Cli::ChannelSpec& channel) -> std::unique_ptr<sluice::Cli::ControlStub> {
    return sluice::service::control::v1::ControlService::NewStub(
        grpc::CreateCustomChannel(channel.address, channel.credentials, channel.args));
  };
  return sluice::Cli::run(args, sluice::Cli::Environment::fromProcess(), stubs,
                          {std::cin, std::cout, std::cerr});
}
