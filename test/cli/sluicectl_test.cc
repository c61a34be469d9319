#include "source/cli/sluicectl.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "sluice/service/control/v1/control.grpc.pb.h"

namespace sluice {
namespace Cli {
namespace {

using sluice::service::control::v1::ApplyRequest;
using sluice::service::control::v1::ApplyResponse;
using sluice::service::control::v1::ControlService;
using sluice::service::control::v1::DiffRequest;
using sluice::service::control::v1::DiffResponse;
using sluice::service::control::v1::GetRequest;
using sluice::service::control::v1::GetResponse;
using sluice::service::control::v1::ResourceChange;
using sluice::service::control::v1::StatusRequest;
using sluice::service::control::v1::StatusResponse;
using sluice::service::control::v1::ValidateRequest;
using sluice::service::control::v1::ValidateResponse;
using testing::HasSubstr;
using testing::StartsWith;

// Answers every call with the canned response (or `status` when not OK) and records requests.
// The test thread only reads the records after its (synchronous) call has returned.
class FakeControl : public ControlService::Service {
 public:
  grpc::Status Apply(grpc::ServerContext*, const ApplyRequest* request,
                     ApplyResponse* response) override {
    apply_request = *request;
    *response = apply_response;
    return answer();
  }
  grpc::Status Validate(grpc::ServerContext*, const ValidateRequest* request,
                        ValidateResponse* response) override {
    validate_request = *request;
    *response = validate_response;
    return answer();
  }
  grpc::Status Diff(grpc::ServerContext*, const DiffRequest* request,
                    DiffResponse* response) override {
    diff_request = *request;
    *response = diff_response;
    return answer();
  }
  grpc::Status Status(grpc::ServerContext* context, const StatusRequest*,
                      StatusResponse* response) override {
    if (hang_status) {
      // Until the client's deadline cancels the call.
      while (!context->IsCancelled()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    *response = status_response;
    return answer();
  }
  grpc::Status Get(grpc::ServerContext*, const GetRequest* request,
                   GetResponse* response) override {
    get_request = *request;
    *response = get_response;
    return answer();
  }

  grpc::Status status = grpc::Status::OK;
  bool hang_status = false;
  int calls = 0;
  ApplyRequest apply_request;
  ApplyResponse apply_response;
  ValidateRequest validate_request;
  ValidateResponse validate_response;
  DiffRequest diff_request;
  DiffResponse diff_response;
  StatusResponse status_response;
  GetRequest get_request;
  GetResponse get_response;

 private:
  grpc::Status answer() {
    ++calls;
    return status;
  }
};

const char kConfig[] = R"(
clusters:
- name: users
  connect_timeout: 250ms
  endpoints: [{address: 10.0.0.11, port: 9001}]
)";

class SluicectlTest : public testing::Test {
 protected:
  SluicectlTest() {
    grpc::ServerBuilder builder;
    builder.RegisterService(&fake_);
    server_ = builder.BuildAndStart();
  }
  ~SluicectlTest() override { server_->Shutdown(); }

  // Runs sluicectl against the fake (any --server is accepted and recorded).
  int run(const std::vector<std::string>& args, const std::string& stdin_text = "") {
    std::istringstream in(stdin_text);
    out_.str("");
    err_.str("");
    StubFactory stubs = [this](const ChannelSpec& channel) {
      address_ = channel.address;
      return ControlService::NewStub(server_->InProcessChannel(grpc::ChannelArguments()));
    };
    return Cli::run(args, nullptr, stubs, {in, out_, err_});
  }

  FakeControl fake_;
  std::unique_ptr<grpc::Server> server_;
  std::ostringstream out_;
  std::ostringstream err_;
  std::string address_;
};

TEST_F(SluicectlTest, ValidateValidFromStdin) {
  fake_.validate_response.set_valid(true);
  EXPECT_EQ(run({"validate", "-f", "-"}, kConfig), 0);
  EXPECT_EQ(out_.str(), "valid\n");
  EXPECT_EQ(err_.str(), "");
  ASSERT_EQ(fake_.validate_request.resources().clusters_size(), 1);
  EXPECT_EQ(fake_.validate_request.resources().clusters(0).connect_timeout().nanos(), 250000000);
  EXPECT_EQ(address_, "127.0.0.1:18000");
}

TEST_F(SluicectlTest, ValidateFromFile) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/edge.json";
  std::ofstream(path) << R"({"clusters": [{"name": "users", "connect_timeout": "1s"}]})";
  fake_.validate_response.set_valid(true);
  EXPECT_EQ(run({"validate", "-f", path}), 0);
  EXPECT_EQ(fake_.validate_request.resources().clusters(0).connect_timeout().seconds(), 1);
}

TEST_F(SluicectlTest, ValidatePrintsEveryError) {
  fake_.validate_response.set_valid(false);
  fake_.validate_response.add_errors("clusters[0].name: duplicate \"users\"");
  fake_.validate_response.add_errors("listeners[0].route_table: unknown \"main\"");
  EXPECT_EQ(run({"validate", "-f", "-"}, kConfig), 1);
  EXPECT_EQ(out_.str(),
            "clusters[0].name: duplicate \"users\"\n"
            "listeners[0].route_table: unknown \"main\"\n");
}

TEST_F(SluicectlTest, ParseErrorsAreLocal) {
  EXPECT_EQ(run({"validate", "-f", "-"}, "clusters: [{name: a, colour: blue}]\n"), 1);
  EXPECT_THAT(err_.str(), StartsWith("sluicectl: stdin: "));
  EXPECT_THAT(err_.str(), HasSubstr("colour"));
  EXPECT_EQ(run({"apply", "-f", "-"}, "clusters: [\n"), 1);
  EXPECT_THAT(err_.str(), HasSubstr("invalid YAML"));
  EXPECT_EQ(run({"apply", "-f", "/nonexistent/edge.yaml"}), 1);
  EXPECT_EQ(err_.str(),
            "sluicectl: cannot read /nonexistent/edge.yaml: No such file or directory\n");
  // An empty document would remove every resource: refused unless written as {}.
  EXPECT_EQ(run({"apply", "-f", "-"}, "\n# nothing\n"), 1);
  EXPECT_THAT(err_.str(), HasSubstr("no config in it"));
  EXPECT_EQ(run({"diff", "-f", "-"}, ""), 2);
  EXPECT_EQ(fake_.calls, 0);
  fake_.apply_response.set_accepted(true);
  EXPECT_EQ(run({"apply", "-f", "-"}, "{}"), 0);
  EXPECT_EQ(fake_.calls, 1);
}

// The importers' own behaviour is tested in test/config_import; here: sluicectl reads Kong and
// OpenAPI files through them, offline for `convert`, and reports their diagnostics by line.
TEST_F(SluicectlTest, ImportedFormatsAreDetectedAndTheirErrorsHaveLines) {
  const std::string broken = "_format_version: \"3.0\"\nservices:\n- name: a\n  url: [\n";
  EXPECT_EQ(run({"validate", "-f", "-"}, broken), 1);
  EXPECT_THAT(err_.str(), StartsWith("sluicectl: stdin: not a valid Kong declarative config"));
  EXPECT_THAT(err_.str(), HasSubstr("stdin:5: error: invalid YAML"));
  EXPECT_EQ(run({"apply", "-f", "-"}, "openapi: 3.0.3\npaths: {\n"), 1);
  EXPECT_THAT(err_.str(), HasSubstr("not a valid OpenAPI spec"));
  EXPECT_EQ(fake_.calls, 0);

  // convert needs no sluice-cp; the format given must be the file's.
  address_.clear();
  EXPECT_EQ(run({"convert", "-f", "-"}, broken), 1);
  EXPECT_THAT(err_.str(), HasSubstr("stdin:5: error: invalid YAML"));
  EXPECT_THAT(err_.str(), HasSubstr("sluicectl: stdin: not converted: 1 error(s) (--lenient"));
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(run({"convert", "openapi", "-f", "-"}, broken), 1);
  EXPECT_EQ(err_.str(), "sluicectl: stdin: a kong file, not openapi\n");
  EXPECT_EQ(run({"convert", "-f", "-"}, kConfig), 1);
  EXPECT_THAT(err_.str(), HasSubstr("not a Kong declarative file (no _format_version)"));
  EXPECT_EQ(fake_.calls, 0);
  EXPECT_EQ(address_, "");
}

TEST_F(SluicectlTest, DiffExitStatus) {
  EXPECT_EQ(run({"diff", "-f", "-", "--group", "edge"}, kConfig), 0);
  EXPECT_EQ(out_.str(), "no changes\n");
  EXPECT_EQ(fake_.diff_request.group(), "edge");
  EXPECT_EQ(fake_.diff_request.resources().clusters(0).name(), "users");

  ResourceChange* change = fake_.diff_response.add_changes();
  change->set_kind(ResourceChange::CHANGED);
  change->set_type("Cluster");
  change->set_name("users");
  change->set_before_json(R"({"name":"users","connect_timeout":"1s"})");
  change->set_after_json(R"({"name":"users","connect_timeout":"0.250s"})");
  EXPECT_EQ(run({"diff", "-f", "-"}, kConfig), 1);
  EXPECT_EQ(fake_.diff_request.group(), "default");
  EXPECT_EQ(out_.str(),
            "~ Cluster users\n"
            "    @@ -1,4 +1,4 @@\n"
            "     {\n"
            "       \"name\": \"users\",\n"
            "    -  \"connect_timeout\": \"1s\"\n"
            "    +  \"connect_timeout\": \"0.250s\"\n"
            "     }\n"
            "1 change: 0 added, 0 removed, 1 changed\n");
  EXPECT_EQ(err_.str(), "");

  fake_.diff_response.add_errors("clusters[0]: bad");
  EXPECT_EQ(run({"diff", "-f", "-"}, kConfig), 2);
  EXPECT_THAT(out_.str(), StartsWith("~ Cluster users\n"));
  EXPECT_EQ(err_.str(),
            "sluicectl: the config is invalid; apply would refuse it:\nclusters[0]: bad\n");

  fake_.status = grpc::Status(grpc::StatusCode::INTERNAL, "boom");
  EXPECT_EQ(run({"diff", "-f", "-"}, kConfig), 2);
}

TEST_F(SluicectlTest, Apply) {
  fake_.apply_response.set_accepted(true);
  fake_.apply_response.set_changed(true);
  fake_.apply_response.set_version("7");
  EXPECT_EQ(run({"apply", "-f", "-", "--group", "edge"}, kConfig), 0);
  EXPECT_EQ(out_.str(), "applied group \"edge\": version 7\n");
  EXPECT_EQ(fake_.apply_request.group(), "edge");
  EXPECT_EQ(fake_.apply_request.source(), "sluicectl apply -f - --group edge");
  EXPECT_EQ(fake_.apply_request.resources().clusters(0).name(), "users");

  fake_.apply_response.set_changed(false);
  EXPECT_EQ(run({"apply", "-f", "-"}, kConfig), 0);
  EXPECT_EQ(out_.str(), "unchanged: group \"default\" is already at version 7\n");
  EXPECT_EQ(fake_.apply_request.group(), "default");
  EXPECT_EQ(fake_.apply_request.source(), "sluicectl apply -f -");
}

TEST_F(SluicectlTest, ApplyRefusedPrintsEveryError) {
  fake_.apply_response.set_accepted(false);
  fake_.apply_response.set_version("6");
  fake_.apply_response.add_errors("a: one");
  fake_.apply_response.add_errors("b: two");
  EXPECT_EQ(run({"apply", "-f", "-", "--group", "edge"}, kConfig), 1);
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(err_.str(),
            "sluicectl: refused, nothing changed (group \"edge\" stays at version 6):\n"
            "a: one\n"
            "b: two\n");
}

TEST_F(SluicectlTest, Status) {
  auto* group = fake_.status_response.add_groups();
  group->set_name("default");
  group->set_version("3");
  auto* node = fake_.status_response.add_nodes();
  node->set_id("edge-1");
  node->set_connected(true);
  EXPECT_EQ(run({"status"}), 0);
  EXPECT_THAT(out_.str(), StartsWith("GROUPS\nNAME     VERSION"));
  EXPECT_THAT(out_.str(), HasSubstr("\nedge-1  -      yes"));
  EXPECT_EQ(run({"status", "-o", "json"}), 0);
  EXPECT_THAT(out_.str(), HasSubstr("\"id\": \"edge-1\""));
  EXPECT_THAT(out_.str(), HasSubstr("\"in_sync\": false"));
}

TEST_F(SluicectlTest, GetYamlAndJson) {
  fake_.get_response.set_version("3");
  fake_.get_response.add_resources_json(R"({"name":"a","connect_timeout":"1s"})");
  fake_.get_response.add_resources_json(R"({"name":"b"})");
  EXPECT_EQ(run({"get", "clusters", "--group", "edge"}), 0);
  EXPECT_EQ(out_.str(), "- name: a\n  connect_timeout: 1s\n- name: b\n");
  EXPECT_EQ(fake_.get_request.type(), "clusters");
  EXPECT_EQ(fake_.get_request.name(), "");
  EXPECT_EQ(fake_.get_request.group(), "edge");
  EXPECT_EQ(run({"get", "clusters", "-o", "json"}), 0);
  EXPECT_EQ(out_.str(),
            "[\n  {\n    \"name\": \"a\",\n    \"connect_timeout\": \"1s\"\n  },\n"
            "  {\n    \"name\": \"b\"\n  }\n]\n");

  fake_.get_response.mutable_resources_json()->RemoveLast();
  EXPECT_EQ(run({"get", "Cluster", "a"}), 0);
  EXPECT_EQ(out_.str(), "name: a\nconnect_timeout: 1s\n");
  EXPECT_EQ(fake_.get_request.name(), "a");
  EXPECT_EQ(fake_.get_request.group(), "default");
  EXPECT_EQ(run({"get", "Cluster", "a", "-o", "json"}), 0);
  EXPECT_EQ(out_.str(), "{\n  \"name\": \"a\",\n  \"connect_timeout\": \"1s\"\n}\n");

  fake_.get_response.clear_resources_json();
  EXPECT_EQ(run({"get", "Cluster", "zz"}), 1);
  EXPECT_EQ(err_.str(), "sluicectl: Cluster \"zz\" not found in group \"default\"\n");
  EXPECT_EQ(run({"get", "Cluster"}), 0);
  EXPECT_EQ(out_.str(), "[]\n");
}

TEST_F(SluicectlTest, ServerErrorsAreOneLine) {
  fake_.status = grpc::Status(grpc::StatusCode::NOT_FOUND, "no group \"x\"\nat all");
  EXPECT_EQ(run({"--server", "cp:1", "get", "Cluster", "--group", "x"}), 1);
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(err_.str(), "sluicectl: sluice-cp at cp:1: NOT_FOUND: no group \"x\"; at all\n");
  EXPECT_EQ(address_, "cp:1");
}

TEST_F(SluicectlTest, Deadline) {
  fake_.hang_status = true;
  EXPECT_EQ(run({"--timeout", "100ms", "status"}), 1);
  EXPECT_EQ(err_.str(),
            "sluicectl: cannot reach sluice-cp at 127.0.0.1:18000: no answer before the deadline "
            "(--timeout)\n");
}

TEST_F(SluicectlTest, UsageAndHelp) {
  EXPECT_EQ(run({"frobnicate"}), 2);
  EXPECT_THAT(err_.str(), StartsWith("sluicectl: unknown command \"frobnicate\"\n\nusage: "));
  EXPECT_EQ(run({"apply", "--force", "-f", "x"}), 2);
  EXPECT_THAT(err_.str(), StartsWith("sluicectl: unknown flag --force\n\nusage: sluicectl apply"));
  EXPECT_EQ(run({"--help"}), 0);
  EXPECT_THAT(out_.str(), StartsWith("usage: sluicectl [--server ADDR]"));
  EXPECT_EQ(run({"diff", "-h"}), 0);
  EXPECT_THAT(out_.str(), StartsWith("usage: sluicectl diff -f FILE"));
  EXPECT_EQ(fake_.calls, 0);
}

// A real channel to a loopback port nobody listens on.
TEST(SluicectlUnreachableTest, OneLineAndExit1) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  // Bound but not listening: the port stays ours and connecting to it is refused.
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string server = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  std::istringstream in;
  std::ostringstream out, err;
  StubFactory stubs = [](const ChannelSpec& channel) {
    return ControlService::NewStub(
        grpc::CreateCustomChannel(channel.address, channel.credentials, channel.args));
  };
  EXPECT_EQ(Cli::run({"status"}, server.c_str(), stubs, {in, out, err}), 1);
  close(fd);
  EXPECT_THAT(err.str(), StartsWith("sluicectl: cannot reach sluice-cp at " + server + ": "));
  EXPECT_EQ(err.str().find('\n'), err.str().size() - 1);
  EXPECT_EQ(out.str(), "");
}

TEST(RpcErrorMessageTest, ByCode) {
  EXPECT_EQ(rpcErrorMessage("a:1", grpc::Status(grpc::StatusCode::UNAVAILABLE, "refused")),
            "cannot reach sluice-cp at a:1: refused");
  EXPECT_EQ(rpcErrorMessage("a:1", grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "")),
            "a:1 does not serve sluice.service.control.v1.ControlService (is it sluice-cp?): ");
  EXPECT_EQ(rpcErrorMessage("a:1", grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad type")),
            "sluice-cp at a:1: INVALID_ARGUMENT: bad type");
}

}  // namespace
}  // namespace Cli
}  // namespace sluice
