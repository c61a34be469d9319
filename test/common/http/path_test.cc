#include "source/common/http/path.h"

#include <string>

#include "gtest/gtest.h"

namespace sluice {
namespace Http {
namespace Path {
namespace {

struct Case {
  const char* in;
  const char* out;  // nullptr = rejected
};

std::string run(const std::string& in, const NormalizeOptions& o, Result* result = nullptr) {
  std::string t = in;
  absl::string_view error;
  Result r = normalize(t, o, error);
  if (result) *result = r;
  if (r == Result::Reject) {
    EXPECT_FALSE(error.empty());
    return "<reject>";
  }
  return t;
}

TEST(PathTest, DefaultsNormaliseEveryBypassEncoding) {
  NormalizeOptions o;
  const Case cases[] = {
      {"/admin", "/admin"},
      {"/public/../admin", "/admin"},
      {"/%61dmin", "/admin"},
      {"/%41dmin", "/Admin"},
      {"//admin", "/admin"},
      {"///admin//x", "/admin/x"},
      {"/%2fadmin", nullptr},
      {"/%2Fadmin", nullptr},
      {"/%5cadmin", nullptr},
      {"/\\admin", nullptr},
      {"/%2e/admin", "/admin"},
      {"/%2E%2E/admin", "/admin"},
      {"/./admin", "/admin"},
      {"/a/b/../../admin", "/admin"},
      {"/../admin", "/admin"},
      {"/../../../admin", "/admin"},
      {"/public/%2e%2e/admin", "/admin"},
      {"/public/.%2e/admin", "/admin"},
      {"/public//..//admin", "/admin"},
      {"/admin/.", "/admin/"},
      {"/admin/..", "/"},
      {"/a/./b/./c", "/a/b/c"},
      {"/admin%00", nullptr},
      {"/adm%zzin", nullptr},
      {"/admin%4", nullptr},
      {"/admin%", nullptr},
      {"/caf%c3%a9", "/caf%C3%A9"},
      {"/a%20b", "/a%20b"},
      {"/%7euser", "/~user"},
      {"/a?x=/../b&y=%2f", "/a?x=/../b&y=%2f"},
      {"/x/../admin?q=1", "/admin?q=1"},
      {"/admin#frag", "/admin"},
      {"/x/..#/admin", "/"},
      {"/admin?x#y", "/admin?x"},
      {"/", "/"},
      {"/.well-known/x", "/.well-known/x"},
      {"/a/...", "/a/..."},
      {"/a/.../b", "/a/.../b"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(run(c.in, o), c.out ? c.out : "<reject>") << c.in;
  }
}

TEST(PathTest, CommonPathsTakeTheFastPath) {
  NormalizeOptions o;
  for (const char* p : {"/", "/api/v1/users?id=1&x=/./", "/a.b/c.d", "/a/b/"}) {
    Result r;
    EXPECT_EQ(run(p, o, &r), p);
    EXPECT_EQ(r, Result::Unchanged) << p;
  }
}

TEST(PathTest, EscapedSlashActions) {
  NormalizeOptions o;
  o.escaped_slashes = EscapedSlashesAction::KeepUnchanged;
  EXPECT_EQ(run("/a%2fb/%5c/..", o), "/a%2Fb/");
  o.escaped_slashes = EscapedSlashesAction::UnescapeAndForward;
  Result r;
  EXPECT_EQ(run("/%2fadmin", o, &r), "/admin");
  EXPECT_EQ(r, Result::Changed);
  EXPECT_EQ(run("/public%2f..%2fadmin", o), "/admin");
  EXPECT_EQ(run("/a%5Cb", o), "/a/b");
  o.escaped_slashes = EscapedSlashesAction::UnescapeAndRedirect;
  EXPECT_EQ(run("/a%2Fb?q", o, &r), "/a/b?q");
  EXPECT_EQ(r, Result::Redirect);
  EXPECT_EQ(run("/a/./b", o, &r), "/a/b");
  EXPECT_EQ(r, Result::Changed);
}

TEST(PathTest, SwitchesOff) {
  NormalizeOptions o;
  o.merge_slashes = false;
  EXPECT_EQ(run("//a//b", o), "//a//b");
  EXPECT_EQ(run("/a//../b", o), "/a/b");
  o.normalize = false;
  EXPECT_EQ(run("/a/../%61", o), "/a/../%61");
  EXPECT_EQ(run("/a%2fb", o), "<reject>");
  EXPECT_EQ(run("/a\\b", o), "<reject>");
  o.merge_slashes = true;
  EXPECT_EQ(run("//a/../%61", o), "/a/../%61");
}

TEST(PathTest, RemoveDotSegmentsRfcExamples) {
  // RFC 3986 5.4.1-style results for absolute paths.
  EXPECT_EQ(removeDotSegments("/a/b/c/./../../g"), "/a/g");
  EXPECT_EQ(removeDotSegments("/mid/content=5/../6"), "/mid/6");
  EXPECT_EQ(removeDotSegments("/.."), "/");
  EXPECT_EQ(removeDotSegments("/a//b/../c"), "/a//c");
}

}  // namespace
}  // namespace Path
}  // namespace Http
}  // namespace sluice
