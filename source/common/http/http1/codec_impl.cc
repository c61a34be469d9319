#include "source/common/http/http1/codec_impl.h"

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace sluice {
namespace Http {
namespace Http1 {

absl::string_view reasonPhrase(uint32_t status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 417:
      return "Expectation Failed";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      if (status < 200) return "Informational";
      if (status < 300) return "Success";
      if (status < 400) return "Redirection";
      if (status < 500) return "Client Error";
      return "Server Error";
  }
}

namespace {

void appendHex(std::string& out, uint64_t v) {
  static const char kHex[] = "0123456789abcdef";
  char buf[16];
  int n = 0;
  do {
    buf[n++] = kHex[v & 0xf];
    v >>= 4;
  } while (v != 0);
  while (n > 0) {
    out += buf[--n];
  }
}

void appendHeaders(std::string& out, const HeaderMap& headers, bool skip_framing) {
  // Size once, then copy: one resize instead of four appends per header.
  size_t size = 0;
  for (const HeaderEntry& e : headers.entries()) {
    size += e.key.size() + e.value.size() + 4;
  }
  size_t pos = out.size();
  out.resize(pos + size);
  char* p = out.data() + pos;
  for (const HeaderEntry& e : headers.entries()) {
    const absl::string_view k = e.key;
    if (skip_framing && (k == "transfer-encoding" || k == "connection" || k == "te")) {
      continue;
    }
    memcpy(p, e.key.data(), e.key.size());
    p += e.key.size();
    *p++ = ':';
    *p++ = ' ';
    memcpy(p, e.value.data(), e.value.size());
    p += e.value.size();
    *p++ = '\r';
    *p++ = '\n';
  }
  out.resize(p - out.data());
}

// Writes body bytes, in chunked framing when `chunked` (the last-chunk on end_stream).
void writeBody(Network::Connection& conn, Buffer::Instance& data, bool chunked, bool end_stream) {
  if (!chunked) {
    conn.write(data);
    return;
  }
  if (data.length() > 0) {
    std::string head;
    appendHex(head, data.length());
    head.append("\r\n");
    Buffer::OwnedImpl framed;
    framed.add(head);
    framed.move(data);
    framed.add("\r\n", 2);
    conn.write(framed);
  }
  if (end_stream) {
    conn.write("0\r\n\r\n");
  }
}

// Ends a chunked body with trailers (dropped for a Content-Length body, which can't carry them).
void writeTrailers(Network::Connection& conn, const HeaderMap& trailers, bool chunked) {
  if (chunked) {
    std::string out = "0\r\n";
    appendHeaders(out, trailers, true);
    out.append("\r\n");
    conn.write(out);
  }
}

}  // namespace

// Trampolines: llhttp's C callbacks into the C++ parser objects.
namespace {
ParserBase* self(llhttp_t* p) { return static_cast<ParserBase*>(p->data); }
}  // namespace

struct ParserCallbacks {
  static int messageBegin(llhttp_t* p) { return self(p)->onMessageBegin(); }
  static int url(llhttp_t* p, const char* at, size_t len) { return self(p)->onUrl(at, len); }
  static int headerField(llhttp_t* p, const char* at, size_t len) {
    return self(p)->onHeaderField(at, len);
  }
  static int headerValue(llhttp_t* p, const char* at, size_t len) {
    return self(p)->onHeaderValue(at, len);
  }
  static int headersComplete(llhttp_t* p) { return self(p)->onHeadersComplete(); }
  static int body(llhttp_t* p, const char* at, size_t len) { return self(p)->onBody(at, len); }
  static int messageComplete(llhttp_t* p) { return self(p)->onMessageComplete(); }
};

const llhttp_settings_t* ParserBase::settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t st;
    llhttp_settings_init(&st);
    st.on_message_begin = &ParserCallbacks::messageBegin;
    st.on_url = &ParserCallbacks::url;
    st.on_header_field = &ParserCallbacks::headerField;
    st.on_header_value = &ParserCallbacks::headerValue;
    st.on_headers_complete = &ParserCallbacks::headersComplete;
    st.on_body = &ParserCallbacks::body;
    st.on_message_complete = &ParserCallbacks::messageComplete;
    return st;
  }();
  return &s;
}

ParserBase::ParserBase(llhttp_type_t type) {
  llhttp_init(&parser_, type, settings());
  parser_.data = this;
}

int ParserBase::onHeaderField(const char* at, size_t len) {
  if (!countHeaderBytes(len)) {
    return HPE_USER;
  }
  if (in_value_) {
    HeaderMap* map = currentHeaderMap();
    if (map == nullptr || !commitHeader(*map)) {
      return HPE_USER;
    }
  }
  field_.append(at, len);
  return 0;
}

int ParserBase::onHeaderValue(const char* at, size_t len) {
  if (!countHeaderBytes(len)) {
    return HPE_USER;
  }
  // llhttp accepts obs-fold (a line starting with SP/HTAB continues the value). RFC 9112 5.2
  // lets us reject it, and a proxy must not pass it on: detect it from the raw bytes. Within
  // one buffer a value arrives as one span, so a second span for the same header, or a span
  // preceded by LF + whitespace, is a fold.
  if (len == 0) {
    in_value_ = true;
    return 0;
  }
  if (in_value_ && at != exec_base_ && !value_.empty()) {
    return userError(400, "obs-fold in header value");
  }
  const char* p = at;
  while (p > exec_base_ && (p[-1] == ' ' || p[-1] == '\t')) {
    --p;
  }
  // At the start of a buffer, look at how the previous one ended.
  const bool after_lf = p > exec_base_ ? p[-1] == '\n' : prev_ended_lf_;
  if (after_lf || memchr(at, '\n', len) != nullptr) {
    return userError(400, "obs-fold in header value");
  }
  in_value_ = true;
  value_.append(at, len);
  return 0;
}

bool ParserBase::commitHeader(HeaderMap& map) {
  in_value_ = false;
  // Strict llhttp has already checked the name's token characters and the value's characters
  // (no CTLs but HTAB, so no NUL/CR/LF); an empty name can still slip through.
  if (field_.empty()) {
    userError(400, "invalid header name");
    return false;
  }
  absl::string_view v = absl::StripTrailingAsciiWhitespace(value_);
  underscore_in_names_ |= toLowerInPlace(field_);
  if (headers_done_ && isForbiddenTrailer(field_)) {
    // A Content-Length (or Host, Authorization...) in trailers must not be merged into or
    // forwarded as the message's fields: drop it.
    field_.clear();
    value_.clear();
    return true;
  }
  if (v.size() != value_.size()) {
    value_.resize(v.size());
  }
  map.addMove(std::move(field_), std::move(value_));
  field_.clear();
  value_.clear();
  return true;
}

llhttp_errno_t ParserBase::execute(Buffer::Instance& data) {
  absl::string_view slice = data.frontSlice();
  exec_base_ = slice.data();
  llhttp_errno_t err = llhttp_execute(&parser_, slice.data(), slice.size());
  // Remember whether this buffer ended with LF plus optional whitespace (obs-fold detection
  // across reads). An all-whitespace buffer keeps the previous state.
  const char* e = slice.data() + slice.size();
  while (e > slice.data() && (e[-1] == ' ' || e[-1] == '\t')) {
    --e;
  }
  if (e > slice.data()) {
    prev_ended_lf_ = e[-1] == '\n';
  }
  size_t consumed = slice.size();
  if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
    consumed = llhttp_get_error_pos(&parser_) - slice.data();
  }
  data.drain(consumed);
  return err;
}

// ---------------------------------------------------------------------------------------------
// Server

ServerConnectionImpl::ServerConnectionImpl(Network::Connection& connection,
                                           ServerConnectionCallbacks& callbacks,
                                           const CodecSettings& settings)
    : ParserBase(HTTP_REQUEST),
      connection_(connection),
      callbacks_(callbacks),
      settings_(settings) {}

ServerConnectionImpl::~ServerConnectionImpl() = default;

void ServerConnectionImpl::dispatch(Buffer::Instance& data) {
  if (failed_ || closing_) {
    data.drain(data.length());
    return;
  }
  in_dispatch_ = true;
  while (data.length() > 0 && !paused_ && !failed_ && !closing_) {
    llhttp_errno_t err = execute(data);
    if (err == HPE_OK) {
      continue;
    }
    if (err == HPE_PAUSED_UPGRADE) {
      // Upgrades are not performed: the request was proxied as plain HTTP, and what follows
      // must be another HTTP request.
      llhttp_resume_after_upgrade(&parser_);
      continue;
    }
    if (err == HPE_PAUSED) {
      break;
    }
    if (user_error_) {
      fail(error_status_, error_details_);
    } else {
      const char* reason = llhttp_get_error_reason(&parser_);
      fail(400, reason != nullptr ? reason : llhttp_errno_name(err));
    }
    break;
  }
  if (!failed_ && stream_ != nullptr && !stream_->request_complete_ && body_.length() > 0) {
    flushBody(false);
  }
  in_dispatch_ = false;
}

bool ServerConnectionImpl::countHeaderBytes(size_t n) {
  if (headers_done_) {
    // Trailers count against the same limit.
  }
  header_bytes_ += n;
  if (header_bytes_ > settings_.max_request_headers_bytes) {
    userError(431, "request headers too large");
    return false;
  }
  return true;
}

HeaderMap* ServerConnectionImpl::currentHeaderMap() {
  if (!headers_done_) {
    if (headers_ && headers_->size() >= settings_.max_headers_count) {
      userError(431, "too many request headers");
      return nullptr;
    }
    return headers_.get();
  }
  if (!trailers_) {
    trailers_ = std::make_unique<HeaderMap>();
  }
  return trailers_.get();
}

int ServerConnectionImpl::onMessageBegin() {
  discard_bytes_ = 0;
  headers_ = std::make_unique<RequestHeaderMap>();
  headers_->entries().reserve(16);  // typical requests: no regrowth while parsing
  underscore_in_names_ = false;
  trailers_.reset();
  headers_done_ = false;
  in_value_ = false;
  field_.clear();
  value_.clear();
  header_bytes_ = 0;
  body_bytes_ = 0;
  stream_ = std::make_unique<ServerStream>(*this);
  return 0;
}

int ServerConnectionImpl::onUrl(const char* at, size_t len) {
  if (!countHeaderBytes(len)) {
    return HPE_USER;
  }
  headers_->path.append(at, len);
  return 0;
}

int ServerConnectionImpl::onHeadersComplete() {
  if (in_value_ && !commitHeader(*headers_)) {
    return HPE_USER;
  }
  if (headers_->size() > settings_.max_headers_count) {
    return userError(431, "too many request headers");
  }
  headers_done_ = true;
  RequestHeaderMap& h = *headers_;
  h.underscore_in_names = underscore_in_names_;
  h.method = llhttp_method_name(static_cast<llhttp_method_t>(parser_.method));
  h.http_major = parser_.http_major;
  h.http_minor = parser_.http_minor;
  if (h.http_major != 1) {
    return userError(400, "unsupported HTTP version");
  }
  // Framing checks beyond llhttp's own (defence in depth; llhttp is strict by default).
  size_t cl_count = 0;
  std::string first_cl;
  bool has_te = false;
  for (const HeaderEntry& e : h.entries()) {
    const absl::string_view k = e.key;
    if (k == "content-length") {
      if (cl_count++ == 0) {
        first_cl = e.value;
      } else if (e.value != first_cl) {
        return userError(400, "conflicting content-length");
      }
    } else if (k == "transfer-encoding") {
      has_te = true;
    }
  }
  if (has_te && cl_count > 0) {
    return userError(400, "content-length with transfer-encoding");
  }
  if (has_te && !(parser_.flags & F_CHUNKED)) {
    return userError(400, "transfer-encoding must end with chunked");
  }
  if (h.http_minor >= 1 && !h.has("host")) {
    return userError(400, "missing host header");
  }
  if (h.count("host") > 1) {
    return userError(400, "multiple host headers");
  }
  // Upgrade is refused by ignoring it (RFC 9110 7.8): the request is plain HTTP.
  parser_.upgrade = 0;
  if (parser_.method == HTTP_CONNECT) {
    return userError(405, "CONNECT is not supported");
  }
  if (h.path.empty() || h.path[0] != '/') {
    if (!(h.path == "*" && parser_.method == HTTP_OPTIONS)) {
      // Absolute-form targets are for forward proxies.
      return userError(400, "request target must be origin-form");
    }
  }
  const bool chunked = (parser_.flags & F_CHUNKED) != 0;
  const uint64_t content_length = (parser_.flags & F_CONTENT_LENGTH) ? parser_.content_length : 0;
  if (settings_.max_request_body_bytes > 0 && content_length > settings_.max_request_body_bytes) {
    return userError(413, "request body too large");
  }
  const bool end_stream = !chunked && content_length == 0;

  ServerStream& s = *stream_;
  s.http_minor_ = h.http_minor;
  http_minor_ = h.http_minor;
  s.is_head_ = parser_.method == HTTP_HEAD;
  s.close_after_ = !llhttp_should_keep_alive(&parser_);
  if (h.http_minor == 0 && !s.close_after_) {
    s.keep_alive_10_ = true;
  }
  s.request_complete_ = end_stream;
  s.decoder_ = &callbacks_.newStream(s);
  s.decoder_->decodeHeaders(std::move(headers_), end_stream);
  return 0;
}

int ServerConnectionImpl::onBody(const char* at, size_t len) {
  body_bytes_ += len;
  if (settings_.max_request_body_bytes > 0 && body_bytes_ > settings_.max_request_body_bytes) {
    return userError(413, "request body too large");
  }
  if (stream_ && !stream_->response_complete_) {
    body_.add(at, len);
  } else if ((discard_bytes_ += len) > kMaxDiscardBytes) {
    // Answered already and the rest of the body is large: close rather than read it all.
    closing_ = true;
    connection_.close(Network::Connection::CloseType::FlushWrite);
    return HPE_PAUSED;
  }
  return 0;
}

void ServerConnectionImpl::flushBody(bool end_stream) {
  if (stream_ == nullptr || stream_->decoder_ == nullptr || stream_->response_complete_) {
    body_.clear();
    return;
  }
  if (body_.empty() && !end_stream) {
    return;
  }
  stream_->decoder_->decodeData(body_, end_stream);
  body_.clear();
}

int ServerConnectionImpl::onMessageComplete() {
  if (in_value_) {
    HeaderMap* map = currentHeaderMap();
    if (map == nullptr || !commitHeader(*map)) {
      return HPE_USER;
    }
  }
  ServerStream* s = stream_.get();
  if (s == nullptr) {
    // Answered and finished while its headers were being handled (a local reply to a
    // body-less request): go on with the next pipelined request.
    return closing_ ? HPE_PAUSED : 0;
  }
  if (!s->request_complete_) {
    s->request_complete_ = true;
    if (!s->response_complete_) {
      if (trailers_ && trailers_->size() > 0) {
        flushBody(false);
        if (stream_.get() == s && s->decoder_ && !s->response_complete_) {
          s->decoder_->decodeTrailers(std::move(trailers_));
        }
      } else {
        flushBody(true);
      }
      if (stream_.get() != s) {
        // The response completed while the body's end was delivered, and the exchange has
        // already been finished (the stream freed): go on with the next request.
        return closing_ ? HPE_PAUSED : 0;
      }
    }
  }
  if (s->response_complete_) {
    // Answered already (e.g. a direct response to a body-less request): go on to the next
    // pipelined request, unless the connection is closing.
    onResponseComplete();
    return closing_ ? HPE_PAUSED : 0;
  }
  paused_ = true;
  return HPE_PAUSED;
}

void ServerConnectionImpl::onResponseComplete() {
  ServerStream* s = stream_.get();
  if (s->close_after_) {
    closing_ = true;
    connection_.close(Network::Connection::CloseType::FlushWrite);
    return;
  }
  if (!s->request_complete_) {
    // Answered before the request body ended (direct response, early upstream reply): keep
    // reading and discarding the body (bounded by kMaxDiscardBytes), then go on.
    return;
  }
  // Done with this exchange: free the stream now so an idle keep-alive connection holds as
  // little memory as possible (deferred: we may be inside one of its methods).
  connection_.dispatcher().deferredDelete(std::move(stream_));
  if (paused_) {
    paused_ = false;
    llhttp_resume(&parser_);
    // Pipelined bytes may be waiting: parse them from the loop, not from this call stack.
    Network::Connection* conn = &connection_;
    connection_.dispatcher().deferred([conn]() { conn->resumeRead(); });
  }
}

void ServerConnectionImpl::fail(uint32_t status, const char* details) {
  failed_ = true;
  closing_ = true;
  if (stream_) {
    stream_->close_after_ = true;
  }
  callbacks_.onCodecError(CodecError{status, details});
}

void ServerConnectionImpl::sendStreamlessResponse(const ResponseHeaderMap& headers,
                                                  absl::string_view body) {
  std::string out;
  out.reserve(128 + headers.byteSize() + headers.size() * 4 + body.size());
  absl::StrAppend(&out, "HTTP/1.1 ", headers.status, " ", reasonPhrase(headers.status), "\r\n");
  appendHeaders(out, headers, true);
  out.append("connection: close\r\n\r\n");
  out.append(body.data(), body.size());
  connection_.write(out);
}

void ServerStream::encode100Continue() {
  if (http_minor_ >= 1 && !headers_sent_) {
    conn_.connection_.write("HTTP/1.1 100 Continue\r\n\r\n");
  }
}

void ServerStream::encodeHeaders(const ResponseHeaderMap& headers, bool end_stream) {
  std::string out;
  out.reserve(256 + headers.byteSize() + headers.size() * 4);
  absl::StrAppend(&out, "HTTP/1.1 ", headers.status, " ", reasonPhrase(headers.status), "\r\n");
  no_body_ = is_head_ || headers.status == 204 || headers.status == 304 || headers.status < 200;
  const bool has_cl = headers.has("content-length");
  appendHeaders(out, headers, true);
  if (conn_.drain_close_) {
    close_after_ = true;
  }
  chunked_ = false;
  if (!no_body_ && !has_cl) {
    if (end_stream) {
      out.append("content-length: 0\r\n");
    } else if (http_minor_ >= 1) {
      out.append("transfer-encoding: chunked\r\n");
      chunked_ = true;
    } else {
      close_after_ = true;  // close-delimited body for HTTP/1.0
    }
  }
  if (close_after_) {
    out.append("connection: close\r\n");
  } else if (keep_alive_10_) {
    out.append("connection: keep-alive\r\n");
  }
  out.append("\r\n");
  headers_sent_ = true;
  conn_.connection_.write(out);
  if (end_stream) {
    endResponse();
  }
}

void ServerStream::encodeData(Buffer::Instance& data, bool end_stream) {
  if (response_complete_) {
    data.drain(data.length());
    return;
  }
  if (no_body_) {
    data.drain(data.length());
  } else {
    writeBody(conn_.connection_, data, chunked_, end_stream);
  }
  if (end_stream) {
    endResponse();
  }
}

void ServerStream::encodeTrailers(const HeaderMap& trailers) {
  if (response_complete_) {
    return;
  }
  writeTrailers(conn_.connection_, trailers, chunked_);
  endResponse();
}

void ServerStream::endResponse() {
  response_complete_ = true;
  if (read_disabled_) {
    read_disabled_ = false;
    conn_.connection_.readDisable(false);
  }
  conn_.onResponseComplete();
}

void ServerStream::resetStream(StreamResetReason) {
  response_complete_ = true;
  conn_.closing_ = true;
  // What was written so far still goes out; the client sees a truncated response.
  conn_.connection_.close(Network::Connection::CloseType::FlushWrite);
}

void ServerStream::readDisable(bool disable) {
  if (disable == read_disabled_ || response_complete_) {
    return;
  }
  read_disabled_ = disable;
  conn_.connection_.readDisable(disable);
}

// ---------------------------------------------------------------------------------------------
// Client

ClientConnectionImpl::ClientConnectionImpl(Network::Connection& connection)
    : ParserBase(HTTP_RESPONSE), connection_(connection) {}

RequestEncoder& ClientConnectionImpl::newStream(ResponseDecoder& decoder) {
  decoder_ = &decoder;
  stream_callbacks_ = nullptr;
  request_complete_ = false;
  response_complete_ = false;
  response_started_ = false;
  headers_decoded_ = false;
  end_sent_ = false;
  ignoring_1xx_ = false;
  llhttp_init(&parser_, HTTP_RESPONSE, settings());
  parser_.data = static_cast<ParserBase*>(this);
  return *this;
}

void ClientConnectionImpl::encodeHeaders(const RequestHeaderMap& headers, bool end_stream) {
  std::string out;
  out.reserve(256 + headers.byteSize() + headers.size() * 4);
  absl::StrAppend(&out, headers.method, " ", headers.path, " HTTP/1.1\r\n");
  const absl::string_view method = headers.method;
  is_head_ = method == "HEAD";
  const bool has_cl = headers.has("content-length");
  appendHeaders(out, headers, true);
  chunked_ = false;
  if (!has_cl) {
    if (!end_stream) {
      out.append("transfer-encoding: chunked\r\n");
      chunked_ = true;
    } else if (method == "POST" || method == "PUT" || method == "PATCH") {
      out.append("content-length: 0\r\n");
    }
  }
  out.append("\r\n");
  connection_.write(out);
  if (end_stream) {
    request_complete_ = true;
    maybeComplete();
  }
}

void ClientConnectionImpl::encodeData(Buffer::Instance& data, bool end_stream) {
  if (request_complete_) {
    data.drain(data.length());
    return;
  }
  writeBody(connection_, data, chunked_, end_stream);
  if (end_stream) {
    request_complete_ = true;
    maybeComplete();
  }
}

void ClientConnectionImpl::encodeTrailers(const HeaderMap& trailers) {
  if (request_complete_) {
    return;
  }
  writeTrailers(connection_, trailers, chunked_);
  request_complete_ = true;
  maybeComplete();
}

void ClientConnectionImpl::dispatch(Buffer::Instance& data) {
  while (data.length() > 0 && !failed_) {
    if (decoder_ == nullptr || response_complete_) {
      // Bytes with no request outstanding: the upstream is broken; never reuse it.
      failed_ = true;
      keep_alive_ = false;
      data.drain(data.length());
      break;
    }
    llhttp_errno_t err = execute(data);
    if (err == HPE_OK) {
      continue;
    }
    if (err == HPE_PAUSED) {
      if (data.length() > 0) {
        // Bytes after a complete response that nobody asked for: the connection is out of step
        // and must never carry another request (they would answer the next client).
        failed_ = true;
        keep_alive_ = false;
        data.drain(data.length());
      }
      break;
    }
    failed_ = true;
    keep_alive_ = false;
    data.drain(data.length());
    decoder_ = nullptr;
    StreamCallbacks* cb = stream_callbacks_;
    stream_callbacks_ = nullptr;
    if (cb) {
      cb->onResetStream(StreamResetReason::ProtocolError);
    }
    return;
  }
  if (!failed_ && decoder_ != nullptr && !response_complete_ && body_.length() > 0) {
    flushBody(false);
  }
}

void ClientConnectionImpl::onConnectionClose() {
  keep_alive_ = false;
  if (decoder_ == nullptr || response_complete_) {
    return;
  }
  if (headers_decoded_ && llhttp_message_needs_eof(&parser_)) {
    // Close-delimited body: EOF is its end.
    llhttp_errno_t err = llhttp_finish(&parser_);
    if (err == HPE_OK && response_complete_) {
      return;
    }
  }
  decoder_ = nullptr;
  StreamCallbacks* cb = stream_callbacks_;
  stream_callbacks_ = nullptr;
  if (cb) {
    cb->onResetStream(StreamResetReason::ConnectionTermination);
  }
}

bool ClientConnectionImpl::countHeaderBytes(size_t n) {
  // An upstream's response headers and trailers are bounded like a client's request headers.
  header_bytes_ += n;
  return header_bytes_ <= kMaxResponseHeadersBytes;
}

HeaderMap* ClientConnectionImpl::currentHeaderMap() {
  if (!headers_done_) {
    if (headers_ && headers_->size() >= kMaxResponseHeadersCount) {
      return nullptr;
    }
    return headers_.get();
  }
  if (!trailers_) {
    trailers_ = std::make_unique<HeaderMap>();
  }
  return trailers_.get();
}

int ClientConnectionImpl::onMessageBegin() {
  header_bytes_ = 0;
  headers_ = std::make_unique<ResponseHeaderMap>();
  headers_->entries().reserve(16);
  trailers_.reset();
  headers_done_ = false;
  in_value_ = false;
  field_.clear();
  value_.clear();
  response_started_ = true;
  return 0;
}

int ClientConnectionImpl::onHeadersComplete() {
  if (in_value_ && !commitHeader(*headers_)) {
    return HPE_USER;
  }
  headers_done_ = true;
  const uint32_t status = parser_.status_code;
  if (status < 200) {
    if (status == 101) {
      return HPE_USER;  // we never ask for an upgrade
    }
    ignoring_1xx_ = true;
    headers_.reset();
    return 0;
  }
  ignoring_1xx_ = false;
  headers_->status = status;
  const bool chunked = (parser_.flags & F_CHUNKED) != 0;
  const bool no_body = is_head_ || status == 204 || status == 304;
  const bool end_stream =
      no_body || (!chunked && (parser_.flags & F_CONTENT_LENGTH) && parser_.content_length == 0);
  headers_decoded_ = true;
  end_sent_ = end_stream;
  if (decoder_ != nullptr) {
    ResponseDecoder* d = decoder_;
    d->decodeHeaders(std::move(headers_), end_stream);
  }
  headers_.reset();
  return no_body ? 1 : 0;
}

int ClientConnectionImpl::onBody(const char* at, size_t len) {
  body_.add(at, len);
  return 0;
}

void ClientConnectionImpl::flushBody(bool end_stream) {
  if (decoder_ == nullptr) {
    body_.clear();
    return;
  }
  if (body_.empty() && !end_stream) {
    return;
  }
  decoder_->decodeData(body_, end_stream);
  body_.clear();
}

int ClientConnectionImpl::onMessageComplete() {
  if (ignoring_1xx_) {
    ignoring_1xx_ = false;
    return 0;  // the final response follows
  }
  if (in_value_) {
    HeaderMap* map = currentHeaderMap();
    if (map == nullptr || !commitHeader(*map)) {
      return HPE_USER;
    }
  }
  keep_alive_ = keep_alive_ && llhttp_should_keep_alive(&parser_);
  response_complete_ = true;
  if (!end_sent_) {
    end_sent_ = true;
    if (trailers_ && trailers_->size() > 0) {
      flushBody(false);
      if (decoder_) decoder_->decodeTrailers(std::move(trailers_));
    } else {
      flushBody(true);
    }
  }
  maybeComplete();
  return HPE_PAUSED;
}

void ClientConnectionImpl::maybeComplete() {
  if (!response_complete_) {
    return;
  }
  if (!request_complete_) {
    // The upstream answered before the whole request was sent: the connection can't be reused.
    keep_alive_ = false;
  }
  decoder_ = nullptr;
  stream_callbacks_ = nullptr;
  if (read_disabled_) {
    read_disabled_ = false;
    connection_.readDisable(false);
  }
  if (on_complete_) {
    on_complete_();
  }
}

void ClientConnectionImpl::resetStream(StreamResetReason) {
  decoder_ = nullptr;
  stream_callbacks_ = nullptr;
  failed_ = true;
  keep_alive_ = false;
}

void ClientConnectionImpl::readDisable(bool disable) {
  if (disable == read_disabled_) {
    return;
  }
  read_disabled_ = disable;
  connection_.readDisable(disable);
}

}  // namespace Http1
}  // namespace Http
}  // namespace sluice
