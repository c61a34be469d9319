// sluicectl: the operator CLI of sluice-cp. See `sluicectl --help` and source/cli/sluicectl.h.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "source/cli/sluicectl.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto stubs = [](const std::string& address) -> std::unique_ptr<sluice::Cli::ControlStub> {
    return sluice::service::control::v1::ControlService::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  };
  return sluice::Cli::run(args, std::getenv("SLUICECTL_SERVER"), stubs,
                          {std::cin, std::cout, std::cerr});
}
