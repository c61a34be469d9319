#pragma once

#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace sluice {
namespace AccessLog {

// An access log file. Workers never write to it directly: they hand over batches of lines
// (one lock per batch, not per request) and a background thread does the file I/O.
class FileSink {
 public:
  static absl::StatusOr<std::shared_ptr<FileSink>> open(const std::string& path);
  // Whether open() would succeed, without creating the file.
  static absl::Status checkWritable(const std::string& path);
  ~FileSink();
  void submit(std::string&& batch);
  const std::string& path() const { return path_; }
  // Waits until everything submitted so far is written (tests, shutdown).
  void flush();

 private:
  FileSink(std::string path, FILE* file);
  void run();

  const std::string path_;
  FILE* file_;
  bool owns_file_;
  absl::Mutex mu_;
  std::vector<std::string> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t submitted_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t written_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};
using FileSinkSharedPtr = std::shared_ptr<FileSink>;

// A worker's pending lines, per sink. Flushed by the worker every 100 ms and at exit.
class WorkerBuffer {
 public:
  void append(const FileSinkSharedPtr& sink, const std::string& line);
  void flush();

 private:
  struct Pending {
    FileSinkSharedPtr sink;
    std::string data;
  };
  std::vector<Pending> pending_;
};

}  // namespace AccessLog
}  // namespace sluice
