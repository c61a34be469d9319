// sluice: the data plane.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "absl/strings/numbers.h"
#include "source/common/config/utility.h"
#include "source/server/config/snapshot.h"
#include "source/server/server.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace {

void usage() {
  std::fprintf(stderr,
               "usage: sluice [-c FILE] [--validate] [--concurrency N]\n"
               "              [--admin-address-path FILE] [--log-level LEVEL]\n"
               "  -c, --config FILE          bootstrap (YAML or JSON); default: embedded\n"
               "  --validate                 check the config and exit (0 = valid)\n"
               "  --concurrency N            worker threads (default: bootstrap, else cores)\n"
               "  --admin-address-path FILE  write the admin address here once listening\n"
               "  --log-level LEVEL          trace|debug|info|warn|error (default info)\n");
}

}  // namespace

int main(int argc, char** argv) {
  sluice::Server::Options options;
  bool validate = false;
  std::string log_level = "info";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "sluice: %s needs a value\n", name);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "-c" || a == "--config") {
      options.config_path = value("-c");
    } else if (a == "--validate") {
      validate = true;
    } else if (a == "--concurrency") {
      std::string v = value("--concurrency");
      if (!absl::SimpleAtoi(v, &options.concurrency) || options.concurrency > 256) {
        std::fprintf(stderr, "sluice: --concurrency must be 0-256\n");
        return 2;
      }
    } else if (a == "--admin-address-path") {
      options.admin_address_path = value("--admin-address-path");
    } else if (a == "--log-level") {
      log_level = value("--log-level");
    } else if (a == "-h" || a == "--help") {
      usage();
      return 0;
    } else {
      std::fprintf(stderr, "sluice: unknown argument %s\n", a.c_str());
      usage();
      return 2;
    }
  }
  // Logs go to stderr; stdout is left to access logs configured with path "-".
  spdlog::set_default_logger(spdlog::stderr_logger_mt("sluice"));
  const auto level = spdlog::level::from_str(log_level);
  if (level == spdlog::level::off && log_level != "off") {
    std::fprintf(stderr, "sluice: unknown --log-level %s (trace|debug|info|warn|error|off)\n",
                 log_level.c_str());
    return 2;
  }
  spdlog::set_level(level);
  spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");

  sluice::config::v1::Bootstrap bootstrap;
  absl::Status s =
      options.config_path.empty()
          ? sluice::Config::loadFromYaml(sluice::Server::defaultBootstrapYaml(), bootstrap)
          : sluice::Config::loadFromFile(options.config_path, bootstrap);
  if (!s.ok()) {
    std::fprintf(stderr, "sluice: %s: %s\n",
                 options.config_path.empty() ? "<default>" : options.config_path.c_str(),
                 std::string(s.message()).c_str());
    return 1;
  }
  if (validate) {
    sluice::Server::BuildOptions build_options;
    build_options.static_may_reference_dynamic = bootstrap.has_control_plane();
    auto snap = sluice::Server::buildSnapshot(bootstrap, nullptr, build_options);
    if (!snap.ok()) {
      std::fprintf(stderr, "sluice: invalid configuration:\n%s\n",
                   std::string(snap.status().message()).c_str());
      return 1;
    }
    std::printf("OK\n");
    return 0;
  }
  sluice::Server::Server server(options, std::move(bootstrap));
  return server.run();
}
