#include "source/common/network/connection.h"

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/test_common/network_utility.h"

namespace sluice {
namespace Network {
namespace {

TEST(AddressTest, ParseAndFormat) {
  Address a;
  ASSERT_TRUE(Address::parse("127.0.0.1", 8080, a));
  EXPECT_EQ("127.0.0.1", a.ip());
  EXPECT_EQ(8080, a.port());
  EXPECT_EQ("127.0.0.1:8080", a.toString());
  EXPECT_EQ(sizeof(sockaddr_in), a.len);

  ASSERT_TRUE(Address::parse("::1", 443, a));
  EXPECT_EQ("::1", a.ip());
  EXPECT_EQ("[::1]:443", a.toString());
  EXPECT_EQ(sizeof(sockaddr_in6), a.len);

  ASSERT_TRUE(Address::parse("[2001:db8::1]", 80, a));
  EXPECT_EQ("[2001:db8::1]:80", a.toString());

  ASSERT_TRUE(Address::parse("localhost", 1, a));
  EXPECT_EQ("127.0.0.1:1", a.toString());

  ASSERT_TRUE(Address::parse("", 9, a));
  EXPECT_EQ("0.0.0.0:9", a.toString());
}

TEST(AddressTest, ParseRejects) {
  Address a;
  EXPECT_FALSE(Address::parse("example.com", 80, a));
  EXPECT_FALSE(Address::parse("256.0.0.1", 80, a));
  EXPECT_FALSE(Address::parse("127.0.0.1", 65536, a));
  EXPECT_FALSE(Address::parse("1.2.3", 80, a));
}

TEST(AddressTest, UnsetAddressIsEmpty) {
  Address a;
  EXPECT_EQ("", a.ip());
  EXPECT_EQ(0, a.port());
}

// Collects what a Connection reports.
struct Recorder : public ConnectionCallbacks {
  void onData(Buffer::Instance& data, bool end_stream) override {
    if (consume) {
      received += data.toString();
      data.drain(data.length());
    }
    ++data_calls;
    eof = eof || end_stream;
  }
  void onEvent(ConnectionEvent event) override { events.push_back(event); }
  void onAboveWriteBufferHighWatermark() override { ++above; }
  void onBelowWriteBufferLowWatermark() override { ++below; }
  bool has(ConnectionEvent e) const {
    return std::find(events.begin(), events.end(), e) != events.end();
  }

  std::string received;
  std::vector<ConnectionEvent> events;
  int data_calls = 0;
  int above = 0;
  int below = 0;
  bool eof = false;
  bool consume = true;
};

class ConnectionTest : public testing::Test {
 protected:
  ConnectionTest() {
    signal(SIGPIPE, SIG_IGN);
    auto [fa, fb] = Testing::socketPair();
    a_ = std::make_unique<Connection>(*dispatcher_, fa, false);
    b_ = std::make_unique<Connection>(*dispatcher_, fb, false);
    a_->setCallbacks(&ra_);
    b_->setCallbacks(&rb_);
  }
  bool run(const std::function<bool()>& done) { return Testing::runUntil(*dispatcher_, done); }

  Event::DispatcherPtr dispatcher_ = Event::createLibeventDispatcher();
  Recorder ra_;
  Recorder rb_;
  std::unique_ptr<Connection> a_;
  std::unique_ptr<Connection> b_;
};

TEST_F(ConnectionTest, WritesArriveInOrderAndCoalesce) {
  a_->write("hello ");
  Buffer::OwnedImpl buf("world");
  a_->write(buf);
  EXPECT_TRUE(buf.empty());  // moved out
  a_->write("!");
  EXPECT_EQ(12u, a_->writeBufferLength());
  ASSERT_TRUE(run([&]() { return rb_.received == "hello world!"; }));
  EXPECT_EQ(12u, a_->bytesWritten());
  EXPECT_EQ(12u, b_->bytesRead());
  EXPECT_EQ(0u, a_->writeBufferLength());
}

TEST_F(ConnectionTest, UnconsumedDataStaysBuffered) {
  rb_.consume = false;
  a_->write("abc");
  ASSERT_TRUE(run([&]() { return rb_.data_calls == 1; }));
  a_->write("def");
  ASSERT_TRUE(run([&]() { return rb_.data_calls == 2; }));
  rb_.consume = true;
  b_->resumeRead();
  EXPECT_EQ("abcdef", rb_.received);
}

TEST_F(ConnectionTest, CloseFlushWriteSendsPendingDataThenCloses) {
  const std::string big(256 * 1024, 'x');
  a_->write(big);
  a_->close(Connection::CloseType::FlushWrite);
  EXPECT_TRUE(a_->closing());
  ASSERT_TRUE(run([&]() { return rb_.eof; }));
  EXPECT_EQ(big.size(), rb_.received.size());
  ASSERT_TRUE(run([&]() { return a_->closed(); }));
  EXPECT_TRUE(ra_.has(ConnectionEvent::LocalClose));
}

TEST_F(ConnectionTest, CloseNoFlushDropsPendingData) {
  a_->write("never sent");
  a_->close(Connection::CloseType::NoFlush);
  EXPECT_TRUE(a_->closed());
  EXPECT_TRUE(ra_.has(ConnectionEvent::LocalClose));
  ASSERT_TRUE(run([&]() { return rb_.eof || rb_.has(ConnectionEvent::RemoteClose); }));
  EXPECT_EQ("", rb_.received);
  // Writes after close are ignored.
  a_->write("late");
  EXPECT_EQ(0u, a_->writeBufferLength());
}

TEST_F(ConnectionTest, PeerCloseIsEndStream) {
  a_->write("last words");
  a_->close(Connection::CloseType::FlushWrite);
  ASSERT_TRUE(run([&]() { return rb_.eof; }));
  EXPECT_EQ("last words", rb_.received);
}

TEST_F(ConnectionTest, ReadDisableHoldsDataUntilEnabled) {
  b_->readDisable(true);
  EXPECT_TRUE(b_->readDisabled());
  a_->write("held");
  Testing::runPending(*dispatcher_);
  EXPECT_EQ("", rb_.received);
  b_->readDisable(false);
  EXPECT_FALSE(b_->readDisabled());
  ASSERT_TRUE(run([&]() { return rb_.received == "held"; }));
}

TEST_F(ConnectionTest, ReadDisableNests) {
  b_->readDisable(true);
  b_->readDisable(true);
  b_->readDisable(false);
  EXPECT_TRUE(b_->readDisabled());
  b_->readDisable(false);
  EXPECT_FALSE(b_->readDisabled());
}

TEST_F(ConnectionTest, WatermarksFollowTheWriteBuffer) {
  int small = 4096;
  ASSERT_EQ(0, setsockopt(a_->fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)));
  ASSERT_EQ(0, setsockopt(b_->fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)));
  a_->setBufferLimits(64 * 1024);
  b_->readDisable(true);
  const std::string big(1024 * 1024, 'w');
  a_->write(big);
  EXPECT_EQ(1, ra_.above);
  EXPECT_TRUE(a_->aboveHighWatermark());
  Testing::runPending(*dispatcher_);
  EXPECT_GT(a_->writeBufferLength(), 64u * 1024);  // the peer is not reading
  EXPECT_EQ(0, ra_.below);
  b_->readDisable(false);
  ASSERT_TRUE(run([&]() { return rb_.received.size() == big.size(); }));
  EXPECT_EQ(1, ra_.below);
  EXPECT_FALSE(a_->aboveHighWatermark());
  EXPECT_EQ(big, rb_.received);
}

TEST_F(ConnectionTest, ReleaseIdleMemory) {
  a_->write("x");
  ASSERT_TRUE(run([&]() { return rb_.received == "x"; }));
  b_->releaseIdleMemory();  // nothing buffered: harmless
  a_->write("y");
  ASSERT_TRUE(run([&]() { return rb_.received == "xy"; }));
}

using Testing::TcpListener;

TEST(ClientConnectionTest, ConnectsAndExchanges) {
  signal(SIGPIPE, SIG_IGN);
  Event::DispatcherPtr d = Event::createLibeventDispatcher();
  TcpListener listener;
  Address to;
  ASSERT_TRUE(Address::parse("127.0.0.1", listener.port(), to));
  Recorder rc;
  ConnectionPtr client = Connection::connect(*d, to);
  ASSERT_NE(nullptr, client);
  client->setCallbacks(&rc);
  EXPECT_EQ(to.toString(), client->peerAddress().toString());
  client->write("queued before connect");
  ASSERT_TRUE(Testing::runUntil(*d, [&]() { return rc.has(ConnectionEvent::Connected); }));
  int fd = -1;
  ASSERT_TRUE(Testing::runUntil(*d, [&]() {
    if (fd < 0) fd = listener.accept();
    return fd >= 0;
  }));
  Testing::RawPeer server(*d, fd);
  ASSERT_TRUE(
      Testing::runUntil(*d, [&]() { return server.received() == "queued before connect"; }));
  server.write("reply");
  ASSERT_TRUE(Testing::runUntil(*d, [&]() { return rc.received == "reply"; }));
  server.close();
  ASSERT_TRUE(Testing::runUntil(*d, [&]() { return rc.eof; }));
}

TEST(ClientConnectionTest, ConnectFailure) {
  Event::DispatcherPtr d = Event::createLibeventDispatcher();
  uint16_t port;
  {
    TcpListener listener;
    port = listener.port();
  }  // closed: nothing listens there now
  Address to;
  ASSERT_TRUE(Address::parse("127.0.0.1", port, to));
  Recorder rc;
  ConnectionPtr client = Connection::connect(*d, to);
  ASSERT_NE(nullptr, client);
  client->setCallbacks(&rc);
  ASSERT_TRUE(Testing::runUntil(*d, [&]() { return rc.has(ConnectionEvent::ConnectFailed); }));
  EXPECT_TRUE(client->closed());
  EXPECT_FALSE(rc.has(ConnectionEvent::Connected));
}

}  // namespace
}  // namespace Network
}  // namespace sluice
