#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace sluice {
namespace Admin {

// One admin answer.
struct Response {
  uint32_t status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// (method, path without the query, query) -> response. Runs on the main thread.
using Handler = std::function<Response(const std::string& method, const std::string& path,
                                       const std::string& query)>;

// Admin endpoints that extensions add (the cache filter's `DELETE /cache`) without the admin
// server knowing them: a filter factory registers its paths through
// Http::FactoryContext::admin_handlers, and the admin server answers a path it does not serve
// itself with the handler registered for it (any method; the handler answers 405 itself).
// Registrations last for the process (a process-wide object of the filter, kept across config
// versions, usually owns what the handler captures). Thread-safe; handlers run on the main
// thread.
class HandlerRegistry {
 public:
  // Adds the handler of `path` (exact match, e.g. "/cache"), or replaces it. `help` is its line
  // in the admin's index page ("DELETE /cache   purge the response cache").
  void add(const std::string& path, std::string help, Handler handler) {
    absl::MutexLock lock(&mu_);
    entries_[path] = Entry{std::move(help), std::move(handler)};
  }
  // The handler of `path`, or an empty function.
  Handler find(const std::string& path) const {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(path);
    return it == entries_.end() ? Handler() : it->second.handler;
  }
  // The help lines, by path.
  std::vector<std::string> help() const {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> out;
    for (const auto& [path, e] : entries_) out.push_back(e.help);
    return out;
  }

 private:
  struct Entry {
    std::string help;
    Handler handler;
  };
  mutable absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace Admin
}  // namespace sluice
