#include "source/extensions/filters/http/auth/jwks.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "source/common/http/codec.h"
#include "source/common/http/http1/codec_impl.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace Extensions {
namespace Auth {

absl::StatusOr<HttpUri> parseHttpUri(const std::string& uri) {
  absl::string_view rest = uri;
  HttpUri out;
  if (absl::ConsumePrefix(&rest, "https://")) {
    out.https = true;
  } else if (!absl::ConsumePrefix(&rest, "http://")) {
    return absl::InvalidArgumentError("must start with http:// or https://");
  }
  const size_t slash = rest.find('/');
  absl::string_view authority = rest.substr(0, slash);
  out.path = slash == absl::string_view::npos ? "/" : std::string(rest.substr(slash));
  for (char c : out.path) {
    if (c <= 0x20 || c == 0x7f || c == '#') {
      return absl::InvalidArgumentError("invalid character in the path");
    }
  }
  std::string host;
  uint32_t port = out.https ? 443 : 80;
  absl::string_view port_text;
  if (absl::StartsWith(authority, "[")) {
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) return absl::InvalidArgumentError("unclosed [ in host");
    host = std::string(authority.substr(1, close - 1));
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return absl::InvalidArgumentError("unexpected text after ]");
      port_text = after.substr(1);
    }
  } else {
    const size_t colon = authority.rfind(':');
    host = std::string(authority.substr(0, colon));
    if (colon != absl::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (!port_text.empty() || absl::EndsWith(authority, ":")) {
    if (!absl::SimpleAtoi(port_text, &port) || port == 0 || port > 65535) {
      return absl::InvalidArgumentError("invalid port");
    }
  }
  if (host.empty()) return absl::InvalidArgumentError("host is required");
  const std::string ip = host == "localhost" ? "127.0.0.1" : host;
  out.port = port;
  if (!Network::Address::parse(ip, port, out.address)) {
    if (!Network::isValidHostName(host)) {
      return absl::InvalidArgumentError(
          absl::StrCat("host \"", host, "\" is not an IP address or a valid host name"));
    }
    out.host_name = host;  // resolved before each fetch
  }
  out.host_header = std::string(authority);
  return out;
}

namespace {

constexpr size_t kMaxJwksBytes = 1024 * 1024;

class HttpJwksFetcher : public JwksFetcher,
                        public Network::ConnectionCallbacks,
                        public Http::ResponseDecoder,
                        public Http::StreamCallbacks {
 public:
  HttpJwksFetcher(Event::Dispatcher& dispatcher, HttpUri uri, std::chrono::milliseconds timeout,
                  Network::DnsResolver* resolver)
      : dispatcher_(dispatcher), uri_(std::move(uri)), timeout_(timeout), resolver_(resolver) {
    timer_ = dispatcher_.createTimer([this]() { finish(absl::DeadlineExceededError("timeout")); });
  }
  ~HttpJwksFetcher() override { closeConnection(); }

  void fetch(Callback cb) override {
    cb_ = std::move(cb);
    done_ = false;
    status_ = 0;
    body_.clear();
    timer_->enableTimer(timeout_);
    if (uri_.host_name.empty()) {
      connect(uri_.address);
      return;
    }
    if (resolver_ == nullptr) {
      failLater("no DNS resolver for host names");
      return;
    }
    // Resolved again on every fetch: a JWKS server that moves is found on the next refresh.
    resolving_ = resolver_->resolve(
        uri_.host_name, Network::DnsLookupFamily::V4Preferred,
        [this](Network::DnsResolutionStatus status, absl::string_view details,
               std::vector<Network::DnsResponse>&& answer) {
          resolving_.reset();
          Network::Address to;
          if (status != Network::DnsResolutionStatus::Success || answer.empty() ||
              !Network::Address::parse(answer.front().address.ip(), uri_.port, to)) {
            finish(absl::UnavailableError(absl::StrCat(
                "cannot resolve ", uri_.host_name, ": ",
                status == Network::DnsResolutionStatus::Success ? "no address" : details)));
            return;
          }
          connect(to);
        });
  }

  void connect(const Network::Address& to) {
    conn_ = Network::Connection::connect(dispatcher_, to,
                                         uri_.tls != nullptr ? uri_.tls->newSocket() : nullptr);
    if (conn_ == nullptr) {
      failLater(absl::StrCat("connect: ", strerror(errno)));
      return;
    }
    conn_->setCallbacks(this);
    codec_ = std::make_unique<Http::Http1::ClientConnectionImpl>(*conn_);
  }

  // Fails the fetch on the next loop iteration (never from inside fetch()).
  void failLater(const std::string& err) {
    std::weak_ptr<bool> alive = alive_;
    dispatcher_.post([this, alive, err]() {
      if (!alive.expired()) finish(absl::UnavailableError(err));
    });
  }

  // Network::ConnectionCallbacks
  void onData(Buffer::Instance& data, bool end_stream) override {
    codec_->dispatch(data);
    if (!done_ && end_stream) {
      codec_->onConnectionClose();
      if (!done_) finish(absl::UnavailableError("connection closed before the response ended"));
    }
  }
  void onEvent(Network::ConnectionEvent event) override {
    if (done_) return;
    switch (event) {
      case Network::ConnectionEvent::Connected: {
        Http::RequestEncoder& enc = codec_->newStream(*this);
        enc.getStream().setCallbacks(this);
        Http::RequestHeaderMap h;
        h.method = "GET";
        h.path = uri_.path;
        h.add("host", uri_.host_header);
        h.add("accept", "application/json");
        h.add("connection", "close");
        enc.encodeHeaders(h, true);
        break;
      }
      case Network::ConnectionEvent::ConnectFailed:
        finish(
            absl::UnavailableError(conn_->transportFailureReason().empty()
                                       ? std::string("connect failed")
                                       : absl::StrCat("TLS: ", conn_->transportFailureReason())));
        break;
      case Network::ConnectionEvent::RemoteClose:
      case Network::ConnectionEvent::LocalClose:
        codec_->onConnectionClose();
        if (!done_) finish(absl::UnavailableError("connection closed before the response ended"));
        break;
    }
  }

  // Http::ResponseDecoder
  void decodeHeaders(Http::ResponseHeaderMapPtr&& headers, bool end_stream) override {
    status_ = headers->status;
    if (end_stream) complete();
  }
  void decodeData(Buffer::Instance& data, bool end_stream) override {
    if (body_.size() + data.length() > kMaxJwksBytes) {
      finish(absl::ResourceExhaustedError("JWKS larger than 1 MiB"));
      return;
    }
    body_ += data.toString();
    data.drain(data.length());
    if (end_stream) complete();
  }
  void decodeTrailers(Http::HeaderMapPtr&&) override { complete(); }

  // Http::StreamCallbacks
  void onResetStream(Http::StreamResetReason) override {
    finish(absl::UnavailableError("invalid HTTP response"));
  }
  void onAboveWriteBufferHighWatermark() override {}
  void onBelowWriteBufferLowWatermark() override {}

 private:
  struct Dead : public Event::DeferredDeletable {
    ~Dead() override {
      codec.reset();
      conn.reset();
    }
    std::unique_ptr<Http::Http1::ClientConnectionImpl> codec;
    Network::ConnectionPtr conn;
  };

  void complete() {
    if (status_ != 200) {
      finish(absl::UnavailableError(absl::StrCat("HTTP status ", status_)));
    } else {
      finish(std::move(body_));
    }
  }
  void closeConnection() {
    if (conn_ == nullptr) return;
    conn_->setCallbacks(nullptr);
    conn_->close(Network::Connection::CloseType::NoFlush);
    auto dead = std::make_unique<Dead>();
    dead->codec = std::move(codec_);
    dead->conn = std::move(conn_);
    dispatcher_.deferredDelete(std::move(dead));
  }
  void finish(absl::StatusOr<std::string> result) {
    if (done_) return;
    done_ = true;
    timer_->disableTimer();
    resolving_.reset();
    closeConnection();
    Callback cb = std::move(cb_);
    cb_ = nullptr;
    if (cb) cb(std::move(result));
  }

  Event::Dispatcher& dispatcher_;
  const HttpUri uri_;
  const std::chrono::milliseconds timeout_;
  Network::DnsResolver* const resolver_;
  Network::DnsQueryPtr resolving_;
  Event::TimerPtr timer_;
  Callback cb_;
  Network::ConnectionPtr conn_;
  std::unique_ptr<Http::Http1::ClientConnectionImpl> codec_;
  uint32_t status_ = 0;
  std::string body_;
  bool done_ = true;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for posted callbacks
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
