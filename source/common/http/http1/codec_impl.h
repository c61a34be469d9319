#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "llhttp.h"
#include "source/common/http/codec.h"
#include "source/common/network/connection.h"

namespace sluice {
namespace Http {
namespace Http1 {

using CodecSettings = Http::CodecSettings;

// Shared parsing machinery for both directions.
class ParserBase {
 protected:
  friend struct ParserCallbacks;
  ParserBase(llhttp_type_t type);
  virtual ~ParserBase() = default;

  // llhttp callbacks (static trampolines call these).
  virtual int onMessageBegin() = 0;
  virtual int onUrl(const char* at, size_t len) = 0;
  virtual int onStatus(const char* at, size_t len) { return 0; }
  virtual int onHeadersComplete() = 0;
  virtual int onBody(const char* at, size_t len) = 0;
  virtual int onMessageComplete() = 0;
  int onHeaderField(const char* at, size_t len);
  int onHeaderValue(const char* at, size_t len);
  // Moves the header being parsed into `map`; false (with error_) if it is invalid.
  bool commitHeader(HeaderMap& map);
  virtual HeaderMap* currentHeaderMap() = 0;
  virtual bool countHeaderBytes(size_t n) { return true; }

  // Runs llhttp over `data`, consuming what it parsed. Returns the llhttp result.
  llhttp_errno_t execute(Buffer::Instance& data);

  static const llhttp_settings_t* settings();

  int userError(uint32_t status, const char* details) {
    user_error_ = true;
    error_status_ = status;
    error_details_ = details;
    return HPE_USER;
  }

  llhttp_t parser_;
  const char* exec_base_ = nullptr;  // start of the bytes being parsed
  bool prev_ended_lf_ = false;       // the previous buffer ended with LF (+ whitespace)
  bool user_error_ = false;
  std::string field_;
  std::string value_;
  bool in_value_ = false;
  bool headers_done_ = false;         // header callbacks after this are trailers
  bool underscore_in_names_ = false;  // a header name of this message has '_'
  HeaderMapPtr trailers_;
  uint32_t error_status_ = 400;
  const char* error_details_ = "";
};

class ServerConnectionImpl;

// The single active request/response of an HTTP/1 server connection.
class ServerStream : public ResponseEncoder, public Stream, public Event::DeferredDeletable {
 public:
  explicit ServerStream(ServerConnectionImpl& conn) : conn_(conn) {}
  // ResponseEncoder
  void encode100Continue() override;
  void encodeHeaders(const ResponseHeaderMap& headers, bool end_stream) override;
  void encodeData(Buffer::Instance& data, bool end_stream) override;
  void encodeTrailers(const HeaderMap& trailers) override;
  Stream& getStream() override { return *this; }
  // Stream
  void setCallbacks(StreamCallbacks* cb) override { callbacks_ = cb; }
  void resetStream(StreamResetReason reason) override;
  void readDisable(bool disable) override;

  StreamCallbacks* callbacks_ = nullptr;
  RequestDecoder* decoder_ = nullptr;
  bool chunked_ = false;
  bool no_body_ = false;      // HEAD, 204, 304
  bool close_after_ = false;  // send connection: close and close after the response
  bool headers_sent_ = false;
  bool response_complete_ = false;
  bool request_complete_ = false;
  bool is_head_ = false;
  bool keep_alive_10_ = false;  // HTTP/1.0 client asked for keep-alive
  uint8_t http_minor_ = 1;
  bool read_disabled_ = false;

 private:
  void endResponse();
  ServerConnectionImpl& conn_;
};

class ServerConnectionImpl : public ServerConnection, public ParserBase {
 public:
  ServerConnectionImpl(Network::Connection& connection, ServerConnectionCallbacks& callbacks,
                       const CodecSettings& settings);
  ~ServerConnectionImpl() override;

  // ServerConnection
  void dispatch(Buffer::Instance& data) override;
  bool busy() const override { return stream_ != nullptr; }
  Protocol protocol() const override {
    return http_minor_ == 0 ? Protocol::Http10 : Protocol::Http11;
  }
  // Every later response says `connection: close` (draining).
  void setCloseAfterResponse() override { drain_close_ = true; }
  // True once the current stream's response is done and the connection will close.
  bool closing() const override { return closing_; }
  void sendStreamlessResponse(const ResponseHeaderMap& headers, absl::string_view body) override;

  Network::Connection& connection() { return connection_; }

 private:
  friend class ServerStream;
  int onMessageBegin() override;
  int onUrl(const char* at, size_t len) override;
  int onHeadersComplete() override;
  int onBody(const char* at, size_t len) override;
  int onMessageComplete() override;
  HeaderMap* currentHeaderMap() override;
  bool countHeaderBytes(size_t n) override;
  void flushBody(bool end_stream);
  void onResponseComplete();
  void fail(uint32_t status, const char* details);

  Network::Connection& connection_;
  ServerConnectionCallbacks& callbacks_;
  const CodecSettings settings_;
  std::unique_ptr<ServerStream> stream_;
  RequestHeaderMapPtr headers_;
  Buffer::OwnedImpl body_;
  uint64_t header_bytes_ = 0;
  uint64_t body_bytes_ = 0;
  uint64_t discard_bytes_ = 0;
  static constexpr uint64_t kMaxDiscardBytes = 64 * 1024;
  bool paused_ = false;  // a complete request waits for its response
  bool failed_ = false;
  bool closing_ = false;
  bool drain_close_ = false;
  bool in_dispatch_ = false;
  uint8_t http_minor_ = 1;  // of the latest request
};

// Client (upstream) side: one request at a time over a kept-alive connection.
class ClientConnectionImpl : public ClientConnection,
                             public ParserBase,
                             public RequestEncoder,
                             public Stream {
 public:
  explicit ClientConnectionImpl(Network::Connection& connection);

  // ClientConnection
  // Starts a request; `decoder` receives the response.
  RequestEncoder& newStream(ResponseDecoder& decoder) override;
  void dispatch(Buffer::Instance& data) override;
  bool busy() const override { return decoder_ != nullptr; }
  Protocol protocol() const override { return Protocol::Http11; }
  // The peer closed (or the connection failed): completes a close-delimited response or
  // resets the stream.
  void onConnectionClose() override;
  // May this connection take another request?
  bool reusable() const override { return keep_alive_ && !failed_; }
  uint32_t maxConcurrentStreams() const override { return 1; }
  // Bytes of response received for the current request (0 = nothing yet: safe to retry).
  bool responseStarted() const { return response_started_; }

  // RequestEncoder
  void encodeHeaders(const RequestHeaderMap& headers, bool end_stream) override;
  void encodeData(Buffer::Instance& data, bool end_stream) override;
  void encodeTrailers(const HeaderMap& trailers) override;
  Stream& getStream() override { return *this; }
  // Stream
  void setCallbacks(StreamCallbacks* cb) override { stream_callbacks_ = cb; }
  void resetStream(StreamResetReason reason) override;
  void readDisable(bool disable) override;

  // Optional observer, called when an exchange has finished (request sent, response received).
  std::function<void()> on_complete_;

 private:
  int onMessageBegin() override;
  int onUrl(const char*, size_t) override { return 0; }
  int onHeadersComplete() override;
  int onBody(const char* at, size_t len) override;
  int onMessageComplete() override;
  HeaderMap* currentHeaderMap() override;
  bool countHeaderBytes(size_t n) override;
  void flushBody(bool end_stream);
  void maybeComplete();

  static constexpr uint64_t kMaxResponseHeadersBytes = 96 * 1024;
  static constexpr size_t kMaxResponseHeadersCount = 200;
  uint64_t header_bytes_ = 0;

  Network::Connection& connection_;
  ResponseDecoder* decoder_ = nullptr;
  StreamCallbacks* stream_callbacks_ = nullptr;
  ResponseHeaderMapPtr headers_;
  Buffer::OwnedImpl body_;
  bool chunked_ = false;
  bool is_head_ = false;
  bool request_complete_ = false;
  bool response_complete_ = false;
  bool response_started_ = false;
  bool keep_alive_ = true;
  bool failed_ = false;
  bool read_disabled_ = false;
  bool ignoring_1xx_ = false;
  bool headers_decoded_ = false;
  bool end_sent_ = false;
};

// "200" -> "OK"; unknown codes get a generic phrase.
absl::string_view reasonPhrase(uint32_t status);

}  // namespace Http1
}  // namespace Http
}  // namespace sluice
