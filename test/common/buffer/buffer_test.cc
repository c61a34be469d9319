#include "source/common/buffer/buffer.h"

#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace Buffer {
namespace {

constexpr size_t kSlice = OwnedImpl::kSliceSize;

// Deterministic, position-dependent bytes so misplaced copies show up.
std::string pattern(size_t n, size_t seed = 0) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    s[i] = static_cast<char>('a' + (i * 7 + seed) % 26);
  }
  return s;
}

std::string slicesToString(const OwnedImpl& b) {
  std::string out;
  b.forEachSlice([&out](absl::string_view s) { out.append(s.data(), s.size()); });
  return out;
}

TEST(BufferTest, EmptyBufferOwnsNoSlices) {
  OwnedImpl b;
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(0, b.length());
  EXPECT_EQ(0, b.sliceCount());
  EXPECT_EQ("", b.toString());
  EXPECT_TRUE(b.frontSlice().empty());
}

TEST(BufferTest, AddEmptyDataAllocatesNothing) {
  OwnedImpl b;
  b.add("");
  b.add(nullptr, 0);
  EXPECT_EQ(0, b.sliceCount());
}

TEST(BufferTest, DrainEverythingReleasesSlices) {
  OwnedImpl b(pattern(3 * kSlice + 10));
  EXPECT_EQ(4, b.sliceCount());
  b.drain(b.length());
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(0, b.sliceCount());
}

TEST(BufferTest, DrainInStepsToEmptyReleasesSlices) {
  OwnedImpl b("hello");
  b.drain(2);
  EXPECT_EQ("llo", b.toString());
  EXPECT_EQ(1, b.sliceCount());
  b.drain(3);
  EXPECT_EQ(0, b.sliceCount());
}

TEST(BufferTest, DrainMoreThanLengthEmpties) {
  OwnedImpl b("abc");
  b.drain(100);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(0, b.sliceCount());
}

TEST(BufferTest, ClearReleasesSlices) {
  OwnedImpl b(pattern(2 * kSlice));
  b.clear();
  EXPECT_EQ(0, b.length());
  EXPECT_EQ(0, b.sliceCount());
}

TEST(BufferTest, AddAcrossSliceBoundary) {
  const std::string data = pattern(kSlice * 2 + 123);
  OwnedImpl b;
  // Uneven pieces that straddle the boundaries.
  b.add(data.substr(0, kSlice - 5));
  b.add(data.substr(kSlice - 5, 10));
  b.add(data.substr(kSlice + 5));
  EXPECT_EQ(data.size(), b.length());
  EXPECT_EQ(3, b.sliceCount());
  EXPECT_EQ(data, b.toString());
  EXPECT_EQ(data, slicesToString(b));
  EXPECT_EQ(kSlice, b.frontSlice().size());
}

TEST(BufferTest, LargeSingleAddIsSplitIntoSlices) {
  const std::string data = pattern(5 * kSlice + 1);
  OwnedImpl b(data);
  EXPECT_EQ(6, b.sliceCount());
  EXPECT_EQ(data, b.toString());
}

TEST(BufferTest, DrainAcrossSliceBoundary) {
  const std::string data = pattern(kSlice * 3);
  OwnedImpl b(data);
  b.drain(kSlice + 17);
  EXPECT_EQ(data.size() - kSlice - 17, b.length());
  EXPECT_EQ(data.substr(kSlice + 17), b.toString());
  // The fully drained first slice is gone; the second starts mid-way.
  EXPECT_EQ(2, b.sliceCount());
  EXPECT_EQ(kSlice - 17, b.frontSlice().size());
  EXPECT_EQ(data.substr(kSlice + 17, kSlice - 17), std::string(b.frontSlice()));
}

TEST(BufferTest, DrainExactlyOneSlice) {
  const std::string data = pattern(kSlice * 2);
  OwnedImpl b(data);
  b.drain(kSlice);
  EXPECT_EQ(1, b.sliceCount());
  EXPECT_EQ(data.substr(kSlice), b.toString());
}

TEST(BufferTest, CopyOutAcrossSlicesDoesNotConsume) {
  const std::string data = pattern(kSlice * 2 + 100);
  OwnedImpl b(data);
  b.drain(10);
  std::string out(kSlice + 50, '\0');
  b.copyOut(out.size(), out.data());
  EXPECT_EQ(data.substr(10, out.size()), out);
  EXPECT_EQ(data.size() - 10, b.length());
  std::string all(b.length(), '\0');
  b.copyOut(all.size(), all.data());
  EXPECT_EQ(data.substr(10), all);
}

TEST(BufferTest, CopyOutZeroBytes) {
  OwnedImpl b("abc");
  char c = 'x';
  b.copyOut(0, &c);
  EXPECT_EQ('x', c);
}

TEST(BufferTest, MoveAllSmallCopiesAndEmptiesSource) {
  OwnedImpl a("head-");
  OwnedImpl b("tail");
  a.move(b);
  EXPECT_EQ("head-tail", a.toString());
  EXPECT_EQ(1, a.sliceCount());
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(0, b.sliceCount());
}

TEST(BufferTest, MoveAllLargeTransfersSlices) {
  const std::string big = pattern(kSlice * 2 + 7, 3);
  OwnedImpl a("prefix");
  OwnedImpl b(big);
  a.move(b);
  EXPECT_EQ("prefix" + big, a.toString());
  EXPECT_EQ(6 + big.size(), a.length());
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(0, b.sliceCount());
  // Appending after the moved slices keeps the order.
  a.add("!");
  EXPECT_EQ("prefix" + big + "!", a.toString());
}

TEST(BufferTest, MoveFromPartiallyDrainedSource) {
  const std::string big = pattern(kSlice * 2, 5);
  OwnedImpl b(big);
  b.drain(kSlice + 3);  // first slice gone, second starts at an offset
  OwnedImpl a;
  a.move(b);
  EXPECT_EQ(big.substr(kSlice + 3), a.toString());
  EXPECT_TRUE(b.empty());
}

TEST(BufferTest, MoveIntoEmpty) {
  const std::string big = pattern(kSlice + 1);
  OwnedImpl a;
  OwnedImpl b(big);
  a.move(b);
  EXPECT_EQ(big, a.toString());
  EXPECT_EQ(0, b.sliceCount());
}

TEST(BufferTest, MoveFromEmptyIsNoop) {
  OwnedImpl a("x");
  OwnedImpl b;
  a.move(b);
  EXPECT_EQ("x", a.toString());
  OwnedImpl c;
  OwnedImpl d;
  c.move(d);
  EXPECT_EQ(0, c.sliceCount());
}

TEST(BufferTest, MovePartialAcrossSlices) {
  const std::string big = pattern(kSlice * 3, 11);
  OwnedImpl src(big);
  OwnedImpl dst("<");
  dst.move(src, kSlice + 10);
  EXPECT_EQ("<" + big.substr(0, kSlice + 10), dst.toString());
  EXPECT_EQ(big.substr(kSlice + 10), src.toString());
  EXPECT_EQ(big.size() - kSlice - 10, src.length());
}

TEST(BufferTest, MovePartialMoreThanLengthMovesAll) {
  OwnedImpl src("abc");
  OwnedImpl dst;
  dst.move(src, 100);
  EXPECT_EQ("abc", dst.toString());
  EXPECT_TRUE(src.empty());
  EXPECT_EQ(0, src.sliceCount());
}

TEST(BufferTest, MovePartialZeroBytes) {
  OwnedImpl src("abc");
  OwnedImpl dst;
  dst.move(src, 0);
  EXPECT_TRUE(dst.empty());
  EXPECT_EQ("abc", src.toString());
}

TEST(BufferTest, MoveConstructorLeavesSourceEmpty) {
  const std::string big = pattern(kSlice + 5);
  OwnedImpl a(big);
  OwnedImpl b(std::move(a));
  EXPECT_EQ(big, b.toString());
  EXPECT_EQ(0, a.length());  // NOLINT(bugprone-use-after-move): documented state
  EXPECT_EQ(0, a.sliceCount());
}

TEST(BufferTest, InterleavedAddDrainKeepsContent) {
  OwnedImpl b;
  std::string model;
  for (int i = 0; i < 200; ++i) {
    const std::string piece = pattern(997 * (i % 7) + 13, i);
    b.add(piece);
    model += piece;
    const size_t d = (i * 1543) % (model.size() + 1);
    b.drain(d);
    model.erase(0, d);
    ASSERT_EQ(model.size(), b.length());
  }
  EXPECT_EQ(model, b.toString());
}

class BufferSocketTest : public testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);  // a write to a closed peer must fail with EPIPE, not kill us
    ASSERT_EQ(0, ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds_));
  }
  void TearDown() override {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  // Reads everything currently readable from fds_[1].
  std::string drainPeer() {
    std::string out;
    char buf[65536];
    while (true) {
      ssize_t n = ::read(fds_[1], buf, sizeof(buf));
      if (n <= 0) {
        break;
      }
      out.append(buf, n);
    }
    return out;
  }

  int fds_[2];
};

TEST_F(BufferSocketTest, WriteToSendsEverythingAndDrains) {
  const std::string data = pattern(kSlice * 2 + 99, 1);
  OwnedImpl b(data);
  b.drain(9);
  ssize_t n = b.writeTo(fds_[0]);
  ASSERT_EQ(static_cast<ssize_t>(data.size() - 9), n);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(0, b.sliceCount());
  EXPECT_EQ(data.substr(9), drainPeer());
}

TEST_F(BufferSocketTest, WriteToEmptyBufferWritesNothing) {
  OwnedImpl b;
  EXPECT_EQ(0, b.writeTo(fds_[0]));
  EXPECT_EQ("", drainPeer());
}

TEST_F(BufferSocketTest, WriteToFullSocketKeepsRemainder) {
  int small = 4096;
  ASSERT_EQ(0, setsockopt(fds_[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)));
  const std::string data = pattern(4 * 1024 * 1024, 2);
  OwnedImpl b(data);
  std::string received;
  size_t written = 0;
  while (!b.empty()) {
    ssize_t n = b.writeTo(fds_[0]);
    if (n == -EAGAIN) {
      received += drainPeer();
      continue;
    }
    ASSERT_GT(n, 0);
    written += n;
    EXPECT_EQ(data.size() - written, b.length());
  }
  received += drainPeer();
  EXPECT_EQ(data.size(), written);
  EXPECT_EQ(data, received);
}

TEST_F(BufferSocketTest, WriteToClosedPeerReturnsErrno) {
  ::close(fds_[1]);
  fds_[1] = ::socket(AF_UNIX, SOCK_STREAM, 0);  // keep TearDown's close harmless
  OwnedImpl b("data");
  ssize_t n = b.writeTo(fds_[0]);
  EXPECT_EQ(-EPIPE, n);
  EXPECT_EQ("data", b.toString());
}

TEST_F(BufferSocketTest, ReadFromAppendsToExistingData) {
  OwnedImpl b("existing:");
  ASSERT_EQ(5, ::write(fds_[1], "hello", 5));
  EXPECT_EQ(5, b.readFrom(fds_[0], 64 * 1024));
  EXPECT_EQ("existing:hello", b.toString());
  EXPECT_EQ(1, b.sliceCount());
}

TEST_F(BufferSocketTest, ReadFromEmptyBufferFillsNewSlices) {
  const std::string data = pattern(kSlice * 2 + 500, 4);
  ASSERT_EQ(static_cast<ssize_t>(data.size()), ::write(fds_[1], data.data(), data.size()));
  OwnedImpl b;
  size_t total = 0;
  while (total < data.size()) {
    ssize_t n = b.readFrom(fds_[0], 64 * 1024);
    ASSERT_GT(n, 0);
    total += n;
  }
  EXPECT_EQ(data, b.toString());
  EXPECT_EQ(data.size(), b.length());
}

TEST_F(BufferSocketTest, ReadFromRespectsMax) {
  const std::string data = pattern(1000);
  ASSERT_EQ(1000, ::write(fds_[1], data.data(), data.size()));
  OwnedImpl b;
  EXPECT_EQ(100, b.readFrom(fds_[0], 100));
  EXPECT_EQ(data.substr(0, 100), b.toString());
  EXPECT_EQ(900, b.readFrom(fds_[0], 64 * 1024));
  EXPECT_EQ(data, b.toString());
}

TEST_F(BufferSocketTest, ReadFromFillsTailThenNewSlice) {
  // Leave ~2 KiB free in the tail slice, then read 6 KiB: the tail fills, a new slice follows.
  const std::string head = pattern(kSlice - 2048, 6);
  OwnedImpl b(head);
  ASSERT_EQ(1, b.sliceCount());
  const std::string more = pattern(6144, 8);
  ASSERT_EQ(6144, ::write(fds_[1], more.data(), more.size()));
  EXPECT_EQ(6144, b.readFrom(fds_[0], 64 * 1024));
  EXPECT_EQ(head + more, b.toString());
  EXPECT_EQ(2, b.sliceCount());
}

TEST_F(BufferSocketTest, ReadFromWouldBlockLeavesBufferEmpty) {
  OwnedImpl b;
  EXPECT_EQ(-EAGAIN, b.readFrom(fds_[0], 64 * 1024));
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(0, b.sliceCount());
}

TEST_F(BufferSocketTest, ReadFromEofReturnsZero) {
  ::shutdown(fds_[1], SHUT_WR);
  OwnedImpl b;
  EXPECT_EQ(0, b.readFrom(fds_[0], 64 * 1024));
  EXPECT_EQ(0, b.sliceCount());
}

// ---- SharedSlice: bytes referred to, not copied ----------------------------------------------

TEST(SharedSliceTest, BuffersReferToTheBytesAndReleaseThemWhenDrained) {
  const std::string data = pattern(40000, 3);
  SharedSlicePtr slice = SharedSlice::copyOf(data);
  {
    OwnedImpl a;
    a.add("head:");
    a.addShared(*slice);
    a.add(":tail");  // never written into the shared bytes
    EXPECT_EQ("head:" + data + ":tail", a.toString());
    EXPECT_EQ(data, slice->view());
    OwnedImpl b;
    b.addShared(*slice);
    b.drain(100);  // partly drained: still referred to
    EXPECT_EQ(data.substr(100), b.toString());
    OwnedImpl c;
    c.move(b);  // a whole view moves, reference and all
    EXPECT_TRUE(b.empty());
    EXPECT_EQ(data.substr(100), c.toString());
    OwnedImpl d;
    d.move(c, 50);  // part of it is copied
    EXPECT_EQ(data.substr(100, 50), d.toString());
    EXPECT_EQ(data.substr(150), c.toString());
  }
  // Every buffer released its reference; the slice is still whole for its owner.
  EXPECT_EQ(data, slice->view());
  OwnedImpl e;
  e.addShared(*slice);
  slice.reset();  // the buffer's reference keeps the bytes alive
  EXPECT_EQ(data, e.toString());
  e.drain(e.length());
  EXPECT_TRUE(e.empty());
}

TEST(SharedSliceTest, SmallSlicesAreCopied) {
  SharedSlicePtr slice = SharedSlice::copyOf("tiny");
  OwnedImpl a;
  a.addShared(*slice);
  slice.reset();
  EXPECT_EQ("tiny", a.toString());
  OwnedImpl empty;
  SharedSlicePtr none = SharedSlice::copyOf("");
  empty.addShared(*none);
  EXPECT_TRUE(empty.empty());
}

TEST(SharedSliceTest, ReferencesFromManyThreads) {
  const std::string data = pattern(64 * 1024, 5);
  SharedSlicePtr slice = SharedSlice::copyOf(data);
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        OwnedImpl b;
        b.addShared(*slice);
        if (b.length() != data.size() || b.frontSlice().substr(0, 16) != data.substr(0, 16)) {
          ++bad;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(0, bad.load());
  EXPECT_EQ(data, slice->view());
}

TEST_F(BufferSocketTest, SharedBytesGoToASocket) {
  const std::string data = pattern(30000, 11);
  SharedSlicePtr slice = SharedSlice::copyOf(data);
  OwnedImpl out("x");
  out.addShared(*slice);
  slice.reset();
  OwnedImpl in;
  while (in.length() < data.size() + 1) {
    if (!out.empty()) {
      ssize_t n = out.writeTo(fds_[0]);
      ASSERT_TRUE(n > 0 || n == -EAGAIN);
    }
    ssize_t r = in.readFrom(fds_[1], 64 * 1024);
    ASSERT_TRUE(r > 0 || r == -EAGAIN);
  }
  EXPECT_EQ("x" + data, in.toString());
}

TEST_F(BufferSocketTest, RoundTripThroughSocket) {
  const std::string data = pattern(100000, 9);
  OwnedImpl out(data);
  OwnedImpl in;
  while (in.length() < data.size()) {
    if (!out.empty()) {
      ssize_t n = out.writeTo(fds_[0]);
      ASSERT_TRUE(n > 0 || n == -EAGAIN);
    }
    ssize_t r = in.readFrom(fds_[1], 64 * 1024);
    ASSERT_TRUE(r > 0 || r == -EAGAIN);
  }
  EXPECT_EQ(data, in.toString());
}

}  // namespace
}  // namespace Buffer
}  // namespace sluice
