#include "source/extensions/filters/http/rate_limit/redis_client.h"

#include <hiredis/async.h>

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "source/common/network/host_name.h"
#include "source/common/stats/stats.h"
#include "source/extensions/filters/http/rate_limit/hiredis_adapter.h"
#include "source/extensions/filters/http/rate_limit/redis_script.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace Extensions {
namespace RateLimit {
namespace {

// Each worker's clients, by RedisSettings::connection_key, and the resolver of their host names.
// Destroyed when the worker's thread exits (the clients first), before the Worker (and its
// dispatcher) is destroyed on the main thread.
struct ThreadClients {
  Network::DnsResolverPtr resolver;
  absl::flat_hash_map<std::string, std::unique_ptr<RedisClient>> clients;
};
thread_local ThreadClients t_clients;

std::string contextError(const redisAsyncContext* ac, const std::string& fallback) {
  return ac != nullptr && ac->c.err != 0 ? std::string(ac->c.errstr) : fallback;
}

}  // namespace

constexpr std::chrono::milliseconds RedisClient::kConnectTimeout;
constexpr std::chrono::milliseconds RedisClient::kMinBackoff;
constexpr std::chrono::milliseconds RedisClient::kMaxBackoff;
constexpr size_t RedisClient::kMaxInFlight;

RedisClient::RedisClient(Event::Dispatcher& dispatcher, const RedisSettings& settings,
                         Network::DnsResolver* resolver)
    : dispatcher_(dispatcher),
      settings_(settings),
      address_(settings.address()),
      resolver_(resolver),
      rng_state_(reinterpret_cast<uintptr_t>(this) | 1) {
  connect_timer_ = dispatcher_.createTimer([this]() {
    if (resolving_ != nullptr) {
      resolving_.reset();
      last_error_ = absl::StrCat("cannot resolve ", settings_.host, ": timeout");
      logError(last_error_);
      failWaiting(last_error_);
      scheduleReconnect();
      return;
    }
    if (ctx_ == nullptr || connected_) {
      return;
    }
    redisAsyncContext* ac = ctx_;
    ctx_ = nullptr;
    last_error_ = "connect timeout";
    logError(absl::StrCat("cannot connect: ", last_error_));
    redisAsyncFree(ac);  // fails what was queued on it
    scheduleReconnect();
  });
  reconnect_timer_ = dispatcher_.createTimer([this]() { connect(); });
}

RedisClient::~RedisClient() {
  shutting_down_ = true;
  if (ctx_ != nullptr) {
    redisAsyncContext* ac = ctx_;
    ctx_ = nullptr;
    redisAsyncFree(ac);
  }
}

RedisClient& RedisClient::get(Event::Dispatcher& dispatcher, const RedisSettings& settings,
                              const Network::DnsResolverOptions* dns_options) {
  const std::string& key = settings.connection_key;
  auto it = t_clients.clients.find(key);
  if (it == t_clients.clients.end()) {
    if (!Network::isIpLiteral(settings.host) && t_clients.resolver == nullptr) {
      auto r = Network::createDnsResolver(
          dispatcher, dns_options != nullptr ? *dns_options : Network::DnsResolverOptions());
      if (r.ok()) {
        t_clients.resolver = std::move(*r);
      } else {
        spdlog::error("rate_limit: {}", std::string(r.status().message()));
      }
    }
    it = t_clients.clients
             .emplace(key,
                      std::make_unique<RedisClient>(dispatcher, settings, t_clients.resolver.get()))
             .first;
  }
  return *it->second;
}

void RedisClient::clearThread() {
  t_clients.clients.clear();
  t_clients.resolver.reset();
}

RedisRequestSharedPtr RedisClient::send(std::string&& command, RedisCallbacks& callbacks,
                                        std::string& error) {
  if (ctx_ == nullptr && resolving_ == nullptr) {
    if (reconnect_timer_->enabled()) {
      error = last_error_;  // down and backing off: fail now, never wait
      return nullptr;
    }
    connect();
    if (ctx_ == nullptr && resolving_ == nullptr) {
      error = last_error_;
      return nullptr;
    }
  }
  if (in_flight_.size() + waiting_.size() >= kMaxInFlight) {
    error = "too many requests in flight";
    return nullptr;
  }
  auto request = std::make_shared<RedisRequest>();
  request->callbacks_ = &callbacks;
  request->command_ = std::move(command);
  if (ctx_ == nullptr) {
    waiting_.push_back(std::move(request));  // the host name is being resolved
    return waiting_.back();
  }
  if (!issue(request)) {
    error = contextError(ctx_, "cannot send the command");
    return nullptr;
  }
  return request;
}

bool RedisClient::issue(const RedisRequestSharedPtr& request) {
  const int rc = redisAsyncFormattedCommand(
      ctx_,
      [](redisAsyncContext* ac, void* reply, void*) {
        static_cast<RedisClient*>(ac->data)->onReply(ac, static_cast<redisReply*>(reply));
      },
      nullptr, request->command_.data(), request->command_.size());
  if (rc != REDIS_OK) {
    return false;
  }
  in_flight_.push_back(request);
  return true;
}

void RedisClient::connect() {
  reconnect_timer_->disableTimer();
  if (Network::isIpLiteral(settings_.host)) {
    connectTo(settings_.host);
    return;
  }
  // A host name: resolved again on every connect (hiredis would block in getaddrinfo).
  if (resolver_ == nullptr) {
    last_error_ = absl::StrCat("cannot resolve ", settings_.host, ": no DNS resolver");
    logError(last_error_);
    scheduleReconnect();
    return;
  }
  connect_timer_->enableTimer(kConnectTimeout);
  resolving_ =
      resolver_->resolve(settings_.host, Network::DnsLookupFamily::V4Preferred,
                         [this](Network::DnsResolutionStatus status, absl::string_view details,
                                std::vector<Network::DnsResponse>&& answer) {
                           onResolved(status, details, std::move(answer));
                         });
}

void RedisClient::onResolved(Network::DnsResolutionStatus status, absl::string_view details,
                             std::vector<Network::DnsResponse>&& answer) {
  resolving_.reset();
  if (status != Network::DnsResolutionStatus::Success || answer.empty()) {
    connect_timer_->disableTimer();
    last_error_ = absl::StrCat(
        "cannot resolve ", settings_.host, ": ",
        answer.empty() && status == Network::DnsResolutionStatus::Success ? "no address" : details);
    logError(last_error_);
    failWaiting(last_error_);
    scheduleReconnect();
    return;
  }
  connectTo(answer.front().address.ip());
  if (ctx_ == nullptr) {
    failWaiting(last_error_);
    return;
  }
  std::deque<RedisRequestSharedPtr> waiting;
  waiting.swap(waiting_);
  for (RedisRequestSharedPtr& r : waiting) {
    if (r->callbacks_ != nullptr && !issue(r)) {
      waiting_.push_back(std::move(r));
    }
  }
  failWaiting(contextError(ctx_, "cannot send the command"));
}

void RedisClient::failWaiting(const std::string& error) {
  std::deque<RedisRequestSharedPtr> waiting;
  waiting.swap(waiting_);
  for (RedisRequestSharedPtr& r : waiting) {
    RedisCallbacks* callbacks = r->callbacks_;
    r->callbacks_ = nullptr;
    if (callbacks != nullptr) callbacks->onRedisReply(nullptr, error);
  }
}

void RedisClient::connectTo(const std::string& ip) {
  redisAsyncContext* ac = redisAsyncConnect(ip.c_str(), settings_.port);
  if (ac == nullptr) {
    last_error_ = "cannot allocate a connection";
    logError(last_error_);
    scheduleReconnect();
    return;
  }
  if (ac->err != 0) {
    last_error_ = ac->c.errstr;
    logError(absl::StrCat("cannot connect: ", last_error_));
    redisAsyncFree(ac);
    scheduleReconnect();
    return;
  }
  ctx_ = ac;
  ac->data = this;
  HiredisAdapter::attach(dispatcher_, ac);
  redisAsyncSetConnectCallback(ac, [](const redisAsyncContext* c, int status) {
    static_cast<RedisClient*>(c->data)->onConnect(status);
  });
  redisAsyncSetDisconnectCallback(ac, [](const redisAsyncContext* c, int) {
    static_cast<RedisClient*>(c->data)->onDisconnect(c);
  });
  auto setup = [](redisAsyncContext* c, void* reply, void* what) {
    static_cast<RedisClient*>(c->data)->onSetupReply(static_cast<redisReply*>(reply),
                                                     static_cast<const char*>(what));
  };
  // Pipelined ahead of any EVALSHA: Redis answers in order.
  if (!settings_.password.empty()) {
    redisAsyncCommand(ac, setup, const_cast<char*>("AUTH"), "AUTH %b", settings_.password.data(),
                      settings_.password.size());
  }
  if (settings_.database != 0) {
    redisAsyncCommand(ac, setup, const_cast<char*>("SELECT"), "SELECT %u", settings_.database);
  }
  redisAsyncCommand(ac, setup, const_cast<char*>("SCRIPT LOAD"), "SCRIPT LOAD %b",
                    scriptText().data(), scriptText().size());
  connect_timer_->enableTimer(kConnectTimeout);
}

void RedisClient::scheduleReconnect() {
  if (shutting_down_) {
    return;
  }
  // xorshift64: jitter so workers and gateways do not reconnect in lockstep.
  rng_state_ ^= rng_state_ << 13;
  rng_state_ ^= rng_state_ >> 7;
  rng_state_ ^= rng_state_ << 17;
  const int64_t half = backoff_.count() / 2;
  reconnect_timer_->enableTimer(
      std::chrono::milliseconds(half + static_cast<int64_t>(rng_state_ % (half + 1))));
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
}

void RedisClient::onConnect(int status) {
  connect_timer_->disableTimer();
  if (status != REDIS_OK) {
    // hiredis frees the context right after this callback and fails what was queued on it.
    last_error_ = contextError(ctx_, "connect failed");
    ctx_ = nullptr;
    connected_ = false;
    logError(absl::StrCat("cannot connect: ", last_error_));
    scheduleReconnect();
    return;
  }
  connected_ = true;
  backoff_ = kMinBackoff;
  if (was_down_) {
    was_down_ = false;
    spdlog::info("rate_limit: redis {}: connected", address_);
  }
}

void RedisClient::onDisconnect(const redisAsyncContext* ac) {
  if (shutting_down_) {
    return;
  }
  if (ctx_ == ac) {
    ctx_ = nullptr;
  }
  const bool was_healthy = connected_;
  connected_ = false;
  connect_timer_->disableTimer();
  last_error_ = contextError(ac, "connection closed");
  logError(absl::StrCat("connection lost: ", last_error_));
  if (was_healthy) {
    // A working connection went away (Redis restarted, CLIENT KILL, an idle timeout): try again
    // on the next loop iteration; backoff starts if that attempt fails.
    reconnect_timer_->enableTimer(std::chrono::milliseconds(0));
  } else {
    scheduleReconnect();
  }
}

void RedisClient::onReply(redisAsyncContext* ac, redisReply* reply) {
  if (in_flight_.empty()) {
    return;
  }
  RedisRequestSharedPtr request = std::move(in_flight_.front());
  in_flight_.pop_front();
  if (shutting_down_) {
    return;
  }
  if (reply != nullptr && reply->type == REDIS_REPLY_ERROR &&
      absl::StartsWith(absl::string_view(reply->str, reply->len), "NOSCRIPT") &&
      !request->reloaded_script_ && ctx_ == ac) {
    // The script cache was flushed: load it again and resend (Redis keeps the order).
    request->reloaded_script_ = true;
    redisAsyncCommand(
        ac,
        [](redisAsyncContext* c, void* r, void* what) {
          static_cast<RedisClient*>(c->data)->onSetupReply(static_cast<redisReply*>(r),
                                                           static_cast<const char*>(what));
        },
        const_cast<char*>("SCRIPT LOAD"), "SCRIPT LOAD %b", scriptText().data(),
        scriptText().size());
    if (request->callbacks_ == nullptr || issue(request)) {
      return;
    }
  }
  RedisCallbacks* callbacks = request->callbacks_;
  request->callbacks_ = nullptr;
  if (callbacks == nullptr) {
    return;  // cancelled (timed out, or the stream went away)
  }
  if (reply == nullptr) {
    callbacks->onRedisReply(
        nullptr, contextError(ac, last_error_.empty() ? "connection closed" : last_error_));
  } else {
    callbacks->onRedisReply(reply, "");
  }
}

void RedisClient::onSetupReply(redisReply* reply, const char* what) {
  if (reply == nullptr || shutting_down_) {
    return;
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    logError(absl::StrCat(what, " failed: ", absl::string_view(reply->str, reply->len)));
  } else if (absl::string_view(what) == "SCRIPT LOAD" &&
             (reply->type != REDIS_REPLY_STRING ||
              absl::string_view(reply->str, reply->len) != scriptSha1())) {
    logError("SCRIPT LOAD returned an unexpected SHA");
  }
}

void RedisClient::logError(const std::string& message) {
  was_down_ = true;
  const auto now = std::chrono::steady_clock::now();
  if (last_log_ != std::chrono::steady_clock::time_point{} &&
      now - last_log_ < std::chrono::seconds(10)) {
    return;
  }
  last_log_ = now;
  spdlog::warn(
      "rate_limit: redis {}: {} (worker {}; the rate_limit.<policy>.redis_error stat counts "
      "every affected request, this line repeats at most every 10s)",
      address_, message, Stats::t_slot);
}

}  // namespace RateLimit
}  // namespace Extensions
}  // namespace sluice
