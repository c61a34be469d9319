#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace sluice {
namespace Testing {

// A redis-server child process on 127.0.0.1:<free port> with persistence off, for tests that
// need a real Redis (and to kill and restart it). Killed when destroyed.
class RedisServer {
 public:
  // False when redis-server is not installed (tests then skip).
  static bool available();

  RedisServer();
  ~RedisServer() { stop(); }

  // Starts (or restarts, on the same port) and waits until it accepts connections.
  bool start();
  // SIGKILL, as a crash would: established connections see a reset/EOF.
  void stop();
  bool running() const { return pid_ > 0; }
  uint16_t port() const { return port_; }

  // Runs one command on a short-lived blocking connection; returns the reply as text
  // ("" on failure). For checks and setup (SCRIPT FLUSH, INFO, KEYS ...).
  std::string command(const std::string& cmd) const;

 private:
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace Testing
}  // namespace sluice
