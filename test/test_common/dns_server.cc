#include "test/test_common/dns_server.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace sluice {
namespace Testing {
namespace {

// The script: from the runfiles under `bazel test`, else from the source tree.
std::string scriptPath() {
  const char* srcdir = getenv("TEST_SRCDIR");
  if (srcdir != nullptr) {
    std::string p = absl::StrCat(srcdir, "/sluice/test/integration/dns_server.py");
    if (access(p.c_str(), R_OK) == 0) return p;
  }
  return "test/integration/dns_server.py";
}

std::string jsonList(const std::vector<std::string>& v) {
  std::vector<std::string> quoted;
  for (const std::string& s : v) quoted.push_back(absl::StrCat("\"", s, "\""));
  return absl::StrCat("[", absl::StrJoin(quoted, ","), "]");
}

}  // namespace

DnsServer::DnsServer() {
  int in[2];
  int out[2];
  if (pipe(in) != 0 || pipe(out) != 0) return;
  const std::string script = scriptPath();
  pid_ = fork();
  if (pid_ == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[1]);
    close(out[0]);
    execl("/usr/bin/python3", "python3", script.c_str(), nullptr);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  to_ = fdopen(in[1], "w");
  from_ = fdopen(out[0], "r");
  char line[128];
  if (fgets(line, sizeof(line), from_) == nullptr) return;
  absl::string_view l = absl::StripAsciiWhitespace(line);
  uint32_t port = 0;
  if (absl::ConsumePrefix(&l, "PORT ") && absl::SimpleAtoi(l, &port)) port_ = port;
}

DnsServer::~DnsServer() {
  if (to_ != nullptr) fclose(to_);  // the script exits when its stdin closes
  if (from_ != nullptr) fclose(from_);
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

Network::Address DnsServer::address() const {
  Network::Address a;
  Network::Address::parse("127.0.0.1", port_, a);
  return a;
}

Network::DnsResolverOptions DnsServer::resolverOptions() const {
  Network::DnsResolverOptions options;
  options.servers.push_back(address());
  options.timeout = std::chrono::milliseconds(200);
  options.tries = 1;
  return options;
}

std::string DnsServer::command(const std::string& json) {
  if (to_ == nullptr || from_ == nullptr) return "";
  fputs((json + "\n").c_str(), to_);
  fflush(to_);
  char line[256];
  if (fgets(line, sizeof(line), from_) == nullptr) return "";
  return std::string(absl::StripAsciiWhitespace(line));
}

void DnsServer::set(const std::string& name, const std::vector<std::string>& a,
                    const std::vector<std::string>& aaaa, uint32_t ttl) {
  command(absl::StrCat(R"({"op": "set", "name": ")", name, R"(", "a": )", jsonList(a),
                       R"(, "aaaa": )", jsonList(aaaa), R"(, "ttl": )", ttl, "}"));
}

void DnsServer::mode(const std::string& name, const std::string& mode) {
  command(absl::StrCat(R"({"op": "mode", "name": ")", name, R"(", "mode": ")", mode, "\"}"));
}

int DnsServer::queries(const std::string& name, const std::string& type) {
  int n = -1;
  absl::SimpleAtoi(
      command(absl::StrCat(R"({"op": "queries", "name": ")", name, R"(", "type": ")", type, "\"}")),
      &n);
  return n;
}

}  // namespace Testing
}  // namespace sluice
