#pragma once

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sluice/config/v1/bootstrap.pb.h"
#include "source/common/config/utility.h"

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
