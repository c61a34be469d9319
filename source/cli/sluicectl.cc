#include "source/cli/sluicectl.h"

#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "source/cli/format.h"
#include "source/cli/options.h"
#include "source/common/config/grpc_tls.h"
#include "source/common/config/utility.h"
#include "source/config_import/import.h"

namespace sluice {
namespace Cli {

namespace {

using sluice::config::v1::StaticResources;
using sluice::service::control::v1::ApplyRequest;
using sluice::service::control::v1::ApplyResponse;
using sluice::service::control::v1::DiffRequest;
using sluice::service::control::v1::DiffResponse;
using sluice::service::control::v1::GetRequest;
using sluice::service::control::v1::GetResponse;
using sluice::service::control::v1::StatusRequest;
using sluice::service::control::v1::StatusResponse;
using sluice::service::control::v1::ValidateRequest;
using sluice::service::control::v1::ValidateResponse;

constexpr int kFailure = 1;
constexpr int kUsage = 2;
// diff: 0 no changes, 1 changes, 2 error (as `diff` and `kubectl diff`).
constexpr int kDiffChanges = 1;
constexpr int kDiffError = 2;

// The text of `file` ("-": stdin), bounded like a config file.
absl::StatusOr<std::string> readDeclared(const std::string& file, std::istream& in) {
  if (file != "-") {
    // Refuses directories, devices and files over the size cap without reading them.
    return Config::readConfigFile(file);
  }
  std::string body;
  // Bounded like a file: `sluicectl apply -f - < /dev/zero` is an error, not an abort.
  char buf[64 * 1024];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    if (body.size() + in.gcount() > Config::kMaxConfigBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "stdin: more than the ", Config::kMaxConfigBytes >> 20, " MiB a config may have"));
    }
    body.append(buf, in.gcount());
  }
  return body;
}

ConfigImport::Options importOptions(const Options& options) {
  ConfigImport::Options out;
  out.lenient = options.lenient;
  out.oauth2_jwks = options.oauth2_jwks;
  out.listen = options.listen;
  out.jwks_uri = options.jwks_uri;
  return out;
}

// The declared config in `file` ("-": stdin): Sluice's own, or a Kong / OpenAPI file converted
// (its warnings appended to `warnings`). An empty document is refused (ConfigImport::loadDeclared).
absl::StatusOr<StaticResources> loadDeclared(const Options& options, std::istream& in,
                                             std::string& warnings) {
  const std::string shown = options.file == "-" ? "stdin" : options.file;
  auto body = readDeclared(options.file, in);
  if (!body.ok()) {
    return body.status();
  }
  return ConfigImport::loadDeclared(*body, shown, importOptions(options), &warnings);
}

// `convert`: offline, no sluice-cp.
int convert(const Options& options, Io io) {
  const std::string shown = options.file == "-" ? "stdin" : options.file;
  auto body = readDeclared(options.file, io.in);
  if (!body.ok()) {
    io.err << "sluicectl: " << body.status().message() << "\n";
    return kFailure;
  }
  const ConfigImport::Format detected = ConfigImport::detectFormat(*body);
  ConfigImport::Format format = detected;
  if (options.format == "kong") {
    format = ConfigImport::Format::Kong;
  } else if (options.format == "openapi") {
    format = ConfigImport::Format::OpenApi;
  }
  if (detected != format || format == ConfigImport::Format::Sluice) {
    io.err << "sluicectl: " << shown << ": "
           << (detected == ConfigImport::Format::Sluice
                   ? "not a Kong declarative file (no _format_version) or an OpenAPI spec (no "
                     "openapi)"
                   : absl::StrCat("a ", ConfigImport::formatName(detected), " file, not ",
                                  ConfigImport::formatName(format)))
           << "\n";
    return kFailure;
  }
  ConfigImport::Result result = ConfigImport::convert(*body, format, importOptions(options));
  io.err << ConfigImport::renderDiagnostics(result.diagnostics, shown);
  if (!result.ok()) {
    io.err << "sluicectl: " << shown << ": not converted: " << result.diagnostics.errorCount()
           << " error(s)"
           << (options.lenient ? ""
                               : " (--lenient skips unknown fields, unsupported plugins "
                                 "and dangling references with a warning)")
           << "\n";
    return kFailure;
  }
  auto yaml = jsonToYaml({Config::toJson(result.resources)}, /*single=*/true);
  if (!yaml.ok()) {
    io.err << "sluicectl: " << yaml.status().message() << "\n";
    return kFailure;
  }
  const std::string text =
      absl::StrCat("# Converted by sluicectl convert ", ConfigImport::formatName(format), " from ",
                   shown, ".\n", *yaml);
  if (options.output.empty()) {
    io.out << text;
    return 0;
  }
  std::ofstream out(options.output, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    io.err << "sluicectl: cannot write " << options.output << ": " << std::strerror(errno) << "\n";
    return kFailure;
  }
  return 0;
}

class Runner {
 public:
  Runner(const Options& options, ControlStub& stub, Io io)
      : options_(options), stub_(stub), io_(io) {}

  int run() {
    switch (options_.command) {
      case Command::Validate:
        return validate();
      case Command::Diff:
        return diff();
      case Command::Apply:
        return apply();
      case Command::Status:
        return status();
      case Command::Get:
        return get();
      case Command::Convert:
      case Command::None:
        break;
    }
    return kUsage;
  }

 private:
  int validate() {
    ValidateRequest request;
    if (!load(*request.mutable_resources())) {
      return kFailure;
    }
    ValidateResponse response;
    if (!call(&ControlStub::Validate, request, response)) {
      return kFailure;
    }
    if (response.valid()) {
      io_.out << "valid\n";
      return 0;
    }
    printErrors(response.errors(), io_.out);
    return kFailure;
  }

  int diff() {
    DiffRequest request;
    request.set_group(options_.group);
    if (!load(*request.mutable_resources())) {
      return kDiffError;
    }
    DiffResponse response;
    if (!call(&ControlStub::Diff, request, response)) {
      return kDiffError;
    }
    io_.out << renderChanges(response);
    if (response.errors_size() > 0) {
      io_.err << "sluicectl: the config is invalid; apply would refuse it:\n";
      printErrors(response.errors(), io_.err);
      return kDiffError;
    }
    return response.changes_size() > 0 ? kDiffChanges : 0;
  }

  int apply() {
    ApplyRequest request;
    request.set_group(options_.group);
    request.set_source(absl::StrCat("sluicectl apply -f ", options_.file,
                                    options_.group == "default" ? "" : " --group ",
                                    options_.group == "default" ? "" : options_.group));
    if (!load(*request.mutable_resources())) {
      return kFailure;
    }
    ApplyResponse response;
    if (!call(&ControlStub::Apply, request, response)) {
      return kFailure;
    }
    const std::string group = absl::StrCat("group \"", options_.group, "\"");
    if (!response.accepted()) {
      io_.err << "sluicectl: refused, nothing changed (" << group << " stays at version "
              << orUnset(response.version()) << "):\n";
      printErrors(response.errors(), io_.err);
      return kFailure;
    }
    if (response.changed()) {
      io_.out << "applied " << group << ": version " << response.version() << "\n";
    } else {
      io_.out << "unchanged: " << group << " is already at version " << response.version() << "\n";
    }
    return 0;
  }

  int status() {
    StatusResponse response;
    if (!call(&ControlStub::Status, StatusRequest(), response)) {
      return kFailure;
    }
    io_.out << (options_.output == "json" ? statusJson(response) : renderStatus(response));
    return 0;
  }

  int get() {
    GetRequest request;
    request.set_group(options_.group);
    request.set_type(options_.type);
    request.set_name(options_.name);
    GetResponse response;
    if (!call(&ControlStub::Get, request, response)) {
      return kFailure;
    }
    const std::vector<std::string> jsons(response.resources_json().begin(),
                                         response.resources_json().end());
    const bool single = !options_.name.empty();
    if (single && jsons.size() != 1) {
      io_.err << "sluicectl: " << options_.type << " \"" << options_.name
              << "\" not found in group \"" << options_.group << "\"\n";
      return kFailure;
    }
    if (options_.output == "json") {
      io_.out << jsonArray(jsons, single);
      return 0;
    }
    auto yaml = jsonToYaml(jsons, single);
    if (!yaml.ok()) {
      io_.err << "sluicectl: " << yaml.status().message() << "\n";
      return kFailure;
    }
    io_.out << *yaml;
    return 0;
  }

  bool load(StaticResources& resources) {
    std::string warnings;
    auto loaded = loadDeclared(options_, io_.in, warnings);
    io_.err << warnings;
    if (!loaded.ok()) {
      io_.err << "sluicectl: " << loaded.status().message() << "\n";
      return false;
    }
    resources = std::move(*loaded);
    return true;
  }

  // One unary call with the --timeout deadline; reports a failure on stderr.
  template <class Request, class Response>
  bool call(grpc::Status (ControlStub::*method)(grpc::ClientContext*, const Request&, Response*),
            const Request& request, Response& response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         absl::ToChronoMilliseconds(options_.timeout));
    grpc::Status status = (stub_.*method)(&context, request, &response);
    if (!status.ok()) {
      io_.err << "sluicectl: " << rpcErrorMessage(options_.server, status) << tlsHint(status)
              << "\n";
      return false;
    }
    return true;
  }

  // A TLS server closes a cleartext connection, and a TLS connection whose client certificate
  // it refuses, without a word: say what it most likely means.
  std::string tlsHint(const grpc::Status& status) const {
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE ||
        !absl::StrContains(status.error_message(), "Socket closed")) {
      return "";
    }
    if (!options_.tls) {
      return " (if sluice-cp serves TLS, pass --tls-ca, and --tls-cert/--tls-key if it wants "
             "a client certificate)";
    }
    return options_.tls_cert.empty()
               ? " (sluice-cp may want a client certificate: --tls-cert and --tls-key)"
               : " (sluice-cp may have refused the client certificate: not signed by its "
                 "--client-ca?)";
  }

  template <class Errors>
  static void printErrors(const Errors& errors, std::ostream& out) {
    for (const std::string& error : errors) {
      out << error << "\n";
    }
  }

  static std::string orUnset(const std::string& version) {
    return version.empty() ? "(none)" : version;
  }

  const Options& options_;
  ControlStub& stub_;
  Io io_;
};

}  // namespace

std::string rpcErrorMessage(const std::string& address, const grpc::Status& status) {
  const std::string message =
      absl::StrReplaceAll(status.error_message(), {{"\r", ""}, {"\n", "; "}});
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      return absl::StrCat("cannot reach sluice-cp at ", address, ": ", message);
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return absl::StrCat("cannot reach sluice-cp at ", address,
                          ": no answer before the deadline (--timeout)");
    case grpc::StatusCode::UNIMPLEMENTED:
      return absl::StrCat(address, " does not serve sluice.service.control.v1.ControlService",
                          " (is it sluice-cp?): ", message);
    default:
      return absl::StrCat(
          "sluice-cp at ", address, ": ",
          absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())), ": ",
          message);
  }
}

int run(const std::vector<std::string>& args, const Environment& env, const StubFactory& stubs,
        Io io) {
  try {
    const Options options = parseArgs(args, env);
    if (!options.error.empty()) {
      io.err << "sluicectl: " << options.error << "\n\n" << usage(options.command);
      return kUsage;
    }
    if (options.help) {
      io.out << usage(options.command);
      return 0;
    }
    if (options.command == Command::Convert) {
      return convert(options, io);
    }
    ChannelSpec channel;
    channel.address = options.server;
    channel.credentials = grpc::InsecureChannelCredentials();
    if (options.tls) {
      Config::GrpcTlsFiles files;
      files.ca = {options.tls_ca, "--tls-ca"};
      files.cert_chain = {options.tls_cert, "--tls-cert"};
      files.private_key = {options.tls_key, "--tls-key"};
      auto pem = Config::loadGrpcTls(files);
      if (!pem.ok()) {
        io.err << "sluicectl: " << pem.status().message() << "\n";
        return kFailure;
      }
      channel.credentials = Config::grpcChannelCredentials(*pem);
      if (!options.tls_server_name.empty()) {
        channel.args.SetSslTargetNameOverride(options.tls_server_name);
      }
    }
    std::unique_ptr<ControlStub> stub = stubs(channel);
    return Runner(options, *stub, io).run();
  } catch (const std::exception& e) {
    // Nothing here is meant to throw (libraries report with Status); this is the last guard.
    io.err << "sluicectl: internal error: " << e.what() << "\n";
    return kFailure;
  }
}

}  // namespace Cli
}  // namespace sluice
