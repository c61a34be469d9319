#pragma once

#include "source/common/http/codec.h"
#include "source/common/network/connection.h"

namespace sluice {
namespace Http {

// Where codecs are made: the connection manager, the upstream pool and the health checker get
// theirs here and see only the codec.h interfaces. Today every connection speaks HTTP/1.1; an
// HTTP/2 codec plugs in here (chosen by ALPN or the cluster's protocol).
ServerConnectionPtr createServerConnection(Network::Connection& connection,
                                           ServerConnectionCallbacks& callbacks,
                                           const CodecSettings& settings);
ClientConnectionPtr createClientConnection(Network::Connection& connection);

}  // namespace Http
}  // namespace sluice
