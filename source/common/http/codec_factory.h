#pragma once

#include "source/common/http/codec.h"
#include "source/common/network/connection.h"

namespace sluice {
namespace Http {
namespace Http2 {
struct CodecStats;
}

// Where codecs are made: the connection manager, the upstream pool and the health checker get
// theirs here and see only the codec.h interfaces.

// Which protocol a downstream connection speaks, from TLS's ALPN or (cleartext, HTTP/2 on) its
// first bytes: the HTTP/2 connection preface means HTTP/2 with prior knowledge (h2c).
enum class Detected : uint8_t { Http1, Http2, NeedMoreData };
Detected detectServerProtocol(const Network::Connection& connection, const Buffer::Instance& data,
                              const CodecSettings& settings);

ServerConnectionPtr createServerConnection(Network::Connection& connection,
                                           ServerConnectionCallbacks& callbacks,
                                           const CodecSettings& settings,
                                           Protocol protocol = Protocol::Http11,
                                           const Http2::CodecStats* http2_stats = nullptr);
// `protocol`: Http11 or Http2 (h2c, or h2 when the connection is TLS).
ClientConnectionPtr createClientConnection(Network::Connection& connection,
                                           Protocol protocol = Protocol::Http11);

}  // namespace Http
}  // namespace sluice
