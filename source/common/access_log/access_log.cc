#include "source/common/access_log/access_log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace sluice {
namespace AccessLog {

absl::StatusOr<FileSinkSharedPtr> FileSink::open(const std::string& path) {
  FILE* f;
  if (path == "-" || path == "/dev/stdout") {
    f = stdout;
  } else if (path == "/dev/stderr") {
    f = stderr;
  } else {
    f = fopen(path.c_str(), "ae");
    if (f == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot open access log \"", path, "\": ", strerror(errno)));
    }
  }
  return FileSinkSharedPtr(new FileSink(path, f));
}

absl::Status FileSink::checkWritable(const std::string& path) {
  if (path == "-" || path == "/dev/stdout" || path == "/dev/stderr") {
    return absl::OkStatus();
  }
  struct stat st;
  if (stat(path.c_str(), &st) == 0) {
    // access() says a directory is writable; fopen() then fails with EISDIR.
    if (S_ISDIR(st.st_mode)) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot write access log \"", path, "\": is a directory"));
    }
    if (access(path.c_str(), W_OK) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot write access log \"", path, "\": ", strerror(errno)));
    }
    return absl::OkStatus();
  }
  const size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : path.substr(0, std::max<size_t>(slash, 1));
  if (access(dir.c_str(), W_OK) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot create access log \"", path, "\" in ", dir, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

FileSink::FileSink(std::string path, FILE* file)
    : path_(std::move(path)), file_(file), owns_file_(file != stdout && file != stderr) {
  thread_ = std::thread([this]() { run(); });
}

FileSink::~FileSink() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
  if (owns_file_) {
    fclose(file_);
  } else {
    fflush(file_);
  }
}

void FileSink::submit(std::string&& batch) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(batch));
  ++submitted_;
}

void FileSink::flush() {
  absl::MutexLock lock(&mu_);
  const uint64_t target = submitted_;
  std::pair<FileSink*, uint64_t> arg(this, target);
  mu_.Await(absl::Condition(
      +[](std::pair<FileSink*, uint64_t>* a) { return a->first->written_ >= a->second; }, &arg));
}

void FileSink::run() {
  for (;;) {
    std::vector<std::string> work;
    bool stop;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](FileSink* s)
               ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) { return !s->queue_.empty() || s->stop_; },
          this));
      work.swap(queue_);
      stop = stop_;
    }
    for (const std::string& b : work) {
      fwrite(b.data(), 1, b.size(), file_);
    }
    fflush(file_);
    {
      absl::MutexLock lock(&mu_);
      written_ += work.size();
    }
    if (stop) {
      absl::MutexLock lock(&mu_);
      if (queue_.empty()) return;
    }
  }
}

void WorkerBuffer::append(const FileSinkSharedPtr& sink, const std::string& line) {
  for (Pending& p : pending_) {
    if (p.sink == sink) {
      p.data.append(line);
      if (p.data.size() > 64 * 1024) {
        p.sink->submit(std::move(p.data));
        p.data.clear();
      }
      return;
    }
  }
  pending_.push_back(Pending{sink, line});
}

void WorkerBuffer::flush() {
  for (Pending& p : pending_) {
    if (!p.data.empty()) {
      p.sink->submit(std::move(p.data));
    }
  }
  pending_.clear();
}

}  // namespace AccessLog
}  // namespace sluice
