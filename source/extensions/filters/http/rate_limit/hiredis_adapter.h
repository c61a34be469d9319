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
// write interest registered, which would cost an epoll_ctl per command); a zero-delay timer
// flushes hiredis's output buffer after the I/O callbacks of the next loop iteration, so the
// commands of every request parsed until then leave in one write (under load, one write for
// about ten requests). Write interest is registered only while connecting or when the socket
// is full.
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
