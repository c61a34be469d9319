#pragma once

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sluice/config/v1/bootstrap.pb.h"
#include "source/common/config/utility.h"
#include "source/control_plane/resources.h"

namespace sluice {
namespace ControlPlane {
namespace TestUtil {

// YAML (the declared-config form) -> StaticResources; fails the test on error.
inline sluice::config::v1::StaticResources resources(const std::string& yaml) {
  sluice::config::v1::StaticResources r;
  absl::Status s = Config::loadFromYaml(yaml, r);
  EXPECT_TRUE(s.ok()) << s;
  return r;
}

// The resource type of message name `short_name` ("Cluster", "AuthPolicy"); fails the test (and
// returns the first type) when there is none.
inline ResourceType typeNamed(absl::string_view short_name) {
  for (ResourceType t : allTypes()) {
    if (shortName(t) == short_name) {
      return t;
    }
  }
  ADD_FAILURE() << "no resource type " << short_name;
  return ResourceType(0);
}

// A fresh directory under the test's temp dir.
inline std::string tempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(base != nullptr ? base : "/tmp", "/", name, "-XXXXXX");
  if (mkdtemp(dir.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp " << dir;
  }
  return dir;
}

}  // namespace TestUtil
}  // namespace ControlPlane
}  // namespace sluice
