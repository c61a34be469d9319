// ADS and ControlService over real gRPC streams, in process, on a loopback port.
#include "source/control_plane/ads_service.h"

#include <thread>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "source/control_plane/control_service.h"
#include "test/control_plane/test_utility.h"

namespace sluice {
namespace ControlPlane {
namespace {

namespace control = sluice::service::control::v1;
namespace discovery = sluice::service::discovery::v1;
using testing::ElementsAre;
using TestUtil::typeNamed;

constexpr char kConfig[] = R"(
clusters:
- {name: users, endpoints: [{address: 10.0.0.1, port: 80}]}
route_tables: [{name: main}]
listeners:
- {name: public, address: {host: 127.0.0.1, port: 8080}, route_table: main}
)";

class AdsServiceTest : public testing::Test {
 protected:
  AdsServiceTest() {
    cache_.setOnPublish([this](const std::string&) { ads_.pushAll(); });
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&ads_);
    builder.RegisterService(&control_);
    server_ = builder.BuildAndStart();
    channel_ =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials());
    ads_stub_ = discovery::AggregatedDiscoveryService::NewStub(channel_);
    control_stub_ = control::ControlService::NewStub(channel_);
  }
  ~AdsServiceTest() override { server_->Shutdown(std::chrono::system_clock::now()); }

  control::ApplyResponse apply(const std::string& group,
                               const sluice::config::v1::StaticResources& r) {
    grpc::ClientContext ctx;
    control::ApplyRequest req;
    req.set_group(group);
    *req.mutable_resources() = r;
    control::ApplyResponse resp;
    EXPECT_TRUE(control_stub_->Apply(&ctx, req, &resp).ok());
    return resp;
  }
  control::StatusResponse status() {
    grpc::ClientContext ctx;
    control::StatusResponse resp;
    EXPECT_TRUE(control_stub_->Status(&ctx, control::StatusRequest(), &resp).ok());
    return resp;
  }
  // Polls status until `pred` holds (5 s at most).
  template <class Pred>
  bool waitFor(Pred pred) {
    const auto deadline = absl::Now() + absl::Seconds(5);
    while (absl::Now() < deadline) {
      if (pred(status())) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }

  SnapshotCache cache_{nullptr, nullptr};
  NodeRegistry registry_;
  AdsService ads_{cache_, registry_};
  ControlServiceImpl control_{cache_, registry_};
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<discovery::AggregatedDiscoveryService::Stub> ads_stub_;
  std::unique_ptr<control::ControlService::Stub> control_stub_;
};

discovery::DiscoveryRequest request(ResourceType t, const std::string& version = "",
                                    const std::string& nonce = "") {
  discovery::DiscoveryRequest r;
  r.mutable_node()->set_id("n1");
  r.mutable_node()->set_cluster("edge");
  r.mutable_node()->set_user_agent("sluice/test");
  r.set_type_url(typeUrl(t));
  r.set_version_info(version);
  r.set_response_nonce(nonce);
  return r;
}

TEST_F(AdsServiceTest, SotwStream) {
  apply("default", TestUtil::resources(kConfig));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto stream = ads_stub_->StreamAggregatedResources(&ctx);
  for (ResourceType t : allTypes()) {
    ASSERT_TRUE(stream->Write(request(t)));
  }
  std::vector<std::string> order;
  for (int i = 0; i < typeCount(); ++i) {
    discovery::DiscoveryResponse resp;
    ASSERT_TRUE(stream->Read(&resp));
    order.push_back(shortName(*typeFromUrl(resp.type_url())));
    EXPECT_EQ(resp.version_info(), "1");
    ASSERT_TRUE(stream->Write(request(*typeFromUrl(resp.type_url()), "1", resp.nonce())));
  }
  EXPECT_THAT(order, ElementsAre("Secret", "Cluster", "ClusterEndpoints", "AuthPolicy",
                                 "RateLimitPolicy", "RouteTable", "Listener"));
  ASSERT_TRUE(waitFor([](const control::StatusResponse& s) {
    return s.nodes_size() == 1 && s.nodes(0).in_sync();
  }));
  auto s = status();
  EXPECT_EQ(s.nodes(0).id(), "n1");
  EXPECT_EQ(s.nodes(0).group(), "edge");
  EXPECT_EQ(s.nodes(0).api(), "sotw");
  EXPECT_EQ(s.nodes(0).user_agent(), "sluice/test");
  EXPECT_TRUE(s.nodes(0).connected());

  // The node's group gets its own config: only the listener differs from the default's, but
  // the versions of every type are new, so all are pushed, in order.
  auto own = TestUtil::resources(kConfig);
  own.mutable_listeners(0)->mutable_address()->set_port(9090);
  EXPECT_EQ(apply("edge", own).version(), "2");
  order.clear();
  for (int i = 0; i < typeCount(); ++i) {
    discovery::DiscoveryResponse resp;
    ASSERT_TRUE(stream->Read(&resp));
    order.push_back(shortName(*typeFromUrl(resp.type_url())));
    EXPECT_EQ(resp.version_info(), "2");
    ASSERT_TRUE(stream->Write(request(*typeFromUrl(resp.type_url()), "2", resp.nonce())));
  }
  EXPECT_EQ(order.size(), static_cast<size_t>(typeCount()));
  // (An ACK that arrives after the next push names a stale nonce: wait for them.)
  ASSERT_TRUE(waitFor([](const control::StatusResponse& s) {
    return s.nodes_size() == 1 && s.nodes(0).in_sync();
  }));
  // Then only the changed type.
  own.mutable_clusters(0)->mutable_endpoints(0)->set_port(81);
  EXPECT_EQ(apply("edge", own).version(), "3");
  discovery::DiscoveryResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_EQ(resp.type_url(), typeUrl(typeNamed("Cluster")));
  EXPECT_EQ(resp.version_info(), "3");
  // NACK it.
  auto nack = request(typeNamed("Cluster"), "2", resp.nonce());
  nack.mutable_error_detail()->set_message("cluster users: no");
  ASSERT_TRUE(stream->Write(nack));
  ASSERT_TRUE(waitFor([](const control::StatusResponse& s) {
    return s.nodes_size() == 1 &&
           s.nodes(0).types(typeIndex(typeNamed("Cluster"))).nacked_version() == "3";
  }));
  s = status();
  const auto& cluster_status = s.nodes(0).types(typeIndex(typeNamed("Cluster")));
  EXPECT_EQ(cluster_status.type(), "Cluster");
  EXPECT_EQ(cluster_status.nack_reason(), "cluster users: no");
  EXPECT_EQ(cluster_status.acked_version(), "2");
  EXPECT_FALSE(s.nodes(0).in_sync());

  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  ASSERT_TRUE(waitFor([](const control::StatusResponse& s) {
    return s.nodes_size() == 1 && !s.nodes(0).connected();
  }));
  EXPECT_EQ(ads_.streamCount(), 0u);
}

TEST_F(AdsServiceTest, ResumingAtTheCurrentVersionGetsHeadersButNoResponse) {
  apply("default", TestUtil::resources(kConfig));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto stream = ads_stub_->StreamAggregatedResources(&ctx);
  ASSERT_TRUE(stream->Write(request(typeNamed("Cluster"), "1")));
  // Returns once the server's initial metadata arrived, though no response was sent.
  stream->WaitForInitialMetadata();
  ASSERT_TRUE(waitFor([](const control::StatusResponse& s) {
    return s.nodes_size() == 1 && s.nodes(0).in_sync();
  }));
  // The next change is pushed.
  auto r = TestUtil::resources(kConfig);
  r.mutable_clusters(0)->mutable_endpoints(0)->set_port(81);
  apply("default", r);
  discovery::DiscoveryResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_EQ(resp.version_info(), "2");
  ctx.TryCancel();
  stream->Finish();
}

TEST_F(AdsServiceTest, DeltaStream) {
  apply("default", TestUtil::resources(kConfig));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto stream = ads_stub_->DeltaAggregatedResources(&ctx);
  discovery::DeltaDiscoveryRequest req;
  req.mutable_node()->set_id("d1");
  req.set_type_url(typeUrl(typeNamed("Cluster")));
  ASSERT_TRUE(stream->Write(req));
  discovery::DeltaDiscoveryResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_EQ(resp.system_version_info(), "1");
  ASSERT_EQ(resp.resources_size(), 1);
  EXPECT_EQ(resp.resources(0).name(), "users");
  discovery::DeltaDiscoveryRequest ack;
  ack.set_type_url(typeUrl(typeNamed("Cluster")));
  ack.set_response_nonce(resp.nonce());
  ASSERT_TRUE(stream->Write(ack));

  auto r = TestUtil::resources(kConfig);
  r.add_clusters()->set_name("billing");
  apply("default", r);
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_EQ(resp.system_version_info(), "2");
  ASSERT_EQ(resp.resources_size(), 1);
  EXPECT_EQ(resp.resources(0).name(), "billing");
  r.mutable_clusters()->DeleteSubrange(0, 1);
  apply("default", r);
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_EQ(resp.resources_size(), 0);
  EXPECT_THAT(resp.removed_resources(), ElementsAre("users"));
  ctx.TryCancel();
  stream->Finish();
  ASSERT_TRUE(waitFor([](const control::StatusResponse& s) {
    return s.nodes_size() == 1 && !s.nodes(0).connected() && s.nodes(0).api() == "delta";
  }));
}

// Streams that come and go while configs are published: no crash, no leak of streams.
TEST_F(AdsServiceTest, PushesRacingDisconnects) {
  apply("default", TestUtil::resources(kConfig));
  std::atomic<bool> stop{false};
  std::thread publisher([&] {
    auto r = TestUtil::resources(kConfig);
    for (int i = 0; !stop; ++i) {
      r.mutable_clusters(0)->mutable_endpoints(0)->set_port(1000 + i % 5000);
      apply("default", r);
      absl::SleepFor(absl::Microseconds(200));
    }
  });
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < 25; ++i) {
        grpc::ClientContext ctx;
        auto stream = ads_stub_->StreamAggregatedResources(&ctx);
        auto req = request(typeNamed("Cluster"));
        req.mutable_node()->set_id(absl::StrCat("n", c, "-", i));
        stream->Write(req);
        discovery::DiscoveryResponse resp;
        stream->Read(&resp);
        if (i % 2 == 0) {
          ctx.TryCancel();
        } else {
          // Half-close: the server stops pushing and finishes once what is in flight is read.
          stream->WritesDone();
          while (stream->Read(&resp)) {
          }
        }
        stream->Finish();
      }
    });
  }
  for (auto& t : clients) {
    t.join();
  }
  stop = true;
  publisher.join();
  const auto deadline = absl::Now() + absl::Seconds(5);
  while (ads_.streamCount() != 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(ads_.streamCount(), 0u);
  EXPECT_EQ(status().nodes_size(), 100);
}

}  // namespace
}  // namespace ControlPlane
}  // namespace sluice
