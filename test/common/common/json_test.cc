// Json::appendStringUtf8Safe: what a peer sent, always valid JSON for a strict parser.
#include "source/common/common/json.h"

#include <string>

#include "gtest/gtest.h"
#include "source/common/common/json_value.h"

namespace sluice {
namespace Json {
namespace {

std::string safe(absl::string_view s) {
  std::string out;
  appendStringUtf8Safe(out, s);
  return out;
}

TEST(JsonUtf8SafeTest, ValidTextIsKept) {
  EXPECT_EQ(R"("plain")", safe("plain"));
  EXPECT_EQ(R"("q\"b\\n\n\u0001")", safe(std::string("q\"b\\n\n\x01", 7)));
  EXPECT_EQ("\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"",
            safe("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"));
}

TEST(JsonUtf8SafeTest, EveryBadSequenceBecomesReplacementCharacters) {
  const char* bad[] = {
      "\xff",              // never in UTF-8
      "\xc3",              // truncated 2-byte
      "\xc0\xaf",          // overlong '/'
      "\xe0\x80\xaf",      // overlong 3-byte
      "\xed\xa0\x80",      // surrogate
      "\xf4\x90\x80\x80",  // above U+10FFFF
      "\x80",              // lone continuation
      "\xe2\x82",          // truncated 3-byte at the end
  };
  for (const char* b : bad) {
    const std::string out = safe(std::string("a") + b + "z");
    auto v = parse(out);
    ASSERT_TRUE(v.ok()) << v.status() << " for " << out;
    EXPECT_EQ('a', v->str().front());
    EXPECT_EQ('z', v->str().back());
    EXPECT_NE(std::string::npos, out.find("\\ufffd")) << out;
  }
}

// appendString: every special byte at every position of a long string (the 8-byte path and
// the byte path meet), bytes >= 0x80 kept as they are.
TEST(JsonStringTest, SpecialsAnywhereInLongStrings) {
  const std::string base = "abcdefghijklmnopqrstuvwxyz0123456789";
  for (char special : {'"', '\\', '\n', '\x01', '\x7f', '\x1f'}) {
    for (size_t pos = 0; pos < base.size(); ++pos) {
      std::string s = base;
      s[pos] = special;
      s += "\xc3\xa9";
      std::string out;
      appendString(out, s);
      auto v = parse(out);
      ASSERT_TRUE(v.ok()) << out;
      EXPECT_EQ(v->str(), s) << out;
    }
  }
  std::string out;
  appendString(out, "");
  EXPECT_EQ(out, "\"\"");
}

}  // namespace
}  // namespace Json
}  // namespace sluice
