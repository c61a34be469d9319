#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "source/common/event/dispatcher.h"
#include "source/common/http/headers.h"
#include "source/common/network/connection.h"
#include "source/common/network/dns_resolver.h"
#include "source/common/tls/context.h"

namespace sluice {
namespace Http {

// `http[s]://[user[:password]@]host[:port][/path[?query]]`. The host is an IP literal,
// `localhost`, or a host name that the client resolves asynchronously (with a DnsResolver on
// its dispatcher) each time it opens a connection. Errors say what is wrong.
struct HttpUri {
  Network::Address address;  // an IP literal's (unset for a host name)
  std::string host_name;     // a host name to resolve; empty for an IP literal
  uint32_t port = 80;
  // The authority without the userinfo, as written: what the Host header says.
  std::string host_header;
  // Path and query ("/" when the URI has none).
  std::string path;
  // "user:password" percent-decoded, empty when the URI has none. Never logged.
  std::string userinfo;
  bool has_userinfo = false;
  // https:// (default port 443): the TLS to the server, set by the caller that compiles the
  // URI (createUriTlsContext(); null only while validating).
  bool https = false;
  Tls::ClientContextConstSharedPtr tls;

  // "http://host:port/path" without the userinfo and the query: safe for logs and stat names.
  std::string displayName() const;
};
absl::StatusOr<HttpUri> parseHttpUri(absl::string_view uri);

// The TLS an https:// URI needs: the server must prove the URI's host (name or IP) with a
// certificate chaining to `ca_pem` (empty: the system's CA bundle), as a browser would. SNI is
// the host name (none for an IP literal).
absl::StatusOr<Tls::ClientContextConstSharedPtr> createUriTlsContext(const HttpUri& uri,
                                                                     const std::string& ca_pem);

struct AsyncRequest {
  std::string method = "GET";
  // Empty: the URI's path.
  std::string path;
  // Lower-case names. host, content-length and connection are the client's.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct AsyncResponse {
  uint32_t status = 0;
  ResponseHeaderMapPtr headers;
  std::string body;
};

// HTTP/1.1 requests to one endpoint (an HttpUri) from one dispatcher's thread: any method,
// headers and body, over Network::Connection with the HTTP/1 client codec, TLS for https://,
// DNS for host names. A connection whose response completed and that the peer keeps open is
// kept for the next request (at most `keepalive` idle, then closed). A request sent on such a
// kept-alive connection that the peer had closed meanwhile (the connection ends before a single
// byte of the response arrived) is sent again once, on a new connection; any other failure is
// the caller's. Every answer with a status is a response (the caller judges the status).
//
// Not thread-safe: everything runs on `dispatcher`'s thread. Callbacks run there, never from
// inside send(), exactly once per request unless it is cancelled first; a callback may send
// again or destroy the client.
class AsyncClient {
 public:
  struct Options {
    // The whole exchange: name resolution, connecting (TLS included), the retry, the response.
    std::chrono::milliseconds timeout{10000};
    // How long an idle connection is kept; 0: one connection per request, closed after it.
    std::chrono::milliseconds keepalive{60000};
    // A larger response body fails the request (and closes its connection).
    size_t max_response_bytes = 1024 * 1024;
  };
  using Callback = std::function<void(absl::StatusOr<AsyncResponse> response)>;

  // A request in flight: valid until its callback has run or it is cancelled.
  class Request {
   public:
    virtual ~Request() = default;
    // No callback will run; a connection carrying the request is closed.
    virtual void cancel() = 0;
  };

  // `resolver` (on the same dispatcher) resolves a host name; null: a URI with a host name
  // fails every request. It must outlive the client.
  AsyncClient(Event::Dispatcher& dispatcher, HttpUri uri, Options options,
              Network::DnsResolver* resolver = nullptr);
  // Cancels what is in flight (no callbacks) and closes the connections.
  ~AsyncClient();
  AsyncClient(const AsyncClient&) = delete;
  AsyncClient& operator=(const AsyncClient&) = delete;

  Request& send(AsyncRequest request, Callback callback);

  const HttpUri& uri() const;
  // Connections opened so far, and kept idle now (tests, stats).
  uint64_t connectionsOpened() const;
  size_t idleConnections() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};
using AsyncClientPtr = std::unique_ptr<AsyncClient>;

}  // namespace Http
}  // namespace sluice
