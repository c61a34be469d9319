#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "source/common/admin/handler_registry.h"
#include "source/common/event/dispatcher.h"
#include "source/common/network/connection.h"

namespace sluice {
namespace Server {

using AdminResponse = Admin::Response;

// The admin HTTP server. Runs on the main thread (never on a worker), loopback by default.
class AdminServer {
 public:
  // (method, path without query, query) -> response
  using Handler = std::function<AdminResponse(const std::string& method, const std::string& path,
                                              const std::string& query)>;

  AdminServer(Event::Dispatcher& dispatcher, Handler handler);
  ~AdminServer();
  // Binds and listens. Returns the bound address or an error message.
  bool listen(const Network::Address& address, std::string& error);
  const Network::Address& address() const { return bound_; }

 private:
  void onAccept();

  Event::Dispatcher& dispatcher_;
  Handler handler_;
  int fd_ = -1;
  Event::FileEventPtr event_;
  Network::Address bound_;
};

}  // namespace Server
}  // namespace sluice
