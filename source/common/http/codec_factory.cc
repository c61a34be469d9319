#include "source/common/http/codec_factory.h"

#include <cstring>

#include "source/common/http/http1/codec_impl.h"
#include "source/common/http/http2/codec_impl.h"
#include "source/common/tls/connection_info.h"

namespace sluice {
namespace Http {

Detected detectServerProtocol(const Network::Connection& connection, const Buffer::Instance& data,
                              const CodecSettings& settings) {
  if (!settings.http2.enabled) {
    return Detected::Http1;
  }
  if (const Tls::ConnectionInfo* ssl = connection.ssl(); ssl != nullptr) {
    return ssl->alpn() == "h2" ? Detected::Http2 : Detected::Http1;
  }
  const absl::string_view preface = Http2::connectionPreface();
  char head[24];
  const size_t n = std::min(data.length(), preface.size());
  data.copyOut(n, head);
  if (memcmp(head, preface.data(), n) != 0) {
    return Detected::Http1;
  }
  return n == preface.size() ? Detected::Http2 : Detected::NeedMoreData;
}

ServerConnectionPtr createServerConnection(Network::Connection& connection,
                                           ServerConnectionCallbacks& callbacks,
                                           const CodecSettings& settings, Protocol protocol,
                                           const Http2::CodecStats* http2_stats) {
  if (protocol == Protocol::Http2) {
    return std::make_unique<Http2::ServerConnectionImpl>(connection, callbacks, settings,
                                                         http2_stats);
  }
  return std::make_unique<Http1::ServerConnectionImpl>(connection, callbacks, settings);
}

ClientConnectionPtr createClientConnection(Network::Connection& connection, Protocol protocol) {
  if (protocol == Protocol::Http2) {
    CodecSettings settings;
    return std::make_unique<Http2::ClientConnectionImpl>(connection, settings,
                                                         connection.ssl() != nullptr);
  }
  return std::make_unique<Http1::ClientConnectionImpl>(connection);
}

}  // namespace Http
}  // namespace sluice
