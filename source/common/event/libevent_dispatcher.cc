#include <event2/event.h>
#include <event2/event_struct.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "source/common/event/dispatcher.h"

namespace sluice {
namespace Event {
namespace {

class LibeventDispatcher;

class FileEventImpl : public FileEvent {
 public:
  FileEventImpl(LibeventDispatcher& d, event_base* base, int fd, FileReadyCb cb, uint32_t events);
  ~FileEventImpl() override { event_del(&ev_); }
  void setEnabled(uint32_t events) override;
  uint32_t enabled() const override { return events_; }

 private:
  static void onEvent(evutil_socket_t, short what, void* arg);
  void assign(uint32_t events);

  LibeventDispatcher& dispatcher_;
  event_base* base_;
  int fd_;
  FileReadyCb cb_;
  uint32_t events_;
  event ev_;
};

class TimerImpl : public Timer {
 public:
  TimerImpl(LibeventDispatcher& d, event_base* base, TimerCb cb);
  ~TimerImpl() override { event_del(&ev_); }
  void enableTimer(std::chrono::milliseconds timeout) override {
    timeval tv;
    tv.tv_sec = timeout.count() / 1000;
    tv.tv_usec = (timeout.count() % 1000) * 1000;
    event_add(&ev_, &tv);
  }
  void disableTimer() override { event_del(&ev_); }
  bool enabled() const override { return event_pending(&ev_, EV_TIMEOUT, nullptr) != 0; }

 private:
  static void onTimer(evutil_socket_t, short, void* arg);
  LibeventDispatcher& dispatcher_;
  TimerCb cb_;
  event ev_;
};

class LibeventDispatcher : public Dispatcher {
 public:
  LibeventDispatcher() {
    event_config* cfg = event_config_new();
    // Monotonic time without a syscall per loop iteration: libevent caches the time per
    // iteration; we never ask it to bypass the cache.
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    base_ = event_base_new_with_config(cfg);
    event_config_free(cfg);
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    event_assign(&wake_ev_, base_, wake_fd_, EV_READ | EV_PERSIST, &LibeventDispatcher::onWake,
                 this);
    event_add(&wake_ev_, nullptr);
  }
  ~LibeventDispatcher() override {
    runDeferred();
    event_del(&wake_ev_);
    close(wake_fd_);
    event_base_free(base_);
  }

  FileEventPtr createFileEvent(int fd, FileReadyCb cb, uint32_t events) override {
    return std::make_unique<FileEventImpl>(*this, base_, fd, std::move(cb), events);
  }
  TimerPtr createTimer(TimerCb cb) override {
    return std::make_unique<TimerImpl>(*this, base_, std::move(cb));
  }
  void post(std::function<void()> cb) override {
    {
      absl::MutexLock lock(&post_mu_);
      posted_.push_back(std::move(cb));
    }
    uint64_t one = 1;
    ssize_t rc = write(wake_fd_, &one, sizeof(one));
    (void)rc;
  }
  void deferred(std::function<void()> cb) override { deferred_.push_back(std::move(cb)); }
  void deferredDelete(DeferredDeletablePtr&& item) override {
    to_delete_.push_back(std::move(item));
  }
  void run() override {
    thread_id_ = std::this_thread::get_id();
    event_base_loop(base_, 0);
    runDeferred();
  }
  void exit() override { event_base_loopbreak(base_); }
  void runDeferredNow() override { runDeferred(); }
  std::chrono::steady_clock::time_point now() override {
    // vDSO clock_gettime: no syscall.
    return std::chrono::steady_clock::now();
  }
  bool isThreadSafe() const override { return std::this_thread::get_id() == thread_id_; }

  // Called after every callback the loop makes.
  void runDeferred() {
    // Deferred callbacks may add more deferred work; loop until none is left.
    // The work vectors are members so their capacity survives: no allocation per iteration.
    while (!deferred_.empty() || !to_delete_.empty()) {
      work_.swap(deferred_);
      for (auto& cb : work_) {
        cb();
      }
      work_.clear();
      dead_.swap(to_delete_);
      dead_.clear();
    }
  }

 private:
  static void onWake(evutil_socket_t fd, short, void* arg) {
    auto* self = static_cast<LibeventDispatcher*>(arg);
    uint64_t v;
    ssize_t rc = read(fd, &v, sizeof(v));
    (void)rc;
    std::vector<std::function<void()>> work;
    {
      absl::MutexLock lock(&self->post_mu_);
      work.swap(self->posted_);
    }
    for (auto& cb : work) {
      cb();
    }
    self->runDeferred();
  }

  event_base* base_;
  int wake_fd_;
  event wake_ev_;
  absl::Mutex post_mu_;
  std::vector<std::function<void()>> posted_ ABSL_GUARDED_BY(post_mu_);
  std::vector<std::function<void()>> deferred_;
  std::vector<std::function<void()>> work_;
  std::vector<DeferredDeletablePtr> to_delete_;
  std::vector<DeferredDeletablePtr> dead_;
  std::thread::id thread_id_;
};

FileEventImpl::FileEventImpl(LibeventDispatcher& d, event_base* base, int fd, FileReadyCb cb,
                             uint32_t events)
    : dispatcher_(d), base_(base), fd_(fd), cb_(std::move(cb)), events_(0) {
  assign(events);
}

void FileEventImpl::assign(uint32_t events) {
  short what = EV_PERSIST;
  if (events & FileReadyType::Read) what |= EV_READ;
  if (events & FileReadyType::Write) what |= EV_WRITE;
  if (events & FileReadyType::Closed) what |= EV_CLOSED;
  event_assign(&ev_, base_, fd_, what, &FileEventImpl::onEvent, this);
  events_ = events;
  if (events != 0) {
    event_add(&ev_, nullptr);
  }
}

void FileEventImpl::setEnabled(uint32_t events) {
  if (events == events_) {
    return;
  }
  event_del(&ev_);
  assign(events);
}

void FileEventImpl::onEvent(evutil_socket_t, short what, void* arg) {
  auto* self = static_cast<FileEventImpl*>(arg);
  uint32_t ready = 0;
  if (what & EV_READ) ready |= FileReadyType::Read;
  if (what & EV_WRITE) ready |= FileReadyType::Write;
  if (what & EV_CLOSED) ready |= FileReadyType::Closed;
  LibeventDispatcher& d = self->dispatcher_;
  self->cb_(ready);  // may destroy `self` only via deferredDelete
  d.runDeferred();
}

TimerImpl::TimerImpl(LibeventDispatcher& d, event_base* base, TimerCb cb)
    : dispatcher_(d), cb_(std::move(cb)) {
  evtimer_assign(&ev_, base, &TimerImpl::onTimer, this);
}

void TimerImpl::onTimer(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<TimerImpl*>(arg);
  LibeventDispatcher& d = self->dispatcher_;
  self->cb_();
  d.runDeferred();
}

}  // namespace

DispatcherPtr createLibeventDispatcher() { return std::make_unique<LibeventDispatcher>(); }

}  // namespace Event
}  // namespace sluice
