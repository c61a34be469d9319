#include "source/extensions/filters/http/rate_limit/hiredis_adapter.h"

#include <hiredis/async.h>

#include <memory>

namespace sluice {
namespace Extensions {
namespace RateLimit {
namespace {

class Adapter {
 public:
  Adapter(Event::Dispatcher& dispatcher, redisAsyncContext* ac)
      : dispatcher_(dispatcher), ac_(ac) {}

  void start(std::shared_ptr<Adapter> self) {
    self_ = std::move(self);
    file_event_ = dispatcher_.createFileEvent(
        ac_->c.fd, [this](uint32_t events) { onEvents(events); }, 0);
    flush_timer_ = dispatcher_.createTimer([this]() { flush(); });
    ac_->ev.data = this;
    ac_->ev.addRead = [](void* p) { static_cast<Adapter*>(p)->setRead(true); };
    ac_->ev.delRead = [](void* p) { static_cast<Adapter*>(p)->setRead(false); };
    ac_->ev.addWrite = [](void* p) { static_cast<Adapter*>(p)->addWrite(); };
    ac_->ev.delWrite = [](void* p) { static_cast<Adapter*>(p)->setWrite(false); };
    ac_->ev.cleanup = [](void* p) { static_cast<Adapter*>(p)->cleanup(); };
  }

 private:
  // Keeps the adapter (and its FileEvent) alive until the callback that freed the context has
  // returned: a FileEvent must not be destroyed from inside its own callback.
  struct Graveyard : public Event::DeferredDeletable {
    explicit Graveyard(std::shared_ptr<Adapter> a) : adapter(std::move(a)) {}
    std::shared_ptr<Adapter> adapter;
  };

  void onEvents(uint32_t events) {
    if ((events & Event::FileReadyType::Read) && ac_ != nullptr) {
      redisAsyncHandleRead(ac_);
    }
    if ((events & Event::FileReadyType::Write) && ac_ != nullptr) {
      in_write_ = true;
      redisAsyncHandleWrite(ac_);
      in_write_ = false;
    }
  }

  void setRead(bool on) {
    read_ = on;
    update();
  }
  void setWrite(bool on) {
    write_ = on;
    update();
  }
  void update() {
    if (file_event_ != nullptr) {
      file_event_->setEnabled((read_ ? Event::FileReadyType::Read : 0) |
                              (write_ ? Event::FileReadyType::Write : 0));
    }
  }

  void addWrite() {
    if (ac_ == nullptr) {
      return;
    }
    // Connecting (the first writable event completes the connect) or writing after a short
    // write (hiredis asks again because the socket was full): real write interest.
    if (!(ac_->c.flags & REDIS_CONNECTED) || in_write_) {
      setWrite(true);
      return;
    }
    // A zero-delay timer, not Dispatcher::deferred (which runs after every callback, so each
    // request would get its own write): libevent runs it after the I/O callbacks of the next
    // loop iteration, so the commands of every request parsed until then share one write.
    if (!flush_timer_->enabled()) {
      flush_timer_->enableTimer(std::chrono::milliseconds(0));
    }
  }

  void flush() {
    if (ac_ == nullptr) {
      return;
    }
    in_write_ = true;
    redisAsyncHandleWrite(ac_);  // may free the context (write error): cleanup() runs
    in_write_ = false;
  }

  void cleanup() {
    if (ac_ == nullptr) {
      return;  // some hiredis versions call the hook twice
    }
    ac_ = nullptr;
    read_ = write_ = false;
    update();
    flush_timer_->disableTimer();
    dispatcher_.deferredDelete(std::make_unique<Graveyard>(std::move(self_)));
  }

  Event::Dispatcher& dispatcher_;
  redisAsyncContext* ac_;
  std::shared_ptr<Adapter> self_;  // the context's reference, released by cleanup()
  Event::FileEventPtr file_event_;
  Event::TimerPtr flush_timer_;
  bool read_ = false;
  bool write_ = false;
  bool in_write_ = false;
};

}  // namespace

void HiredisAdapter::attach(Event::Dispatcher& dispatcher, redisAsyncContext* ac) {
  auto adapter = std::make_shared<Adapter>(dispatcher, ac);
  adapter->start(adapter);
}

}  // namespace RateLimit
}  // namespace Extensions
}  // namespace sluice
