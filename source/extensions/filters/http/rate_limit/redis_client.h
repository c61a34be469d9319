#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "source/common/event/dispatcher.h"
#include "source/common/network/dns_resolver.h"
#include "source/extensions/filters/http/rate_limit/policy.h"

struct redisAsyncContext;
struct redisReply;

namespace sluice {
namespace Extensions {
namespace RateLimit {

class RedisCallbacks {
 public:
  virtual ~RedisCallbacks() = default;
  // The script's reply (any type, error replies included), or a failure: `reply` null and
  // `error` says what happened (connection refused, lost, ...). Called on the worker's loop.
  virtual void onRedisReply(const redisReply* reply, absl::string_view error) = 0;
};

// One EVALSHA in flight. The caller keeps the pointer to cancel it (the callbacks are then
// never called); the client keeps it until Redis answers or the connection goes.
class RedisRequest {
 public:
  void cancel() { callbacks_ = nullptr; }

 private:
  friend class RedisClient;
  RedisCallbacks* callbacks_ = nullptr;
  std::string command_;  // the EVALSHA command in RESP (kept to resend after NOSCRIPT)
  bool reloaded_script_ = false;
};
using RedisRequestSharedPtr = std::shared_ptr<RedisRequest>;

// A connection to one Redis (address, database, password) for one worker, created lazily by the
// first request that needs it (RedisClient::get) and driven by the worker's dispatcher through
// HiredisAdapter. On connect it sends AUTH and SELECT (when configured) and SCRIPT LOAD, then
// runs the rate-limit script with EVALSHA (a NOSCRIPT reply reloads the script and sends the
// request again, once). Replies come back in order, so requests are matched FIFO.
//
// A host name is resolved (asynchronously, with the worker's resolver) every time the client
// connects, so a Redis that moves is found on the next reconnect; requests sent meanwhile wait
// for the connection like requests sent while it is being established, and kConnectTimeout
// covers both. Failures never wait: while the connection is down and backing off, requests fail
// at once;
// a lost connection fails every request in flight. A connection that was working is reopened on
// the next loop iteration; failed attempts back off from 50 ms doubling to 1 s (jittered) and go
// on in the background until Redis is back. Errors are logged at most
// once per 10 s per worker and address; recovery is logged once.
//
// Worker-local. Lives until its thread exits (thread_local registry), when the worker's
// dispatcher still exists.
class RedisClient {
 public:
  static constexpr std::chrono::milliseconds kConnectTimeout{1000};
  static constexpr std::chrono::milliseconds kMinBackoff{50};
  static constexpr std::chrono::milliseconds kMaxBackoff{1000};
  // Requests in flight on one connection beyond which new ones fail at once (Redis stuck).
  static constexpr size_t kMaxInFlight = 10000;

  // `resolver` (on `dispatcher`) resolves a host name in settings.host; null: the host must be
  // an IP literal.
  RedisClient(Event::Dispatcher& dispatcher, const RedisSettings& settings,
              Network::DnsResolver* resolver = nullptr);
  ~RedisClient();

  // Sends `command` (the script's EVALSHA in RESP: scriptCommand()). Returns null when the
  // request fails right away (Redis down, backing off): `error` says why and the callbacks are
  // not called.
  RedisRequestSharedPtr send(std::string&& command, RedisCallbacks& callbacks, std::string& error);

  bool connected() const { return connected_; }
  // Logs a problem with this Redis: at most one line per 10 s (per worker and address).
  void logError(const std::string& message);
  const std::string& address() const { return address_; }

  // The client for `settings` of the calling thread (a worker), created on first use. A host
  // name is resolved with the thread's resolver (one per worker, made with `dns_options` the
  // first time one is needed; null: the system's servers).
  static RedisClient& get(Event::Dispatcher& dispatcher, const RedisSettings& settings,
                          const Network::DnsResolverOptions* dns_options = nullptr);
  // Destroys the calling thread's clients and resolver (tests: before their dispatcher goes).
  static void clearThread();

 private:
  void connect();
  // Connects to `ip` (settings_.host, or what it resolved to).
  void connectTo(const std::string& ip);
  void onResolved(Network::DnsResolutionStatus status, absl::string_view details,
                  std::vector<Network::DnsResponse>&& answer);
  // Fails the requests sent while the host name was being resolved.
  void failWaiting(const std::string& error);
  void scheduleReconnect();
  bool issue(const RedisRequestSharedPtr& request);
  void onConnect(int status);
  void onDisconnect(const redisAsyncContext* ac);
  void onReply(redisAsyncContext* ac, redisReply* reply);
  void onSetupReply(redisReply* reply, const char* what);

  Event::Dispatcher& dispatcher_;
  const RedisSettings settings_;
  const std::string address_;
  redisAsyncContext* ctx_ = nullptr;
  bool connected_ = false;
  bool was_down_ = false;  // an error was logged since the last successful connect
  bool shutting_down_ = false;
  std::deque<RedisRequestSharedPtr> in_flight_;  // EVALSHAs in the order sent
  Network::DnsResolver* const resolver_;
  Network::DnsQueryPtr resolving_;             // settings_.host being resolved
  std::deque<RedisRequestSharedPtr> waiting_;  // sent meanwhile: issued once connecting
  Event::TimerPtr connect_timer_;
  Event::TimerPtr reconnect_timer_;
  std::chrono::milliseconds backoff_{kMinBackoff};
  std::string last_error_;
  std::chrono::steady_clock::time_point last_log_{};
  uint64_t rng_state_;
};

}  // namespace RateLimit
}  // namespace Extensions
}  // namespace sluice
