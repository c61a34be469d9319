#include "source/extensions/filters/http/request_transformer/filter.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "source/common/http/path.h"
#include "source/common/router/config.h"
#include "source/extensions/filters/http/common/transform.h"

namespace sluice {
namespace Extensions {
namespace RequestTransformer {

// ---- Forms and query strings ----------------------------------------------------------------

using Http::Path::appendPercentEncoded;
using Http::Path::hexValue;
using Http::Path::isUnreserved;

FormPairs::FormPairs(absl::string_view text) {
  if (text.empty()) return;
  for (absl::string_view p : absl::StrSplit(text, '&')) {
    if (p.empty()) continue;
    pairs_.push_back(Pair{std::string(p), decodeFormComponent(p.substr(0, p.find('=')))});
  }
}

bool FormPairs::has(absl::string_view name) const {
  for (const Pair& p : pairs_) {
    if (p.name == name) return true;
  }
  return false;
}

absl::optional<std::string> FormPairs::first(absl::string_view name) const {
  for (const Pair& p : pairs_) {
    if (p.name != name) continue;
    const size_t eq = p.raw.find('=');
    return eq == std::string::npos ? std::string() : decodeFormComponent(p.raw.substr(eq + 1));
  }
  return absl::nullopt;
}

void FormPairs::remove(absl::string_view name) {
  pairs_.erase(std::remove_if(pairs_.begin(), pairs_.end(),
                              [name](const Pair& p) { return p.name == name; }),
               pairs_.end());
}

void FormPairs::rename(absl::string_view from, absl::string_view to) {
  if (from == to) return;
  const bool present = has(from);
  remove(to);
  if (!present) return;
  const std::string encoded = encodeFormComponent(to);
  for (Pair& p : pairs_) {
    if (p.name != from) continue;
    const size_t eq = p.raw.find('=');
    p.raw = eq == std::string::npos ? encoded : absl::StrCat(encoded, p.raw.substr(eq));
    p.name = std::string(to);
  }
}

bool FormPairs::replace(absl::string_view name, absl::string_view value) {
  auto it =
      std::find_if(pairs_.begin(), pairs_.end(), [name](const Pair& p) { return p.name == name; });
  if (it == pairs_.end()) return false;
  it->raw = absl::StrCat(encodeFormComponent(name), "=", encodeFormComponent(value));
  pairs_.erase(
      std::remove_if(it + 1, pairs_.end(), [name](const Pair& p) { return p.name == name; }),
      pairs_.end());
  return true;
}

void FormPairs::add(absl::string_view name, absl::string_view value) {
  pairs_.push_back(Pair{absl::StrCat(encodeFormComponent(name), "=", encodeFormComponent(value)),
                        std::string(name)});
}

void FormPairs::append(absl::string_view name, absl::string_view value) {
  bool only_flags = false;
  for (const Pair& p : pairs_) {
    if (p.name != name) continue;
    if (p.raw.find('=') != std::string::npos) {
      only_flags = false;
      break;
    }
    only_flags = true;
  }
  if (only_flags) remove(name);
  add(name, value);
}

void FormPairs::appendAll(const FormPairs& other) {
  pairs_.insert(pairs_.end(), other.pairs_.begin(), other.pairs_.end());
}

std::string FormPairs::toString() const {
  std::string out;
  for (const Pair& p : pairs_) {
    if (!out.empty()) out += '&';
    out += p.raw;
  }
  return out;
}

bool safePath(absl::string_view uri, std::string& out) {
  if (uri.empty() || uri[0] != '/') return false;
  out.clear();
  for (size_t i = 0; i < uri.size(); ++i) {
    const char c = uri[i];
    const bool pchar = isUnreserved(static_cast<unsigned char>(c)) || c == '/' || c == ':' ||
                       c == '@' || c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' ||
                       c == ')' || c == '*' || c == '+' || c == ',' || c == ';' || c == '=';
    if (pchar || (c == '%' && i + 2 < uri.size() && hexValue(uri[i + 1]) >= 0 &&
                  hexValue(uri[i + 2]) >= 0)) {
      out += c;
    } else {
      appendPercentEncoded(out, static_cast<unsigned char>(c));
    }
  }
  for (absl::string_view seg : absl::StrSplit(out, '/')) {
    const std::string d = decodeFormComponent(absl::StrReplaceAll(seg, {{"+", "%2B"}}));
    if (d == "." || d == "..") return false;
  }
  return true;
}

// ---- The filter -------------------------------------------------------------------------------

namespace {

class RequestContext : public TemplateContext {
 public:
  RequestContext(const Http::RequestHeaderMap& headers, Http::StreamDecoderFilterCallbacks& cb)
      : headers_(headers), cb_(cb) {}

  absl::optional<absl::string_view> header(absl::string_view name) const override {
    const Http::HeaderEntry* e = headers_.find(name);
    if (e == nullptr) return absl::nullopt;
    return absl::string_view(e->value);
  }
  absl::optional<std::string> queryParam(absl::string_view name) const override {
    if (!query_.has_value()) query_.emplace(headers_.query());
    return query_->first(name);
  }
  absl::optional<std::string> uriCapture(absl::string_view name) const override {
    if (!captures_.has_value()) {
      const Router::RouteEntry* route = cb_.route();
      captures_.emplace(route == nullptr ? decltype(route->namedCaptures(""))()
                                         : route->namedCaptures(headers_.pathOnly()));
    }
    for (const auto& [n, v] : *captures_) {
      if (n == name) return v;
    }
    return absl::nullopt;
  }
  absl::string_view variable(TemplateVariable v) const override {
    switch (v) {
      case TemplateVariable::RequestId:
        return cb_.streamInfo().request_id;
      case TemplateVariable::Scheme:
        return headers_.get("x-forwarded-proto");
      case TemplateVariable::Host:
        return headers_.host();
      case TemplateVariable::ClientIp:
        return cb_.downstreamAddress();
      case TemplateVariable::Consumer:
        return cb_.streamInfo().filter_state.getString(Http::FilterStateNames::kConsumer);
    }
    return "";
  }

 private:
  const Http::RequestHeaderMap& headers_;
  Http::StreamDecoderFilterCallbacks& cb_;
  mutable absl::optional<FormPairs> query_;
  mutable absl::optional<std::vector<std::pair<std::string, std::string>>> captures_;
};

// Renders the rules' values into `out`; leaves `out` empty when every value is static (valueOf()
// then reads the config's own text: nothing is copied per request).
template <class Rule>
void renderAll(const std::vector<Rule>& rules, const TemplateContext& ctx,
               std::vector<std::string>& out) {
  out.clear();
  bool dynamic = false;
  for (const Rule& r : rules) dynamic |= !r.value.isStatic();
  if (!dynamic) return;
  for (const Rule& r : rules) out.push_back(r.value.render(ctx));
}

template <class Rule>
absl::string_view valueOf(const std::vector<Rule>& rules, const std::vector<std::string>& rendered,
                          size_t i) {
  return rendered.empty() ? absl::string_view(rules[i].value.text())
                          : absl::string_view(rendered[i]);
}

}  // namespace

bool RequestTransformerFilter::render(const Http::RequestHeaderMap& headers) {
  RequestContext ctx(headers, *callbacks_);
  renderAll(config_->headers.replace, ctx, rendered_.header_replace);
  renderAll(config_->headers.add, ctx, rendered_.header_add);
  renderAll(config_->headers.append, ctx, rendered_.header_append);
  for (const auto* values :
       {&rendered_.header_replace, &rendered_.header_add, &rendered_.header_append}) {
    for (const std::string& v : *values) {
      if (!Http::isValidHeaderValue(v)) {
        callbacks_->sendLocalReply(400,
                                   "a request_transformer template made an invalid header value",
                                   Http::GatewayResponseType::BadRequestParameters);
        return false;
      }
    }
  }
  for (size_t i = 0; i < config_->headers.replace.size(); ++i) {
    if (config_->headers.replace[i].name == "host" &&
        !Http::isValidAuthority(valueOf(config_->headers.replace, rendered_.header_replace, i))) {
      callbacks_->sendLocalReply(400, "a request_transformer template made an invalid host",
                                 Http::GatewayResponseType::BadRequestParameters);
      return false;
    }
  }
  renderAll(config_->query.replace, ctx, rendered_.query_replace);
  renderAll(config_->query.add, ctx, rendered_.query_add);
  renderAll(config_->query.append, ctx, rendered_.query_append);
  renderAll(config_->body.replace, ctx, rendered_.body_replace);
  renderAll(config_->body.add, ctx, rendered_.body_add);
  renderAll(config_->body.append, ctx, rendered_.body_append);
  if (config_->uri.has_value()) {
    std::string path;
    if (!safePath(config_->uri->render(ctx), path)) {
      callbacks_->sendLocalReply(400, "the transformed path is not a valid path",
                                 Http::GatewayResponseType::BadRequestParameters);
      return false;
    }
    // Kong's order: the path first (its query string stays), from the request as it arrived.
    absl::string_view query = headers.query();
    rendered_uri_ = query.empty() ? path : absl::StrCat(path, "?", query);
  }
  return true;
}

void RequestTransformerFilter::transformHeaders(Http::RequestHeaderMap& h) {
  const NameRules& r = config_->headers;
  // Host is not a header to Kong's rules but for replace (the Host sent upstream).
  for (const std::string& name : r.remove) {
    if (name != "host") h.remove(name);
  }
  for (const NameValue& nv : r.rename) {
    const std::string& to = nv.value.text();
    if (nv.name == "host" || to == "host" || !h.has(nv.name) || nv.name == to) continue;
    h.remove(to);
    for (Http::HeaderEntry& e : h.entries()) {
      if (e.key == nv.name) e.key = to;
    }
  }
  for (size_t i = 0; i < r.replace.size(); ++i) {
    if (h.has(r.replace[i].name) || r.replace[i].name == "host") {
      h.set(r.replace[i].name, valueOf(r.replace, rendered_.header_replace, i));
    }
  }
  for (size_t i = 0; i < r.add.size(); ++i) {
    if (r.add[i].name != "host" && !h.has(r.add[i].name)) {
      h.add(r.add[i].name, valueOf(r.add, rendered_.header_add, i));
    }
  }
  for (size_t i = 0; i < r.append.size(); ++i) {
    if (r.append[i].name != "host") {
      h.add(r.append[i].name, valueOf(r.append, rendered_.header_append, i));
    }
  }
}

void RequestTransformerFilter::transformQuery(Http::RequestHeaderMap& h,
                                              const FormPairs* moved_form) {
  const NameRules& r = config_->query;
  if (r.empty() && moved_form == nullptr) return;
  FormPairs q(h.query());
  if (moved_form != nullptr) q.appendAll(*moved_form);
  for (const std::string& name : r.remove) q.remove(name);
  for (const NameValue& nv : r.rename) q.rename(nv.name, nv.value.text());
  for (size_t i = 0; i < r.replace.size(); ++i) {
    q.replace(r.replace[i].name, valueOf(r.replace, rendered_.query_replace, i));
  }
  for (size_t i = 0; i < r.add.size(); ++i) {
    if (!q.has(r.add[i].name)) q.add(r.add[i].name, valueOf(r.add, rendered_.query_add, i));
  }
  for (size_t i = 0; i < r.append.size(); ++i) {
    q.append(r.append[i].name, valueOf(r.append, rendered_.query_append, i));
  }
  std::string path(h.pathOnly());
  const std::string query = q.toString();
  if (!query.empty()) absl::StrAppend(&path, "?", query);
  h.path = std::move(path);
}

Http::FilterHeadersStatus RequestTransformerFilter::decodeHeaders(Http::RequestHeaderMap& h,
                                                                  bool end_stream) {
  const Router::RouteEntry* route = callbacks_->route();
  const TransformConfig* own =
      route == nullptr ? nullptr : route->perFilterConfig<TransformConfig>(kFilterName);
  config_ = own != nullptr ? own : listener_config_.get();
  headers_ = &h;
  if (!render(h)) return Http::FilterHeadersStatus::StopIteration;
  // Kong's order: uri, method, headers, body, querystring.
  if (!rendered_uri_.empty()) {
    h.path = std::move(rendered_uri_);
    callbacks_->streamInfo().path_replaced = true;
  }
  if (!config_->http_method.empty()) h.method = config_->http_method;
  transformHeaders(h);

  const absl::string_view type = h.get("content-type");
  if (!end_stream) {
    if (config_->reads_json_body && Transform::isJsonContentType(type)) {
      body_kind_ = BodyKind::Json;
    } else if (config_->reads_form_body && Transform::isFormContentType(type)) {
      body_kind_ = BodyKind::Form;
    }
  }
  if (body_kind_ == BodyKind::None) {
    transformQuery(h, nullptr);
    return Http::FilterHeadersStatus::Continue;
  }
  if (Transform::hasContentCoding(h)) {
    callbacks_->sendLocalReply(
        415, "request_transformer can't read a body with a content coding",
        Http::GatewayResponseType::UnsupportedMediaType, absl::nullopt,
        [](Http::ResponseHeaderMap& r) { r.add("accept-encoding", "identity"); });
    return Http::FilterHeadersStatus::StopIteration;
  }
  uint64_t length = 0;
  if (absl::SimpleAtoi(h.get("content-length"), &length) && length > config_->max_body_bytes) {
    callbacks_->sendLocalReply(413, "request body too large",
                               Http::GatewayResponseType::RequestTooLarge);
    return Http::FilterHeadersStatus::StopIteration;
  }
  buffering_ = true;
  // The client may wait for 100 Continue before it sends the body we wait for.
  callbacks_->sendContinueIfExpected();
  return Http::FilterHeadersStatus::StopIteration;
}

Http::FilterDataStatus RequestTransformerFilter::decodeData(Buffer::Instance& data,
                                                            bool end_stream) {
  if (!buffering_) return Http::FilterDataStatus::Continue;
  body_.move(data);
  if (body_.length() > config_->max_body_bytes) {
    buffering_ = false;
    callbacks_->sendLocalReply(413, "request body too large",
                               Http::GatewayResponseType::RequestTooLarge);
    return Http::FilterDataStatus::StopIterationNoBuffer;
  }
  if (!end_stream) return Http::FilterDataStatus::StopIterationNoBuffer;
  if (!finishBody(data)) return Http::FilterDataStatus::StopIterationNoBuffer;
  callbacks_->continueDecoding();
  return Http::FilterDataStatus::Continue;
}

Http::FilterTrailersStatus RequestTransformerFilter::decodeTrailers(Http::HeaderMap&) {
  if (!buffering_) return Http::FilterTrailersStatus::Continue;
  Buffer::OwnedImpl out;
  if (!finishBody(out)) return Http::FilterTrailersStatus::StopIteration;
  callbacks_->addDecodedData(out);
  callbacks_->continueDecoding();
  return Http::FilterTrailersStatus::Continue;
}

bool RequestTransformerFilter::finishBody(Buffer::Instance& out) {
  buffering_ = false;
  const std::string text = body_.toString();
  body_.drain(body_.length());
  std::string result;
  const BodyRules& r = config_->body;
  if (body_kind_ == BodyKind::Json) {
    absl::StatusOr<Json::Value> parsed = text.empty()
                                             ? absl::StatusOr<Json::Value>(Json::Value::object())
                                             : Transform::parseBody(text);
    if (!parsed.ok()) {
      callbacks_->sendLocalReply(
          400, absl::StrCat("request body is not valid JSON: ", parsed.status().message()),
          Http::GatewayResponseType::BadRequestBody);
      return false;
    }
    // The config's rules as they are, unless a value is a template: then a copy with the
    // values rendered for this request.
    Transform::JsonRules rendered;
    if (!config_->json_values_static) {
      rendered = config_->json;
      for (size_t i = 0; i < r.replace.size(); ++i) {
        rendered.replace[i].value =
            Json::Value::string(std::string(valueOf(r.replace, rendered_.body_replace, i)));
      }
      for (size_t i = 0; i < r.add.size(); ++i) {
        rendered.add[i].value =
            Json::Value::string(std::string(valueOf(r.add, rendered_.body_add, i)));
      }
      for (size_t i = 0; i < r.append.size(); ++i) {
        rendered.append[i].value =
            Json::Value::string(std::string(valueOf(r.append, rendered_.body_append, i)));
      }
    }
    const Transform::JsonRules& rules = config_->json_values_static ? config_->json : rendered;
    if (Transform::applyJsonRules(*parsed, rules, Transform::RenameMissing::RemoveTarget)) {
      result = parsed->toJson();
    } else {
      result = text;  // not an object: nothing to edit by name
    }
    transformQuery(*headers_, nullptr);
  } else {
    FormPairs form(text);
    // A method changed to GET, HEAD or TRACE takes the form's fields into the query string.
    transformQuery(*headers_, config_->moves_form_to_query ? &form : nullptr);
    if (!r.empty()) {
      for (const Transform::JsonPath& p : r.remove) form.remove(p.text);
      for (const Transform::JsonRename& rn : r.rename) form.rename(rn.from.text, rn.to.text);
      for (size_t i = 0; i < r.replace.size(); ++i) {
        form.replace(r.replace[i].path.text, valueOf(r.replace, rendered_.body_replace, i));
      }
      for (size_t i = 0; i < r.add.size(); ++i) {
        if (!form.has(r.add[i].path.text)) {
          form.add(r.add[i].path.text, valueOf(r.add, rendered_.body_add, i));
        }
      }
      for (size_t i = 0; i < r.append.size(); ++i) {
        form.append(r.append[i].path.text, valueOf(r.append, rendered_.body_append, i));
      }
      result = form.toString();
    } else {
      result = text;
    }
  }
  headers_->set("content-length", absl::StrCat(result.size()));
  out.add(result);
  return true;
}

}  // namespace RequestTransformer
}  // namespace Extensions
}  // namespace sluice
