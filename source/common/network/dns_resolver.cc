#include "source/common/network/dns_resolver.h"

#include <ares.h>
#include <arpa/inet.h>

#include <mutex>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace sluice {
namespace Network {

namespace {

// c-ares' process-wide initialisation (a no-op on Linux, but the API asks for it).
void initCaresOnce() {
  static std::once_flag once;
  std::call_once(once, []() { ares_library_init(ARES_LIB_INIT_ALL); });
}

std::string describe(int status) {
  switch (status) {
    case ARES_ENOTFOUND:
      return "NXDOMAIN (name not found)";
    case ARES_ESERVFAIL:
      return "SERVFAIL";
    case ARES_EREFUSED:
      return "REFUSED";
    case ARES_ETIMEOUT:
      return "timeout";
    case ARES_ECONNREFUSED:
      // What c-ares reports once every server answered SERVFAIL or REFUSED, or refused the
      // connection.
      return "no server answered (SERVFAIL, REFUSED or connection refused)";
    default:
      return ares_strerror(status);
  }
}

// A FileEvent retired from inside c-ares' processing (possibly its own callback): destroyed
// after the current callback returns.
struct RetiredFileEvent : public Event::DeferredDeletable {
  explicit RetiredFileEvent(Event::FileEventPtr&& e) : event(std::move(e)) {}
  Event::FileEventPtr event;
};

class CaresDnsResolver;

// One resolve() call: shared by its DnsQuery handle and by c-ares (or a posted delivery) while
// they may still refer to it.
struct Resolution {
  CaresDnsResolver* parent = nullptr;
  std::string name;
  DnsLookupFamily family;
  DnsResolver::ResolveCb callback;  // cleared when cancelled or delivered
  // Auto / V4Preferred: the first family's lookup is done and the second one runs.
  bool second_stage = false;
  bool first_succeeded = false;
};
using ResolutionSharedPtr = std::shared_ptr<Resolution>;

class QueryHandle : public DnsQuery {
 public:
  explicit QueryHandle(ResolutionSharedPtr r) : resolution_(std::move(r)) {}
  ~QueryHandle() override { resolution_->callback = nullptr; }

 private:
  ResolutionSharedPtr resolution_;
};

class CaresDnsResolver : public DnsResolver {
 public:
  CaresDnsResolver(Event::Dispatcher& dispatcher, DnsResolverOptions options)
      : dispatcher_(dispatcher), options_(std::move(options)) {
    timer_ = dispatcher_.createTimer([this]() { onTimer(); });
    reinit_timer_ = dispatcher_.createTimer([this]() { reinit(); });
  }

  ~CaresDnsResolver() override {
    destroying_ = true;
    timer_->disableTimer();
    reinit_timer_->disableTimer();
    if (channel_ != nullptr) ares_destroy(channel_);  // pending lookups end (dropped)
    events_.clear();
  }

  absl::Status init() {
    channel_ = nullptr;
    ares_options opts{};
    int mask = ARES_OPT_SOCK_STATE_CB;
    opts.sock_state_cb = [](void* self, ares_socket_t fd, int readable, int writable) {
      static_cast<CaresDnsResolver*>(self)->onSocketState(fd, readable, writable);
    };
    opts.sock_state_cb_data = this;
    if (options_.timeout.count() > 0) {
      mask |= ARES_OPT_TIMEOUTMS;
      opts.timeout = static_cast<int>(options_.timeout.count());
    }
    if (options_.tries > 0) {
      mask |= ARES_OPT_TRIES;
      opts.tries = static_cast<int>(options_.tries);
    }
    int rc = ares_init_options(&channel_, &opts, mask);
    if (rc != ARES_SUCCESS) {
      channel_ = nullptr;
      return absl::InternalError(absl::StrCat("DNS resolver: c-ares: ", ares_strerror(rc)));
    }
    if (!options_.servers.empty()) {
      std::vector<ares_addr_port_node> nodes(options_.servers.size());
      for (size_t i = 0; i < nodes.size(); ++i) {
        const Address& a = options_.servers[i];
        ares_addr_port_node& n = nodes[i];
        n.next = i + 1 < nodes.size() ? &nodes[i + 1] : nullptr;
        n.family = a.ss.sa.sa_family;
        if (n.family == AF_INET) {
          n.addr.addr4 = a.ss.in4.sin_addr;
        } else {
          memcpy(&n.addr.addr6, &a.ss.in6.sin6_addr, sizeof(a.ss.in6.sin6_addr));
        }
        n.udp_port = a.port();
        n.tcp_port = a.port();
      }
      rc = ares_set_servers_ports(channel_, nodes.data());
      if (rc != ARES_SUCCESS) {
        return absl::InvalidArgumentError(
            absl::StrCat("DNS resolver: bad server list: ", ares_strerror(rc)));
      }
    }
    return absl::OkStatus();
  }

  DnsQueryPtr resolve(const std::string& name, DnsLookupFamily family,
                      ResolveCb callback) override {
    auto r = std::make_shared<Resolution>();
    r->parent = this;
    r->name = name;
    r->family = family;
    r->callback = std::move(callback);
    auto handle = std::make_unique<QueryHandle>(r);
    if (isIpLiteral(name)) {
      std::string ip = name;
      if (ip.front() == '[') ip = ip.substr(1, ip.size() - 2);
      DnsResponse literal;
      Address::parse(ip, 0, literal.address);
      std::vector<DnsResponse> answer{literal};
      post(r, DnsResolutionStatus::Success, "", std::move(answer));
      return handle;
    }
    in_resolve_ = true;
    if (channel_ == nullptr) {
      post(r, DnsResolutionStatus::Failure, "DNS resolver not initialised", {});
    } else {
      start(r, firstFamily(family));
    }
    in_resolve_ = false;
    updateTimer();
    return handle;
  }

 private:
  static int firstFamily(DnsLookupFamily f) {
    return f == DnsLookupFamily::V4Only || f == DnsLookupFamily::V4Preferred ? AF_INET : AF_INET6;
  }

  void start(const ResolutionSharedPtr& r, int family) {
    ares_addrinfo_hints hints{};
    hints.ai_family = family;
    hints.ai_flags = ARES_AI_NOSORT;
    ++in_flight_;
    // c-ares may call back before returning (hosts file, bad name): onResult then posts.
    ares_getaddrinfo(
        channel_, r->name.c_str(), nullptr, &hints,
        [](void* arg, int status, int, ares_addrinfo* info) {
          std::unique_ptr<ResolutionSharedPtr> r(static_cast<ResolutionSharedPtr*>(arg));
          CaresDnsResolver& self = *(*r)->parent;
          if (self.destroying_) {
            if (info != nullptr) ares_freeaddrinfo(info);
            return;
          }
          --self.in_flight_;
          if (status == ARES_ECONNREFUSED) self.dirty_ = true;
          self.onResult(*r, status, info);
          self.maybeReinit();
        },
        new ResolutionSharedPtr(r));
  }

  // c-ares' channel can stay broken after a refused connection (Envoy resets it too). Reset
  // once nothing is in flight on it (a reset would fail those lookups), and never from inside
  // c-ares' processing: from a timer.
  void maybeReinit() {
    if (dirty_ && in_flight_ == 0 && !reinit_timer_->enabled()) {
      reinit_timer_->enableTimer(std::chrono::milliseconds(0));
    }
  }

  void onResult(const ResolutionSharedPtr& r, int status, ares_addrinfo* info) {
    std::vector<DnsResponse> out;
    if (status == ARES_SUCCESS && info != nullptr) {
      for (const ares_addrinfo_node* n = info->nodes; n != nullptr; n = n->ai_next) {
        DnsResponse d;
        if (n->ai_family == AF_INET && n->ai_addrlen >= sizeof(sockaddr_in)) {
          memcpy(&d.address.ss.in4, n->ai_addr, sizeof(sockaddr_in));
          d.address.len = sizeof(sockaddr_in);
          d.address.ss.in4.sin_port = 0;
        } else if (n->ai_family == AF_INET6 && n->ai_addrlen >= sizeof(sockaddr_in6)) {
          memcpy(&d.address.ss.in6, n->ai_addr, sizeof(sockaddr_in6));
          d.address.len = sizeof(sockaddr_in6);
          d.address.ss.in6.sin6_port = 0;
        } else {
          continue;
        }
        d.ttl = std::chrono::seconds(std::max(0, n->ai_ttl));
        out.push_back(d);
      }
    }
    if (info != nullptr) ares_freeaddrinfo(info);
    // NODATA: the name exists without an address of this family, an answer like any other.
    const bool ok = status == ARES_SUCCESS || status == ARES_ENODATA;
    const bool dual =
        r->family == DnsLookupFamily::Auto || r->family == DnsLookupFamily::V4Preferred;
    if (dual && !r->second_stage && (!ok || out.empty()) && r->callback != nullptr &&
        channel_ != nullptr && status != ARES_EDESTRUCTION) {
      // The preferred family gave nothing: ask for the other one.
      r->second_stage = true;
      r->first_succeeded = ok;
      start(r, firstFamily(r->family) == AF_INET ? AF_INET6 : AF_INET);
      return;
    }
    if (ok || r->first_succeeded) {
      finish(r, DnsResolutionStatus::Success, "", std::move(out));
    } else {
      finish(r, DnsResolutionStatus::Failure, describe(status), {});
    }
  }

  // Delivers now, unless we are inside resolve() (then on the next loop iteration).
  void finish(const ResolutionSharedPtr& r, DnsResolutionStatus status, std::string details,
              std::vector<DnsResponse>&& out) {
    if (in_resolve_) {
      post(r, status, std::move(details), std::move(out));
      return;
    }
    deliver(*r, status, details, std::move(out));
  }

  void post(const ResolutionSharedPtr& r, DnsResolutionStatus status, std::string details,
            std::vector<DnsResponse>&& out) {
    dispatcher_.post([r, status, details = std::move(details), out = std::move(out)]() mutable {
      deliver(*r, status, details, std::move(out));
    });
  }

  static void deliver(Resolution& r, DnsResolutionStatus status, const std::string& details,
                      std::vector<DnsResponse>&& out) {
    ResolveCb cb = std::move(r.callback);
    r.callback = nullptr;
    if (cb) cb(status, details, std::move(out));
  }

  // A new channel, once the old one has no lookup left (a lookup started since the reset was
  // asked for postpones it to its end).
  void reinit() {
    if (in_flight_ > 0) return;
    dirty_ = false;
    ares_channel old = channel_;
    if (!init().ok()) channel_ = nullptr;
    if (old != nullptr) ares_destroy(old);
    updateTimer();
  }

  void onSocketState(ares_socket_t fd, int readable, int writable) {
    auto it = events_.find(fd);
    if (!readable && !writable) {
      if (it == events_.end()) return;
      it->second->setEnabled(0);
      if (!destroying_) {
        // We may be inside this very event's callback: destroy it later.
        dispatcher_.deferredDelete(std::make_unique<RetiredFileEvent>(std::move(it->second)));
      }
      events_.erase(it);
      return;
    }
    const uint32_t mask =
        (readable ? Event::FileReadyType::Read : 0) | (writable ? Event::FileReadyType::Write : 0);
    if (it == events_.end()) {
      events_.emplace(fd, dispatcher_.createFileEvent(
                              fd, [this, fd](uint32_t ready) { onFdReady(fd, ready); }, mask));
    } else {
      it->second->setEnabled(mask);
    }
  }

  void onFdReady(ares_socket_t fd, uint32_t ready) {
    ares_process_fd(channel_, ready & Event::FileReadyType::Read ? fd : ARES_SOCKET_BAD,
                    ready & Event::FileReadyType::Write ? fd : ARES_SOCKET_BAD);
    updateTimer();
  }

  void onTimer() {
    ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    updateTimer();
  }

  void updateTimer() {
    if (channel_ == nullptr) return;
    timeval tv;
    if (ares_timeout(channel_, nullptr, &tv) != nullptr) {
      // Rounded up: a timer that fires a little early would find nothing timed out yet.
      timer_->enableTimer(std::chrono::milliseconds(tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000));
    } else {
      timer_->disableTimer();
    }
  }

  Event::Dispatcher& dispatcher_;
  const DnsResolverOptions options_;
  ares_channel channel_ = nullptr;
  Event::TimerPtr timer_;
  Event::TimerPtr reinit_timer_;
  absl::flat_hash_map<ares_socket_t, Event::FileEventPtr> events_;
  bool in_resolve_ = false;
  // Lookups started on channel_ whose c-ares callback has not run yet.
  size_t in_flight_ = 0;
  // channel_ saw ECONNREFUSED: replaced once in_flight_ is 0.
  bool dirty_ = false;
  bool destroying_ = false;
};

}  // namespace

absl::StatusOr<DnsResolverPtr> createDnsResolver(Event::Dispatcher& dispatcher,
                                                 const DnsResolverOptions& options) {
  initCaresOnce();
  for (const Address& a : options.servers) {
    if (a.ss.sa.sa_family != AF_INET && a.ss.sa.sa_family != AF_INET6) {
      return absl::InvalidArgumentError("DNS resolver: servers must be IP addresses");
    }
  }
  auto r = std::make_unique<CaresDnsResolver>(dispatcher, options);
  absl::Status s = r->init();
  if (!s.ok()) return s;
  return DnsResolverPtr(std::move(r));
}

}  // namespace Network
}  // namespace sluice
