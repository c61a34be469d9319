#include "source/extensions/filters/http/http_log/filter.h"

#include <algorithm>
#include <cstring>

#include "absl/container/inlined_vector.h"
#include "absl/strings/numbers.h"
#include "source/common/common/json.h"
#include "source/common/http/path.h"
#include "source/common/router/config.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace Extensions {
namespace HttpLog {
namespace {

// Query arguments listed in `querystring` at most (nginx's, and so Kong's, default).
constexpr size_t kMaxQueryArgs = 100;

// The entry being written, in this thread's scratch buffer (grown to the largest entry so far,
// never shrunk, never zero-filled again), then copied out once: no std::string append, with
// its checks and growth, per piece.
class Out {
 public:
  explicit Out(size_t expected) : buf_(scratch()) {
    if (buf_.size() < expected) buf_.resize(expected);
  }

  template <size_t N>
  void lit(const char (&s)[N]) {
    memcpy(room(N - 1), s, N - 1);
    n_ += N - 1;
  }
  void ch(char c) {
    *room(1) = c;
    ++n_;
  }
  // The inside of a JSON string (no quotes).
  void escaped(absl::string_view s) {
    char* p = room(s.size() * Json::kMaxEscapedBytesPerByte);
    n_ = Json::escapeUtf8Safe(p, s) - buf_.data();
  }
  void str(absl::string_view s) {
    ch('"');
    escaped(s);
    ch('"');
  }
  void number(int64_t v) {
    char* p = room(24);
    n_ = absl::numbers_internal::FastIntToBuffer(v, p) - buf_.data();
  }
  std::string take() const { return std::string(buf_.data(), n_); }

 private:
  static std::string& scratch() {
    thread_local std::string buffer;
    return buffer;
  }
  char* room(size_t k) {
    if (n_ + k > buf_.size()) buf_.resize(std::max(buf_.size() * 2, n_ + k));
    return buf_.data() + n_;
  }
  std::string& buf_;
  size_t n_ = 0;
};

// Percent-decodes a query component ('+' is a space); a broken escape stays as it is.
std::string decodeQueryComponent(absl::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%' && i + 2 < in.size() && Http::Path::hexValue(in[i + 1]) >= 0 &&
               Http::Path::hexValue(in[i + 2]) >= 0) {
      out +=
          static_cast<char>(Http::Path::hexValue(in[i + 1]) * 16 + Http::Path::hexValue(in[i + 2]));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

// The query as Kong's querystring: {name: value | true | [values...]}, names and values
// percent-decoded, in the order of their first appearance; credentials' values redacted (the
// name compared as sent and decoded, as the redaction of the uri does).
void querystring(Out& out, absl::string_view query, const Http::CredentialNames& secrets) {
  struct Arg {
    std::string name;
    absl::InlinedVector<std::string, 1> values;  // "\x01" alone: a name without '='
    bool secret = false;
  };
  absl::InlinedVector<Arg, 4> args;
  size_t seen = 0;
  while (!query.empty() && seen < kMaxQueryArgs) {
    const size_t amp = query.find('&');
    const absl::string_view pair = query.substr(0, amp);
    query = amp == absl::string_view::npos ? absl::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    ++seen;
    const size_t eq = pair.find('=');
    const absl::string_view raw_name = pair.substr(0, eq);
    std::string name = decodeQueryComponent(raw_name);
    Arg* arg = nullptr;
    for (Arg& a : args) {
      if (a.name == name) arg = &a;
    }
    if (arg == nullptr) {
      args.push_back(Arg{std::move(name), {}, false});
      arg = &args.back();
    }
    arg->secret = arg->secret || secrets.isSecretQueryParam(raw_name) ||
                  secrets.isSecretQueryParam(arg->name);
    arg->values.push_back(eq == absl::string_view::npos
                              ? std::string("\x01")
                              : decodeQueryComponent(pair.substr(eq + 1)));
  }
  out.ch('{');
  bool first = true;
  for (const Arg& a : args) {
    if (!first) out.ch(',');
    first = false;
    out.str(a.name);
    out.ch(':');
    auto value = [&out, &a](const std::string& v) {
      if (a.secret) {
        out.lit("\"REDACTED\"");
      } else if (v == "\x01") {
        out.lit("true");
      } else {
        out.str(v);
      }
    };
    if (a.values.size() == 1) {
      value(a.values.front());
    } else {
      out.ch('[');
      for (size_t i = 0; i < a.values.size(); ++i) {
        if (i > 0) out.ch(',');
        value(a.values[i]);
      }
      out.ch(']');
    }
  }
  out.ch('}');
}

// Headers as Kong logs them: {name: value | [values...]} (names lower case, a repeated header's
// values in an array), credentials' values redacted.
void headers(Out& out, const Http::HeaderMap& map, const Http::CredentialNames& secrets) {
  const auto& entries = map.entries();
  // A repeated name is rare: compare cheap fingerprints (length, first and last byte) first.
  absl::InlinedVector<uint32_t, 24> fp(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string& k = entries[i].key;
    fp[i] = k.empty() ? 0
                      : (static_cast<uint32_t>(k.size()) << 16) |
                            (static_cast<uint8_t>(k.front()) << 8) | static_cast<uint8_t>(k.back());
  }
  auto same = [&](size_t a, size_t b) {
    return fp[a] == fp[b] && entries[a].key == entries[b].key;
  };
  // Most header sections repeat no name: then each header is written as it comes.
  bool repeats = false;
  for (size_t i = 0; i < entries.size() && !repeats; ++i) {
    for (size_t j = i + 1; j < entries.size(); ++j) {
      if (fp[i] == fp[j]) {
        repeats = true;
        break;
      }
    }
  }
  out.ch('{');
  bool first = true;
  for (size_t i = 0; i < entries.size(); ++i) {
    bool earlier = false;
    size_t count = 1;
    for (size_t j = 0; repeats && j < entries.size(); ++j) {
      if (j != i && same(i, j)) {
        if (j < i) {
          earlier = true;
          break;
        }
        ++count;
      }
    }
    if (earlier) continue;  // listed with its first occurrence
    const std::string& name = entries[i].key;
    if (!first) out.ch(',');
    first = false;
    out.str(name);
    out.ch(':');
    const bool secret = secrets.isSecretHeader(name);
    auto value = [&out, secret](const std::string& v) {
      if (secret) {
        out.lit("\"REDACTED\"");
      } else {
        out.str(v);
      }
    };
    if (count == 1) {
      value(entries[i].value);
      continue;
    }
    out.ch('[');
    bool first_value = true;
    for (size_t j = i; j < entries.size(); ++j) {
      if (!same(i, j)) continue;
      if (!first_value) out.ch(',');
      first_value = false;
      value(entries[j].value);
    }
    out.ch(']');
  }
  out.ch('}');
}

// The header section's size as HTTP/1.1 would carry it (name: value CRLF, and the final CRLF).
uint64_t headerBytes(const Http::HeaderMap& map) {
  uint64_t n = 2;
  for (const auto& e : map.entries()) n += e.key.size() + e.value.size() + 4;
  return n;
}

// Whether `target`'s query may hold a credential: one of the names occurs in it (a cheap
// look before the query is taken apart).
bool mayHoldCredential(absl::string_view target, const Http::CredentialNames& secrets) {
  const size_t q = target.find('?');
  if (q == absl::string_view::npos) return false;
  const absl::string_view query = target.substr(q + 1);
  if (query.find('%') != absl::string_view::npos) return true;  // an escaped name
  for (const std::string& name : secrets.queryParams()) {
    if (query.find(name) != absl::string_view::npos) return true;
  }
  return false;
}

// A request target with the credentials' values in its query redacted: `target` itself, or
// the redacted copy made in `storage`.
absl::string_view redactedTarget(absl::string_view target, const Http::CredentialNames& secrets,
                                 std::string& storage) {
  if (!mayHoldCredential(target, secrets)) return target;
  storage = Http::redactQuery(target, secrets.queryParams());
  return storage;
}

}  // namespace

std::string serializeEntry(const EntryInput& in, const Http::CredentialNames& secrets) {
  const Http::StreamInfo& info = *in.info;
  const Http::RequestHeaderMap* req = in.request;
  const Http::ResponseHeaderMap* resp = in.response;
  const uint64_t req_bytes = req != nullptr ? headerBytes(*req) : 0;
  const uint64_t resp_bytes = resp != nullptr ? headerBytes(*resp) : 0;
  Out out(768 + req_bytes + resp_bytes + (req != nullptr ? 3 * req->path.size() : 0));

  // The target as the client sent it (kept by the listener for this filter), else as routed.
  const absl::string_view sent = !info.original_path.empty() ? absl::string_view(info.original_path)
                                 : req != nullptr            ? absl::string_view(req->path)
                                                             : absl::string_view();
  std::string uri_storage;
  const absl::string_view uri = redactedTarget(sent, secrets, uri_storage);

  out.lit("{\"request\":{\"method\":\"");
  if (req != nullptr) out.escaped(req->method);
  out.lit("\",\"uri\":\"");
  out.escaped(uri);
  out.lit("\",\"url\":\"");
  {
    absl::string_view scheme = req != nullptr ? req->get("x-forwarded-proto") : "";
    absl::string_view host = req != nullptr ? req->get("x-forwarded-host") : "";
    if (host.empty() && req != nullptr) host = req->host();
    if (scheme.empty()) scheme = "http";
    out.escaped(scheme);
    out.lit("://");
    out.escaped(host);
    out.escaped(uri);
  }
  out.lit("\",\"size\":");
  // "<method> <target> HTTP/1.1\r\n", the header section, the body.
  out.number(info.bytes_received +
             (req != nullptr ? req->method.size() + 1 + sent.size() + 11 + req_bytes : 0));
  out.lit(",\"querystring\":");
  {
    const size_t q = sent.find('?');
    querystring(out, q == absl::string_view::npos ? absl::string_view() : sent.substr(q + 1),
                secrets);
  }
  out.lit(",\"headers\":");
  if (req != nullptr) {
    headers(out, *req, secrets);
  } else {
    out.lit("{}");
  }
  out.lit("},\"upstream_uri\":\"");
  if (req != nullptr) {
    if (absl::string_view(req->path) == sent) {
      out.escaped(uri);
    } else {
      std::string storage;
      out.escaped(redactedTarget(req->path, secrets, storage));
    }
  }
  out.lit("\",\"response\":{\"status\":");
  out.number(info.status);
  out.lit(",\"size\":");
  out.number(info.bytes_sent + (resp != nullptr ? 17 + resp_bytes : 0));
  out.lit(",\"headers\":");
  if (resp != nullptr) {
    headers(out, *resp, secrets);
  } else {
    out.lit("{}");
  }

  // Whole milliseconds, as Kong's: request = kong + proxy; proxy -1 without an upstream response.
  const int64_t total_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(in.now - info.start).count();
  const int64_t proxy_ms = info.upstream_time_us >= 0 ? info.upstream_time_us / 1000 : -1;
  out.lit("},\"latencies\":{\"request\":");
  out.number(std::max<int64_t>(total_ms, 0));
  out.lit(",\"kong\":");
  out.number(std::max<int64_t>(proxy_ms >= 0 ? total_ms - proxy_ms : total_ms, 0));
  out.lit(",\"proxy\":");
  out.number(proxy_ms);
  out.lit("},");

  if (in.route != nullptr) {
    out.lit("\"route\":{\"name\":");
    out.str(in.route->name());
    out.lit("},");
  }
  if (!info.upstream_cluster.empty()) {
    out.lit("\"service\":{\"name\":");
    out.str(info.upstream_cluster);
    out.lit("},");
  }
  if (!info.filter_state.empty()) {
    const absl::string_view consumer =
        info.filter_state.getString(Http::FilterStateNames::kConsumer);
    if (!consumer.empty()) {
      out.lit("\"consumer\":{\"username\":");
      out.str(consumer);
      out.lit("},");
    }
    const absl::string_view credential =
        info.filter_state.getString(Http::FilterStateNames::kCredential);
    if (!credential.empty()) {
      out.lit("\"authenticated_entity\":{\"id\":");
      out.str(credential);
      out.lit("},");
    }
  }
  out.lit("\"client_ip\":");
  out.str(in.client_ip);
  out.lit(",\"started_at\":");
  out.number(
      std::chrono::duration_cast<std::chrono::milliseconds>(info.start_wall.time_since_epoch())
          .count());
  out.lit(",\"request_id\":");
  out.str(info.request_id);
  if (!info.trace_id.empty()) {
    out.lit(",\"trace_id\":");
    out.str(info.trace_id);
  }
  out.ch('}');
  return out.take();
}

Http::BatchSink* FilterConfig::sinkFor(const LogConfig& config) const {
  absl::call_once(config.sink_once, [this, &config]() {
    if (singletons_ == nullptr) return;
    config.sink = singletons_->getOrCreate<Http::BatchSink>(
        config.sink_key, [this, &config]() -> Http::BatchSinkSharedPtr {
          auto sink = Http::BatchSink::create(
              config.settings,
              std::make_shared<Http::JsonArrayBatchEncoder>(config.settings.queue_size == 1),
              stats_, kStatPrefix, dns_);
          if (!sink.ok()) {
            spdlog::error("http_log {}: {}", config.settings.endpoint.displayName(),
                          std::string(sink.status().message()));
            return nullptr;
          }
          return *sink;
        });
  });
  return config.sink.get();
}

void HttpLogFilter::onDestroy() {
  if (callbacks_ == nullptr) return;
  const Router::RouteEntry* route = callbacks_->route();
  const LogConfig* config =
      route != nullptr ? route->perFilterConfig<LogConfig>(kFilterName) : nullptr;
  if (config == nullptr) config = &config_->listener();
  if (config->disabled) return;
  Http::BatchSink* sink = config_->sinkFor(*config);
  if (sink == nullptr) return;
  EntryInput in;
  in.info = &callbacks_->streamInfo();
  in.request = &callbacks_->requestHeaders();
  in.response = callbacks_->responseHeaders();
  in.route = route;
  in.client_ip = callbacks_->downstreamAddress();
  in.now = callbacks_->dispatcher().now();
  sink->enqueue(serializeEntry(in, config_->secrets()));
}

}  // namespace HttpLog
}  // namespace Extensions
}  // namespace sluice
