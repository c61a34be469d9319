#include "source/server/worker.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "spdlog/spdlog.h"

namespace sluice {
namespace Server {

Worker::Worker(uint32_t index, const Http::HttpStats& stats)
    : index_(index), stats_(stats), dispatcher_(Event::createLibeventDispatcher()) {
  cluster_manager_ = std::make_unique<Upstream::ClusterManager>(*dispatcher_, index * 7919 + 17);
  context_ = std::make_unique<Http::WorkerContext>(
      *dispatcher_, *cluster_manager_, stats_,
      std::random_device{}() ^ (static_cast<uint64_t>(index) << 32));
}

Worker::~Worker() { stop(); }

void Worker::start(SnapshotConstSharedPtr snapshot, std::vector<ListenSocket> sockets) {
  initial_sockets_ = std::move(sockets);
  snapshot_ = std::move(snapshot);
  thread_ = std::thread([this]() { run(); });
}

void Worker::run() {
  Stats::t_slot = index_ + 1;
  applySnapshot(snapshot_, std::move(initial_sockets_));
  sweep_timer_ = dispatcher_->createTimer([this]() {
    context_->sweep();
    context_->accessLogBuffer().flush();
    connections_.store(context_->connectionCount(), std::memory_order_relaxed);
    sweep_timer_->enableTimer(std::chrono::milliseconds(100));
  });
  sweep_timer_->enableTimer(std::chrono::milliseconds(100));
  dispatcher_->run();
  // Connections the drain did not finish (drain_timeout) are closed and freed here, while the
  // cluster manager and the context they refer to still exist.
  context_->closeAll();
  dispatcher_->runDeferredNow();
  context_->accessLogBuffer().flush();
}

void Worker::closeListener(WorkerListener& l) {
  l.event.reset();
  if (l.fd >= 0) {
    ::close(l.fd);
    l.fd = -1;
  }
}

void Worker::applySnapshot(SnapshotConstSharedPtr snapshot, std::vector<ListenSocket> sockets) {
  snapshot_ = std::move(snapshot);
  cluster_manager_->update(snapshot_->clusters);
  auto has_socket = [&sockets](const std::string& name) {
    for (const ListenSocket& s : sockets) {
      if (s.listener == name) return true;
    }
    return false;
  };
  auto find_info = [this](const std::string& name) -> const ListenerInfo* {
    for (const ListenerInfo& li : snapshot_->listeners) {
      if (li.name == name) return &li;
    }
    return nullptr;
  };
  // Removed, or moved to a new socket: stop accepting and drain what it accepted. Its
  // connections keep the listener object (and its last config) until they close.
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    WorkerListener& l = **it;
    const ListenerInfo* li = find_info(l.name);
    if (li != nullptr && !has_socket(l.name)) {
      l.http = li->http;  // kept: new streams use the new settings
      l.tls = li->tls;    // and new connections the new certificates
      l.handshake_timeout = li->handshake_timeout;
      ++it;
      continue;
    }
    closeListener(l);
    context_->drainListener(it->get());
    it = listeners_.erase(it);
  }
  for (const ListenSocket& s : sockets) {
    const ListenerInfo* li = find_info(s.listener);
    if (li == nullptr) {
      ::close(s.fd);
      continue;
    }
    auto l = std::make_shared<WorkerListener>();
    l->name = li->name;
    l->fd = s.fd;
    l->http = li->http;
    l->tls = li->tls;
    l->handshake_timeout = li->handshake_timeout;
    std::weak_ptr<WorkerListener> weak = l;
    l->event = dispatcher_->createFileEvent(
        s.fd, [this, weak](uint32_t) { onAccept(weak.lock()); }, Event::FileReadyType::Read);
    listeners_.push_back(std::move(l));
  }
  connections_.store(context_->connectionCount(), std::memory_order_relaxed);
}

void Worker::updateSnapshot(SnapshotConstSharedPtr snapshot, std::vector<ListenSocket> sockets) {
  dispatcher_->post([this, snapshot, sockets = std::move(sockets)]() mutable {
    applySnapshot(std::move(snapshot), std::move(sockets));
  });
}

void Worker::onAccept(const std::shared_ptr<WorkerListener>& listener) {
  if (listener == nullptr) {
    return;
  }
  WorkerListener& l = *listener;
  // Accept a bounded batch per wake-up so one busy listener can't starve the loop.
  for (int i = 0; i < 64; ++i) {
    Network::Address peer;
    peer.len = sizeof(peer.ss);
    int fd = accept4(l.fd, reinterpret_cast<sockaddr*>(&peer.ss), &peer.len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) {
        spdlog::warn("listener {}: accept failed: {}", l.name, strerror(errno));
      }
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    Network::TransportSocketPtr tls;
    if (l.tls != nullptr) {
      tls = l.tls->newSocket();
      if (tls == nullptr) {
        ::close(fd);
        continue;
      }
    }
    const bool is_tls = tls != nullptr;
    auto conn = std::make_unique<Network::Connection>(*dispatcher_, fd, false, std::move(tls));
    conn->setPeerAddress(peer);
    if (is_tls) conn->setHandshakeTimeout(l.handshake_timeout);
    // The connection manager owns itself from here (deleted through the dispatcher when its
    // connection closes), like Envoy's active connections.
    (void)std::make_unique<Http::ConnectionManagerImpl>(*context_, listener, std::move(conn))
        .release();
  }
}

void Worker::drain() {
  dispatcher_->post([this]() {
    for (auto& l : listeners_) closeListener(*l);
    context_->drain();
    connections_.store(context_->connectionCount(), std::memory_order_relaxed);
  });
}

void Worker::stop() {
  if (!thread_.joinable()) {
    return;
  }
  dispatcher_->post([this]() { dispatcher_->exit(); });
  thread_.join();
}

}  // namespace Server
}  // namespace sluice
