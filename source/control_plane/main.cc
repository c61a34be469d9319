// sluice-cp: the control plane. Serves each node group's declared config to data planes over
// ADS (state of the world and delta), to proxyless gRPC clients over Envoy's xDS v3 ADS, and
// the operator API (ControlService), all on one port.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "grpc/support/log.h"
#include "grpcpp/grpcpp.h"
#include "source/common/config/grpc_tls.h"
#include "source/config_import/import.h"
#include "source/control_plane/ads_service.h"
#include "source/control_plane/config_watcher.h"
#include "source/control_plane/control_service.h"
#include "source/control_plane/mesh_ads_service.h"
#include "source/control_plane/mesh_resources.h"
#include "source/control_plane/resources.h"
#include "source/control_plane/snapshot_cache.h"
#include "source/control_plane/state_store.h"
#include "source/server/config/snapshot.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace {

// Big enough for a group with 10,000 routes in one response.
constexpr int kMaxMessageBytes = 64 << 20;

void usage() {
  std::fprintf(stderr,
               "usage: sluice-cp --state-dir DIR [--config-dir DIR] [--listen HOST:PORT]\n"
               "                 [--state-key-file FILE] [--address-path FILE]\n"
               "                 [--tls-cert FILE --tls-key FILE [--client-ca FILE]]\n"
               "                 [--poll-interval 1s] [--log-level info]\n"
               "                 [--import-lenient] [--oauth2-jwks URL] [--jwks-uri URL]\n"
               "  --listen HOST:PORT    ADS and ControlService (default 127.0.0.1:18000);\n"
               "                        port 0 picks a free port\n"
               "  --config-dir DIR      declared config per node group: <group>.yaml|.yml|.json,\n"
               "                        Kong <group>.kong.yml|.kong.yaml|.kong.json or OpenAPI\n"
               "                        <group>.openapi.yaml|.openapi.yml|.openapi.json\n"
               "                        (converted, docs/imports.md); picked up without restart\n"
               "  --import-lenient      Kong/OpenAPI files: unknown fields, unsupported plugins\n"
               "                        and dangling references are warnings (default errors)\n"
               "  --oauth2-jwks URL     Kong oauth2 plugins: the authorization server's JWKS\n"
               "  --jwks-uri URL        OpenAPI: the JWKS of every JWT authorizer (instead of\n"
               "                        the one derived from the spec)\n"
               "  --state-dir DIR       applied config and versions, kept across restarts\n"
               "  --state-key-file FILE key that encrypts secrets in the state dir: 32 bytes\n"
               "                        or 64 hex digits (default DIR/state.key, created on\n"
               "                        first start; keep it elsewhere, see docs/operations.md)\n"
               "  --address-path FILE   write the bound HOST:PORT here once listening\n"
               "  --tls-cert FILE       serve ADS and ControlService over TLS with this PEM\n"
               "                        certificate chain (leaf first) ...\n"
               "  --tls-key FILE        ... and its PEM private key\n"
               "  --client-ca FILE      require a client certificate (data planes, sluicectl)\n"
               "                        that chains to a CA of this PEM bundle (mTLS)\n"
               "  --poll-interval D     how often the config dir is checked (default 1s)\n"
               "  --log-level LEVEL     trace|debug|info|warn|error|off (default info)\n"
               "SIGTERM/SIGINT stop it; SIGHUP checks the config dir at once.\n");
}

// gRPC's own log lines (a refused TLS handshake says why only there) in sluice-cp's log format.
void grpcLog(gpr_log_func_args* args) {
  const auto level = args->severity == GPR_LOG_SEVERITY_ERROR  ? spdlog::level::warn
                     : args->severity == GPR_LOG_SEVERITY_INFO ? spdlog::level::info
                                                               : spdlog::level::debug;
  spdlog::log(level, "grpc: {}", args->message);
}

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "sluice-cp: %s\n", message.c_str());
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:18000";
  std::string config_dir;
  std::string state_dir;
  std::string state_key_file;
  std::string address_path;
  sluice::Config::GrpcTlsFiles tls_files;
  tls_files.ca.name = "--client-ca";
  tls_files.cert_chain.name = "--tls-cert";
  tls_files.private_key.name = "--tls-key";
  absl::Duration poll_interval = absl::Seconds(1);
  std::string log_level = "info";
  sluice::ConfigImport::Options import_options;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        fail(a + " needs a value");
      }
      return argv[++i];
    };
    if (a == "--listen") {
      listen = value();
    } else if (a == "--config-dir") {
      config_dir = value();
    } else if (a == "--state-dir") {
      state_dir = value();
    } else if (a == "--state-key-file") {
      state_key_file = value();
    } else if (a == "--address-path") {
      address_path = value();
    } else if (a == "--tls-cert") {
      tls_files.cert_chain.path = value();
    } else if (a == "--tls-key") {
      tls_files.private_key.path = value();
    } else if (a == "--client-ca") {
      tls_files.ca.path = value();
    } else if (a == "--poll-interval") {
      const std::string v = value();
      if (!absl::ParseDuration(v, &poll_interval) || poll_interval < absl::Milliseconds(10)) {
        fail("--poll-interval must be a duration of at least 10ms, e.g. 1s or 250ms");
      }
    } else if (a == "--import-lenient") {
      import_options.lenient = true;
    } else if (a == "--oauth2-jwks") {
      import_options.oauth2_jwks = value();
    } else if (a == "--jwks-uri") {
      import_options.jwks_uri = value();
    } else if (a == "--log-level") {
      log_level = value();
    } else if (a == "-h" || a == "--help") {
      usage();
      return 0;
    } else {
      usage();
      fail("unknown argument " + a);
    }
  }
  if (state_dir.empty()) {
    usage();
    fail("--state-dir is required");
  }
  // Absolute, so that "file <path>" sources and logs name files wherever they are read.
  auto absolute = [](const std::string& dir) {
    std::string out = std::filesystem::absolute(dir).lexically_normal().string();
    while (out.size() > 1 && out.back() == '/') {
      out.pop_back();
    }
    return out;
  };
  if (!config_dir.empty()) {
    if (!std::filesystem::is_directory(config_dir)) {
      fail("--config-dir " + config_dir + " is not a directory");
    }
    config_dir = absolute(config_dir);
  }
  state_dir = absolute(state_dir);
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    fail("--listen must be HOST:PORT");
  }
  // Read once, here: a renewed certificate takes a restart.
  std::optional<sluice::Config::GrpcTlsPem> tls;
  if (!tls_files.ca.path.empty() && tls_files.cert_chain.path.empty()) {
    fail("--client-ca needs --tls-cert and --tls-key (client certificates are a TLS feature)");
  }
  if (!tls_files.cert_chain.path.empty() || !tls_files.private_key.path.empty()) {
    auto loaded = sluice::Config::loadGrpcTls(tls_files);
    if (!loaded.ok()) {
      fail(std::string(loaded.status().message()));
    }
    tls = std::move(*loaded);
  }

  spdlog::set_default_logger(spdlog::stderr_logger_mt("sluice-cp"));
  const auto level = spdlog::level::from_str(log_level);
  if (level == spdlog::level::off && log_level != "off") {
    fail("unknown --log-level " + log_level + " (trace|debug|info|warn|error|off)");
  }
  spdlog::set_level(level);
  spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
  gpr_set_log_function(grpcLog);

  // Signals are taken by sigtimedwait() in this thread; blocked before gRPC starts its threads
  // so that they inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // The resource types, read from StaticResources' descriptor: once, at start.
  sluice::ControlPlane::typeCount();

  sluice::ControlPlane::StateStore store(state_dir);
  if (auto s = store.init(); !s.ok()) {
    spdlog::critical("{}", std::string(s.message()));
    return 1;
  }
  // The key of the secrets in the state dir (docs/decisions.md).
  std::string key_warning;
  bool key_created = false;
  const bool default_key = state_key_file.empty();
  const std::string key_path = default_key ? state_dir + "/state.key" : state_key_file;
  auto cipher =
      default_key
          ? sluice::ControlPlane::StateCipher::loadOrCreate(key_path, &key_created, &key_warning)
          : sluice::ControlPlane::StateCipher::fromKeyFile(key_path, &key_warning);
  if (!cipher.ok()) {
    spdlog::critical("--state-key-file: {}", std::string(cipher.status().message()));
    return 1;
  }
  if (!key_warning.empty()) {
    spdlog::warn("{}", key_warning);
  }
  if (key_created) {
    spdlog::info(
        "created state key {} (secrets in the state dir are encrypted with it; to keep the "
        "key apart from the state, move it and pass --state-key-file)",
        key_path);
  }
  store.setCipher(&*cipher);
  sluice::ControlPlane::SnapshotCache cache(&store, &sluice::Server::validateResources);
  if (auto s = cache.loadState(); !s.ok()) {
    spdlog::critical("state dir {}: {}", state_dir, std::string(s.message()));
    return 1;
  }
  // Config files that changed since their group's state was written (a bad one is logged and
  // the persisted config keeps being served).
  std::unique_ptr<sluice::ControlPlane::ConfigDirWatcher> watcher;
  auto pollConfigDir = [&] {
    auto changes = watcher->poll();
    for (const auto& w : changes.warnings) {
      spdlog::warn("{}", w);
    }
    for (const auto& path : changes.removed) {
      spdlog::warn("config file {} removed; its group keeps its published config", path);
    }
    for (const auto& file : changes.changed) {
      cache.applyConfigFile(file, import_options);
    }
  };
  if (!config_dir.empty()) {
    watcher = std::make_unique<sluice::ControlPlane::ConfigDirWatcher>(config_dir);
    pollConfigDir();
  }

  sluice::ControlPlane::NodeRegistry registry;
  sluice::ControlPlane::MeshCache mesh_cache;
  sluice::ControlPlane::AdsService ads(cache, registry);
  // Envoy's xDS v3 for proxyless gRPC clients, on the same port (docs/mesh.md).
  sluice::ControlPlane::MeshAdsService mesh_ads(cache, mesh_cache, registry);
  sluice::ControlPlane::ControlServiceImpl control(cache, registry, &mesh_cache);
  cache.setOnPublish([&ads, &mesh_ads](const std::string&) {
    ads.pushAll();
    mesh_ads.pushAll();
  });

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(
      listen, tls ? sluice::Config::grpcServerCredentials(*tls) : grpc::InsecureServerCredentials(),
      &port);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  // Notice data planes that vanished without closing their connection.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.RegisterService(&ads);
  builder.RegisterService(&mesh_ads);
  builder.RegisterService(&control);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    spdlog::critical("cannot listen on {}", listen);
    return 1;
  }
  const std::string bound = absl::StrCat(listen.substr(0, colon), ":", port);
  spdlog::info("sluice-cp listening on {} ({}; state {}, config dir {})", bound,
               !tls              ? "cleartext"
               : tls->ca.empty() ? "TLS"
                                 : "TLS, client certificates required",
               state_dir, config_dir.empty() ? "none" : config_dir);
  if (!address_path.empty()) {
    if (auto s = sluice::ControlPlane::writeFileAtomically(address_path, bound + "\n"); !s.ok()) {
      spdlog::critical("{}", std::string(s.message()));
      server->Shutdown(std::chrono::system_clock::now());
      return 1;
    }
  }

  const timespec interval = absl::ToTimespec(poll_interval);
  for (;;) {
    const int sig = sigtimedwait(&signals, nullptr, &interval);
    if (sig == SIGTERM || sig == SIGINT) {
      spdlog::info("signal {}: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      break;
    }
    if (watcher != nullptr) {
      pollConfigDir();
    }
  }
  // Open streams are cancelled at once; data planes keep their config and reconnect.
  server->Shutdown(std::chrono::system_clock::now());
  server->Wait();
  spdlog::info("stopped");
  return 0;
}
