#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace sluice {
namespace Event {

enum FileReadyType : uint32_t { Read = 0x1, Write = 0x2, Closed = 0x4 };

// A registration of interest in an fd. Worker-local: created, changed and destroyed on the
// thread of the dispatcher that made it.
class FileEvent {
 public:
  virtual ~FileEvent() = default;
  // Sets the events of interest (a mask of FileReadyType). Costs a syscall only when the mask
  // changes, so callers keep Read enabled and add Write only while output is blocked.
  virtual void setEnabled(uint32_t events) = 0;
  virtual uint32_t enabled() const = 0;
};
using FileEventPtr = std::unique_ptr<FileEvent>;
using FileReadyCb = std::function<void(uint32_t events)>;

class Timer {
 public:
  virtual ~Timer() = default;
  virtual void enableTimer(std::chrono::milliseconds timeout) = 0;
  virtual void disableTimer() = 0;
  virtual bool enabled() const = 0;
};
using TimerPtr = std::unique_ptr<Timer>;
using TimerCb = std::function<void()>;

// Something that must be destroyed after the current event callback returns (e.g. a connection
// closing itself from inside its own callback).
class DeferredDeletable {
 public:
  virtual ~DeferredDeletable() = default;
};
using DeferredDeletablePtr = std::unique_ptr<DeferredDeletable>;

// One per thread (main and each worker): an event loop. Everything but post() must be called on
// the dispatcher's own thread.
class Dispatcher {
 public:
  virtual ~Dispatcher() = default;
  virtual FileEventPtr createFileEvent(int fd, FileReadyCb cb, uint32_t events) = 0;
  virtual TimerPtr createTimer(TimerCb cb) = 0;
  // Thread-safe: runs `cb` on the dispatcher's thread soon.
  virtual void post(std::function<void()> cb) = 0;
  // Runs `cb` once after the current callback returns, before the loop waits again. Used to
  // coalesce writes (one writev per connection per loop iteration).
  virtual void deferred(std::function<void()> cb) = 0;
  virtual void deferredDelete(DeferredDeletablePtr&& item) = 0;
  virtual void run() = 0;
  virtual void exit() = 0;
  // Runs the deferred callbacks and deletions now (after run() has returned: a thread that
  // closes what is left before it tears down what those objects refer to).
  virtual void runDeferredNow() = 0;
  // Monotonic time, cached per loop iteration (no syscall).
  virtual std::chrono::steady_clock::time_point now() = 0;
  virtual bool isThreadSafe() const = 0;
};
using DispatcherPtr = std::unique_ptr<Dispatcher>;

DispatcherPtr createLibeventDispatcher();

}  // namespace Event
}  // namespace sluice
