#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "source/common/event/dispatcher.h"
#include "source/common/network/connection.h"
#include "source/common/tls/context.h"
#include "test/test_common/network_utility.h"

namespace sluice {
namespace Testing {

// A scriptable HTTP/1.1 server on 127.0.0.1 (cleartext, or TLS with a ServerContext) that runs
// on a test's dispatcher: it parses each request (head and a content-length body) and answers
// as its handler says, so a client's reuse, retries and failures can be checked from the
// server's side.
class TestHttpServer {
 public:
  struct Request {
    std::string method;
    std::string path;
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
    std::string body;
    int connection = 0;  // index of its connection (0 = the first accepted)
    int index = 0;       // its place on that connection (0 = the first request)
    std::string header(const std::string& name) const;
  };
  enum class Kind {
    Respond,           // the response below; the connection stays open unless `close`
    CloseNow,          // close without answering
    PartialThenClose,  // the start of a response (`raw_prefix`), then close
    Hold,              // never answer (keeps the connection)
  };
  struct Action {
    Kind kind = Kind::Respond;
    uint32_t status = 200;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
    bool close = false;  // `connection: close` and close after the response
    std::string raw_prefix;
  };
  using Handler = std::function<Action(const Request&)>;

  // `tls`: serve TLS with it (null: cleartext).
  TestHttpServer(Event::Dispatcher& dispatcher, Handler handler,
                 Tls::ServerContextConstSharedPtr tls = nullptr);
  ~TestHttpServer();

  uint16_t port() const { return listener_.port(); }
  int connections() const { return accepted_; }
  const std::vector<Request>& requests() const { return requests_; }
  // Closes every open connection now (as a server restarting would).
  void closeAll();
  // Connections currently open.
  int openConnections() const;

 private:
  class Peer;
  void onAccept();
  void process(Peer& p);

  Event::Dispatcher& dispatcher_;
  Handler handler_;
  Tls::ServerContextConstSharedPtr tls_;
  TcpListener listener_;
  Event::FileEventPtr accept_;
  std::vector<std::unique_ptr<Peer>> peers_;
  std::vector<Request> requests_;
  int accepted_ = 0;
};

}  // namespace Testing
}  // namespace sluice
