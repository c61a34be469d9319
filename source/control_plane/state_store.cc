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
#include "source/common/config/utility.h"

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

absl::Status writeFileAtomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
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
  return absl::OkStatus();
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
    out.push_back(std::move(state));
  }
  return out;
}

absl::Status StateStore::save(const sluice::control_plane::v1::GroupState& state) const {
  return writeFileAtomically(pathFor(state.group()), Config::toJson(state, true) + "\n");
}

}  // namespace ControlPlane
}  // namespace sluice
