#include "source/common/http/codec_factory.h"

#include "source/common/http/http1/codec_impl.h"

namespace sluice {
namespace Http {

ServerConnectionPtr createServerConnection(Network::Connection& connection,
                                           ServerConnectionCallbacks& callbacks,
                                           const CodecSettings& settings) {
  return std::make_unique<Http1::ServerConnectionImpl>(connection, callbacks, settings);
}

ClientConnectionPtr createClientConnection(Network::Connection& connection) {
  return std::make_unique<Http1::ClientConnectionImpl>(connection);
}

}  // namespace Http
}  // namespace sluice
