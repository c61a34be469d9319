#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "source/common/event/dispatcher.h"
#include "source/common/http/async_client.h"
#include "source/common/network/connection.h"
#include "source/common/network/dns_resolver.h"
#include "source/common/stats/stats.h"
#include "source/common/tls/context.h"
#include "source/extensions/filters/http/auth/keys.h"

namespace sluice {
namespace Extensions {
namespace Auth {

// The remote JWKS URI: Http::HttpUri (source/common/http/async_client.h); a URI with user info
// is refused by the policy's validation.
using HttpUri = Http::HttpUri;
using Http::parseHttpUri;

// Gets a JWKS document. One fetch at a time; the callback runs on the dispatcher's thread,
// never from inside fetch().
class JwksFetcher {
 public:
  using Callback = std::function<void(absl::StatusOr<std::string> body)>;
  virtual ~JwksFetcher() = default;
  virtual void fetch(Callback cb) = 0;
};

// HTTP/1.1 GET with Http::AsyncClient (one connection per fetch: refreshes are minutes apart),
// on the main dispatcher. Bodies above 1 MiB, non-200 answers, connect failures, a host name
// that does not resolve (with `resolver`, on the same dispatcher; null: host names fail) and
// `timeout` (which covers the resolution too) are errors.
std::unique_ptr<JwksFetcher> createHttpJwksFetcher(Event::Dispatcher& dispatcher, HttpUri uri,
                                                   std::chrono::milliseconds timeout,
                                                   Network::DnsResolver* resolver = nullptr);

// A remote JWKS: fetched on the main thread, refreshed every `cache_duration`, refetched when a
// token names an unknown `kid` (at most once per `min_refetch_interval`), retried with backoff
// after a failure while the last good keys keep serving. One per (policy, provider URI), kept
// in the process's SingletonManager so a config reload keeps its keys.
//
// Threads: configure/lease/fetch handling run on the main thread. Workers call
// keysForThisThread() on the hot path: a relaxed generation check against a thread-local copy,
// and the mutex only when the keys changed. requestRefetch() may be called from any thread.
class RemoteJwks : public std::enable_shared_from_this<RemoteJwks> {
 public:
  struct Settings {
    std::chrono::milliseconds cache_duration{300000};
    std::chrono::milliseconds min_refetch_interval{10000};
  };
  RemoteJwks(Event::Dispatcher& main, std::unique_ptr<JwksFetcher> fetcher, std::string uri,
             Stats::Counter* fetches, Stats::Counter* failures);
  ~RemoteJwks();

  // Main thread. New settings apply from the next fetch; the first call starts fetching.
  void configure(const Settings& settings);
  // Main thread. Compiled policies hold a lease; without one the background refresh stops (the
  // keys stay, for a config that brings the provider back).
  std::shared_ptr<void> lease();

  // Any thread: the current keys (nullptr before the first successful fetch) and their
  // generation (bumped on every change).
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  // Worker hot path: this thread's copy of the keys, refreshed when the generation moved.
  const KeySetConstSharedPtr& keysForThisThread();
  KeySetConstSharedPtr keys() const;

  // Any thread: a token named a `kid` we don't have. `done` is posted to `worker` when the
  // refetch it triggers (or joins) ends, or right away if a refetch happened less than
  // min_refetch_interval ago.
  void requestRefetch(Event::Dispatcher& worker, std::function<void()> done);

  const std::string& uri() const { return uri_; }

 private:
  void startFetch();
  void onFetched(absl::StatusOr<std::string> body);
  void onRefetchRequested();
  void onTimer();
  void notifyWaiters();

  Event::Dispatcher& main_;
  std::unique_ptr<JwksFetcher> fetcher_;
  const std::string uri_;
  Stats::Counter* fetches_;
  Stats::Counter* failures_;
  Event::TimerPtr timer_;
  Settings settings_;
  std::weak_ptr<void> lease_;
  bool started_ = false;
  bool in_flight_ = false;
  bool idle_ = false;  // refresh stopped: no lease
  std::chrono::milliseconds backoff_{0};
  std::chrono::steady_clock::time_point last_fetch_start_{};

  std::atomic<uint64_t> generation_{0};
  mutable absl::Mutex mu_;
  KeySetConstSharedPtr keys_ ABSL_GUARDED_BY(mu_);
  struct Waiter {
    Event::Dispatcher* dispatcher;
    std::function<void()> done;
  };
  std::vector<Waiter> waiters_ ABSL_GUARDED_BY(mu_);
};
using RemoteJwksSharedPtr = std::shared_ptr<RemoteJwks>;

}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
