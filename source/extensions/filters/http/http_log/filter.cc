#include "source/extensions/filters/http/http_log/filter.h"

#include <algorithm>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "source/common/common/json.h"
#include "source/common/http/path.h"
#include "source/common/router/config.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace Extensions {
namespace HttpLog {
namespace {

constexpr absl::string_view kRedacted = "REDACTED";
// Query arguments listed in `querystring` at most (nginx's, and so Kong's, default).
constexpr size_t kMaxQueryArgs = 100;

// Appends "key":
void key(std::string& out, absl::string_view k) {
  out += '"';
  out.append(k.data(), k.size());
  out += "\":";
}

void text(std::string& out, absl::string_view v) { Json::appendStringUtf8Safe(out, v); }

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
// name compared as sent, as the redaction of the uri does).
void querystring(std::string& out, absl::string_view query, const Http::CredentialNames& secrets) {
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
  out += '{';
  bool first = true;
  for (const Arg& a : args) {
    if (!first) out += ',';
    first = false;
    text(out, a.name);
    out += ':';
    auto value = [&out, &a](const std::string& v) {
      if (a.secret) {
        Json::appendString(out, kRedacted);
      } else if (v == "\x01") {
        out += "true";
      } else {
        text(out, v);
      }
    };
    if (a.values.size() == 1) {
      value(a.values.front());
    } else {
      out += '[';
      for (size_t i = 0; i < a.values.size(); ++i) {
        if (i > 0) out += ',';
        value(a.values[i]);
      }
      out += ']';
    }
  }
  out += '}';
}

// Headers as Kong logs them: {name: value | [values...]} (names lower case, a repeated header's
// values in an array), credentials' values redacted.
void headers(std::string& out, const Http::HeaderMap& map, const Http::CredentialNames& secrets) {
  const auto& entries = map.entries();
  out += '{';
  bool first = true;
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string& name = entries[i].key;
    bool earlier = false;
    size_t count = 1;
    for (size_t j = 0; j < entries.size(); ++j) {
      if (j != i && entries[j].key == name) {
        if (j < i) {
          earlier = true;
          break;
        }
        ++count;
      }
    }
    if (earlier) continue;  // listed with its first occurrence
    if (!first) out += ',';
    first = false;
    text(out, name);
    out += ':';
    const bool secret = secrets.isSecretHeader(name);
    auto value = [&out, secret](const std::string& v) {
      if (secret) {
        Json::appendString(out, kRedacted);
      } else {
        text(out, v);
      }
    };
    if (count == 1) {
      value(entries[i].value);
      continue;
    }
    out += '[';
    bool first_value = true;
    for (size_t j = i; j < entries.size(); ++j) {
      if (entries[j].key != name) continue;
      if (!first_value) out += ',';
      first_value = false;
      value(entries[j].value);
    }
    out += ']';
  }
  out += '}';
}

// The header section's size as HTTP/1.1 would carry it (name: value CRLF, and the final CRLF).
uint64_t headerBytes(const Http::HeaderMap& map) {
  uint64_t n = 2;
  for (const auto& e : map.entries()) n += e.key.size() + e.value.size() + 4;
  return n;
}

// A request target with the credentials' values in its query redacted.
std::string redactedTarget(absl::string_view target, const Http::CredentialNames& secrets) {
  if (target.find('?') == absl::string_view::npos) return std::string(target);
  return Http::redactQuery(target, secrets.queryParams());
}

}  // namespace

std::string serializeEntry(const EntryInput& in, const Http::CredentialNames& secrets) {
  const Http::StreamInfo& info = *in.info;
  const Http::RequestHeaderMap* req = in.request;
  const Http::ResponseHeaderMap* resp = in.response;
  std::string out;
  out.reserve(768 + (req != nullptr ? req->byteSize() * 5 / 4 : 0) +
              (resp != nullptr ? resp->byteSize() * 5 / 4 : 0));

  // The target as the client sent it (kept by the listener for this filter), else as routed.
  const absl::string_view sent = !info.original_path.empty() ? absl::string_view(info.original_path)
                                 : req != nullptr            ? absl::string_view(req->path)
                                                             : absl::string_view();
  const std::string uri = redactedTarget(sent, secrets);

  out += "{\"request\":{";
  key(out, "method");
  text(out, req != nullptr ? absl::string_view(req->method) : absl::string_view());
  out += ',';
  key(out, "uri");
  text(out, uri);
  out += ',';
  key(out, "url");
  {
    absl::string_view scheme = req != nullptr ? req->get("x-forwarded-proto") : "";
    absl::string_view host = req != nullptr ? req->get("x-forwarded-host") : "";
    if (host.empty() && req != nullptr) host = req->host();
    if (scheme.empty()) scheme = "http";
    text(out, absl::StrCat(scheme, "://", host, uri));
  }
  out += ',';
  key(out, "size");
  {
    uint64_t size = info.bytes_received;
    if (req != nullptr) {
      // "<method> <target> HTTP/1.1\r\n", the header section, the body.
      size += req->method.size() + 1 + sent.size() + 11 + headerBytes(*req);
    }
    absl::StrAppend(&out, size);
  }
  out += ',';
  key(out, "querystring");
  {
    const size_t q = sent.find('?');
    querystring(out, q == absl::string_view::npos ? absl::string_view() : sent.substr(q + 1),
                secrets);
  }
  out += ',';
  key(out, "headers");
  if (req != nullptr) {
    headers(out, *req, secrets);
  } else {
    out += "{}";
  }
  out += "},";

  key(out, "upstream_uri");
  text(out, req != nullptr ? redactedTarget(req->path, secrets) : std::string());
  out += ',';

  out += "\"response\":{";
  key(out, "status");
  absl::StrAppend(&out, info.status);
  out += ',';
  key(out, "size");
  absl::StrAppend(&out, info.bytes_sent + (resp != nullptr ? 17 + headerBytes(*resp) : 0));
  out += ',';
  key(out, "headers");
  if (resp != nullptr) {
    headers(out, *resp, secrets);
  } else {
    out += "{}";
  }
  out += "},";

  // Whole milliseconds, as Kong's: request = kong + proxy; proxy -1 without an upstream response.
  const int64_t total_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(in.now - info.start).count();
  const int64_t proxy_ms = info.upstream_time_us >= 0 ? info.upstream_time_us / 1000 : -1;
  out += "\"latencies\":{";
  key(out, "request");
  absl::StrAppend(&out, std::max<int64_t>(total_ms, 0));
  out += ',';
  key(out, "kong");
  absl::StrAppend(&out, std::max<int64_t>(proxy_ms >= 0 ? total_ms - proxy_ms : total_ms, 0));
  out += ',';
  key(out, "proxy");
  absl::StrAppend(&out, proxy_ms);
  out += "},";

  if (in.route != nullptr) {
    out += "\"route\":{";
    key(out, "name");
    text(out, in.route->name());
    out += "},";
  }
  if (!info.upstream_cluster.empty()) {
    out += "\"service\":{";
    key(out, "name");
    text(out, info.upstream_cluster);
    out += "},";
  }
  const absl::string_view consumer = info.filter_state.getString(Http::FilterStateNames::kConsumer);
  if (!consumer.empty()) {
    out += "\"consumer\":{";
    key(out, "username");
    text(out, consumer);
    out += "},";
  }
  const absl::string_view credential =
      info.filter_state.getString(Http::FilterStateNames::kCredential);
  if (!credential.empty()) {
    out += "\"authenticated_entity\":{";
    key(out, "id");
    text(out, credential);
    out += "},";
  }
  key(out, "client_ip");
  text(out, in.client_ip);
  out += ',';
  key(out, "started_at");
  absl::StrAppend(&out, std::chrono::duration_cast<std::chrono::milliseconds>(
                            info.start_wall.time_since_epoch())
                            .count());
  out += ',';
  key(out, "request_id");
  text(out, info.request_id);
  if (!info.trace_id.empty()) {
    out += ',';
    key(out, "trace_id");
    text(out, info.trace_id);
  }
  out += '}';
  return out;
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
