#include "source/control_plane/state_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "source/common/config/redact.h"
#include "source/common/config/utility.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace ControlPlane {
namespace {

std::string errnoText() { return std::strerror(errno); }

}  // namespace

bool validGroupName(const std::string& group) {
  if (group.empty() || group.size() > 128 || group[0] == '.') {
    return false;
  }
  for (char c : group) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

absl::Status writeFileAtomically(const std::string& path, const std::string& content, mode_t mode) {
  const std::string tmp = path + ".tmp";
  // A leftover temp file keeps its old mode through O_TRUNC: start afresh.
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", errnoText()));
  }
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      const std::string err = errnoText();
      ::close(fd);
      ::unlink(tmp.c_str());
      return absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", err));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const std::string err = errnoText();
    ::unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = errnoText();
    ::unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", path, ": ", err));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", errnoText()));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    return absl::InternalError(absl::StrCat("cannot read ", path));
  }
  return ss.str();
}

std::string StateStore::pathFor(const std::string& group) const {
  return absl::StrCat(dir_, "/groups/", group, ".json");
}

absl::Status StateStore::init() {
  std::error_code ec;
  std::filesystem::create_directories(dir_ + "/groups", ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create state dir ", dir_, "/groups: ", ec.message()));
  }
  // Private to the user sluice-cp runs as, whatever made them (the state holds secrets, if
  // encrypted, and the key may be kept here too).
  for (const std::string& dir : {dir_, dir_ + "/groups"}) {
    if (::chmod(dir.c_str(), 0700) != 0) {
      return absl::InternalError(
          absl::StrCat("cannot make ", dir, " private (mode 0700): ", errnoText()));
    }
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir_ + "/groups", ec)) {
    if (entry.is_regular_file() && ::chmod(entry.path().c_str(), 0600) != 0) {
      return absl::InternalError(absl::StrCat("cannot make ", entry.path().string(),
                                              " private (mode 0600): ", errnoText()));
    }
  }
  return absl::OkStatus();
}

std::string StateStore::aadFor(const std::string& group, const std::string& path) {
  return absl::StrCat("sluice-cp state v1\n", group, "\n", path);
}

absl::StatusOr<std::vector<sluice::control_plane::v1::GroupState>> StateStore::load() const {
  std::vector<sluice::control_plane::v1::GroupState> out;
  std::error_code ec;
  std::vector<std::string> paths;
  for (const auto& entry : std::filesystem::directory_iterator(dir_ + "/groups", ec)) {
    const std::string name = entry.path().filename().string();
    if (absl::EndsWith(name, ".json")) {
      paths.push_back(entry.path().string());
    }
  }
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot list ", dir_, "/groups: ", ec.message()));
  }
  std::sort(paths.begin(), paths.end());
  for (const std::string& path : paths) {
    auto text = readFile(path);
    if (!text.ok()) {
      return text.status();
    }
    sluice::control_plane::v1::GroupState state;
    google::protobuf::util::JsonParseOptions opts;
    opts.ignore_unknown_fields = true;  // Written by a newer sluice-cp: keep what we know.
    auto status = google::protobuf::util::JsonStringToMessage(*text, &state, opts);
    if (!status.ok()) {
      return absl::DataLossError(absl::StrCat(path, ": ", std::string(status.message())));
    }
    const std::string expected = pathFor(state.group());
    if (!validGroupName(state.group()) ||
        std::filesystem::path(expected).filename() != std::filesystem::path(path).filename()) {
      return absl::DataLossError(
          absl::StrCat(path, ": names group \"", state.group(), "\", which does not match"));
    }
    bool in_clear = false;
    absl::Status opened_all = Config::forEachSensitive(
        state, [&](const std::string& field, std::string& value) -> absl::Status {
          if (!StateCipher::isSealed(value)) {
            in_clear = true;
            return absl::OkStatus();
          }
          if (cipher_ == nullptr) {
            return absl::FailedPreconditionError(
                absl::StrCat(path, ": ", field, " is encrypted and no state key was given"));
          }
          auto opened = cipher_->open(value, aadFor(state.group(), field));
          if (!opened.ok()) {
            return absl::DataLossError(
                absl::StrCat(path, ": ", field, ": ", opened.status().message()));
          }
          value = std::move(*opened);
          return absl::OkStatus();
        });
    if (!opened_all.ok()) {
      return opened_all;
    }
    if (in_clear && cipher_ != nullptr) {
      spdlog::warn("state: {} holds secrets in clear; writing it again, encrypted", path);
      if (absl::Status s = save(state); !s.ok()) {
        return s;
      }
    }
    out.push_back(std::move(state));
  }
  return out;
}

absl::Status StateStore::save(const sluice::control_plane::v1::GroupState& state) const {
  sluice::control_plane::v1::GroupState sealed = state;
  absl::Status status = Config::forEachSensitive(
      sealed, [&](const std::string& field, std::string& value) -> absl::Status {
        if (cipher_ == nullptr) {
          return absl::FailedPreconditionError(absl::StrCat(
              "group \"", state.group(), "\": ", field, ": no state key to encrypt it with"));
        }
        auto s = cipher_->seal(value, aadFor(state.group(), field));
        if (!s.ok()) {
          return s.status();
        }
        value = std::move(*s);
        return absl::OkStatus();
      });
  if (!status.ok()) {
    return status;
  }
  return writeFileAtomically(pathFor(state.group()), Config::toJson(sealed, true) + "\n", 0600);
}

}  // namespace ControlPlane
}  // namespace sluice
