#include "source/extensions/filters/http/auth/jwks.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace Extensions {
namespace Auth {

namespace {

constexpr size_t kMaxJwksBytes = 1024 * 1024;

class HttpJwksFetcher : public JwksFetcher {
 public:
  HttpJwksFetcher(Event::Dispatcher& dispatcher, HttpUri uri, std::chrono::milliseconds timeout,
                  Network::DnsResolver* resolver)
      : client_(dispatcher, std::move(uri), options(timeout), resolver) {}
  ~HttpJwksFetcher() override {
    if (request_ != nullptr) request_->cancel();
  }

  void fetch(Callback cb) override {
    if (request_ != nullptr) request_->cancel();  // one fetch at a time
    Http::AsyncRequest req;
    req.method = "GET";
    req.headers.emplace_back("accept", "application/json");
    request_ = &client_.send(
        std::move(req), [this, cb = std::move(cb)](absl::StatusOr<Http::AsyncResponse> response) {
          request_ = nullptr;
          if (!response.ok()) {
            if (absl::IsResourceExhausted(response.status())) {
              cb(absl::ResourceExhaustedError("JWKS larger than 1 MiB"));
            } else {
              cb(response.status());
            }
          } else if (response->status != 200) {
            cb(absl::UnavailableError(absl::StrCat("HTTP status ", response->status)));
          } else {
            cb(std::move(response->body));
          }
        });
  }

 private:
  static Http::AsyncClient::Options options(std::chrono::milliseconds timeout) {
    Http::AsyncClient::Options o;
    o.timeout = timeout;
    // Every fetch on a new connection (and a new resolution): a JWKS server that moves is found
    // on the next refresh.
    o.keepalive = std::chrono::milliseconds(0);
    o.max_response_bytes = kMaxJwksBytes;
    return o;
  }

  Http::AsyncClient client_;
  Http::AsyncClient::Request* request_ = nullptr;
};

}  // namespace

std::unique_ptr<JwksFetcher> createHttpJwksFetcher(Event::Dispatcher& dispatcher, HttpUri uri,
                                                   std::chrono::milliseconds timeout,
                                                   Network::DnsResolver* resolver) {
  return std::make_unique<HttpJwksFetcher>(dispatcher, std::move(uri), timeout, resolver);
}

RemoteJwks::RemoteJwks(Event::Dispatcher& main, std::unique_ptr<JwksFetcher> fetcher,
                       std::string uri, Stats::Counter* fetches, Stats::Counter* failures)
    : main_(main),
      fetcher_(std::move(fetcher)),
      uri_(std::move(uri)),
      fetches_(fetches),
      failures_(failures) {
  timer_ = main_.createTimer([this]() { onTimer(); });
}

RemoteJwks::~RemoteJwks() = default;

void RemoteJwks::configure(const Settings& settings) {
  settings_ = settings;
  if (!started_) {
    started_ = true;
    startFetch();
  }
}

std::shared_ptr<void> RemoteJwks::lease() {
  std::shared_ptr<void> l = lease_.lock();
  if (l == nullptr) {
    l = std::make_shared<int>(0);
    lease_ = l;
  }
  if (idle_) {
    idle_ = false;
    if (!in_flight_) startFetch();  // the keys may be old: refresh now
  }
  return l;
}

void RemoteJwks::startFetch() {
  in_flight_ = true;
  timer_->disableTimer();
  last_fetch_start_ = main_.now();
  if (fetches_ != nullptr) fetches_->inc();
  // The source outlives its fetcher's callbacks (it owns the fetcher; both live on main).
  fetcher_->fetch([this](absl::StatusOr<std::string> body) { onFetched(std::move(body)); });
}

void RemoteJwks::onFetched(absl::StatusOr<std::string> body) {
  in_flight_ = false;
  absl::Status error;
  if (!body.ok()) {
    error = body.status();
  } else {
    std::vector<std::string> skipped;
    auto set = parseJwks(*body, true, &skipped);
    for (const std::string& s : skipped) {
      spdlog::warn("JWKS {}: key skipped: {}", uri_, s);
    }
    if (!set.ok()) {
      error = set.status();
    } else if ((*set)->keys.empty()) {
      error = absl::InvalidArgumentError("no usable signing key");
    } else {
      {
        absl::MutexLock lock(&mu_);
        keys_ = *set;
        generation_.fetch_add(1, std::memory_order_release);
      }
      backoff_ = std::chrono::milliseconds(0);
      timer_->enableTimer(settings_.cache_duration);
    }
  }
  if (!error.ok()) {
    if (failures_ != nullptr) failures_->inc();
    // Retry sooner than the refresh period, doubling from 1s; the old keys keep serving.
    backoff_ =
        std::min(settings_.cache_duration, std::max(std::chrono::milliseconds(1000), backoff_ * 2));
    spdlog::warn("JWKS {}: fetch failed ({}); {} cached keys kept, retry in {} ms", uri_,
                 std::string(error.message()), keys() ? keys()->keys.size() : 0, backoff_.count());
    timer_->enableTimer(backoff_);
  }
  notifyWaiters();
}

void RemoteJwks::onTimer() {
  if (lease_.expired()) {
    idle_ = true;  // no policy uses it any more: stop refreshing
    return;
  }
  if (!in_flight_) startFetch();
}

KeySetConstSharedPtr RemoteJwks::keys() const {
  absl::MutexLock lock(&mu_);
  return keys_;
}

const KeySetConstSharedPtr& RemoteJwks::keysForThisThread() {
  struct Cached {
    uint64_t generation = 0;
    KeySetConstSharedPtr keys;
  };
  // RemoteJwks objects live as long as the process (SingletonManager), so the key never
  // names a dead object. A worker has one entry per remote provider.
  thread_local absl::flat_hash_map<const RemoteJwks*, Cached> t_keys;
  Cached& c = t_keys[this];
  if (c.generation != generation_.load(std::memory_order_acquire)) {
    absl::MutexLock lock(&mu_);
    c.keys = keys_;
    c.generation = generation_.load(std::memory_order_relaxed);
  }
  return c.keys;
}

void RemoteJwks::requestRefetch(Event::Dispatcher& worker, std::function<void()> done) {
  {
    absl::MutexLock lock(&mu_);
    waiters_.push_back(Waiter{&worker, std::move(done)});
  }
  std::weak_ptr<RemoteJwks> weak = weak_from_this();
  main_.post([weak]() {
    if (auto self = weak.lock()) self->onRefetchRequested();
  });
}

void RemoteJwks::onRefetchRequested() {
  if (in_flight_) return;  // the waiters hear when it ends
  if (main_.now() - last_fetch_start_ < settings_.min_refetch_interval) {
    notifyWaiters();  // rate-limited: answer with the keys we have
    return;
  }
  startFetch();
}

void RemoteJwks::notifyWaiters() {
  std::vector<Waiter> waiters;
  {
    absl::MutexLock lock(&mu_);
    waiters.swap(waiters_);
  }
  for (Waiter& w : waiters) w.dispatcher->post(std::move(w.done));
}

}  // namespace Auth
}  // namespace Extensions
}  // namespace sluice
