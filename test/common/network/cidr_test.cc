#include "source/common/network/cidr.h"

#include <string>

#include "gtest/gtest.h"

namespace sluice {
namespace Network {
namespace {

bool in(const std::string& range, const std::string& ip) {
  auto r = CidrRange::parse(range);
  EXPECT_TRUE(r.ok()) << range << ": " << r.status();
  IpBytes b;
  EXPECT_TRUE(parseIp(ip, b)) << ip;
  return r.ok() && r->contains(b);
}

TEST(CidrTest, Ipv4) {
  EXPECT_TRUE(in("10.0.0.0/8", "10.255.1.2"));
  EXPECT_FALSE(in("10.0.0.0/8", "11.0.0.1"));
  EXPECT_TRUE(in("192.0.2.7", "192.0.2.7"));
  EXPECT_FALSE(in("192.0.2.7", "192.0.2.8"));
  EXPECT_TRUE(in("192.0.2.0/25", "192.0.2.127"));
  EXPECT_FALSE(in("192.0.2.0/25", "192.0.2.128"));
  EXPECT_TRUE(in("0.0.0.0/0", "203.0.113.9"));
  // Host bits are cleared: 10.1.2.3/8 is 10.0.0.0/8.
  EXPECT_TRUE(in("10.1.2.3/8", "10.9.9.9"));
  // An IPv4 client seen through a dual-stack socket.
  EXPECT_TRUE(in("10.0.0.0/8", "::ffff:10.0.0.1"));
  EXPECT_FALSE(in("0.0.0.0/0", "2001:db8::1"));
}

TEST(CidrTest, Ipv6) {
  EXPECT_TRUE(in("2001:db8::/32", "2001:db8:ffff::1"));
  EXPECT_FALSE(in("2001:db8::/32", "2001:db9::1"));
  EXPECT_TRUE(in("::1", "::1"));
  EXPECT_TRUE(in("::/0", "2001:db8::1"));
  EXPECT_TRUE(in("fe80::/10", "febf::1"));
  EXPECT_FALSE(in("fe80::/10", "fec0::1"));
}

TEST(CidrTest, Errors) {
  for (const char* bad : {"", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0/8",
                          "example.com", "10.0.0.0/8/8", "1.2.3.4 ", "10.0.0.0/0008"}) {
    EXPECT_FALSE(CidrRange::parse(bad).ok()) << bad;
  }
  IpBytes b;
  EXPECT_FALSE(parseIp("", b));
  EXPECT_FALSE(parseIp("1.2.3", b));
  EXPECT_FALSE(parseIp(std::string(100, '1'), b));
  EXPECT_EQ(CidrRange::parse("10.0.0.0/33").status().message(),
            "\"10.0.0.0/33\": prefix length 33 is over 32");
}

TEST(CidrTest, Set) {
  CidrSet set;
  EXPECT_TRUE(set.empty());
  set.add(*CidrRange::parse("10.0.0.0/8"));
  set.add(*CidrRange::parse("2001:db8::/32"));
  IpBytes b;
  ASSERT_TRUE(parseIp("10.1.1.1", b));
  EXPECT_TRUE(set.contains(b));
  ASSERT_TRUE(parseIp("2001:db8::5", b));
  EXPECT_TRUE(set.contains(b));
  ASSERT_TRUE(parseIp("192.0.2.1", b));
  EXPECT_FALSE(set.contains(b));
}

}  // namespace
}  // namespace Network
}  // namespace sluice
