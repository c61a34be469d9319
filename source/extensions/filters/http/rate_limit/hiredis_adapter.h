#pragma once

#include "source/common/event/dispatcher.h"

struct redisAsyncContext;

namespace sluice {
namespace Extensions {
namespace RateLimit {

// Runs a hiredis `redisAsyncContext` on one of our dispatchers (hiredis's ev.addRead/delRead/
// addWrite/delWrite/cleanup hooks on an Event::FileEvent), so Redis I/O happens on the worker's
// own loop and never blocks it.
//
// Writes are coalesced: a command issued on a connected context is not written at once (nor is
// write interest registered, which would cost an epoll_ctl per command); the adapter flushes
// hiredis's output buffer once the current loop callback returns (Dispatcher::deferred), so
// every command issued in one iteration leaves in one write. Write interest is registered only
// while connecting or when the socket is full.
//
// Worker-local: attach, and everything after, on the dispatcher's thread.
class HiredisAdapter {
 public:
  // Attaches `ac`, which must have no event hooks yet. From then on the context owns the
  // adapter: hiredis's cleanup hook (called when the context is freed) releases it once the
  // current callback has returned.
  static void attach(Event::Dispatcher& dispatcher, redisAsyncContext* ac);
};

}  // namespace RateLimit
}  // namespace Extensions
}  // namespace sluice
