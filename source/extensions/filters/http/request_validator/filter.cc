#include "source/extensions/filters/http/request_validator/filter.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "source/common/router/config.h"
#include "source/extensions/filters/http/common/transform.h"

namespace sluice {
namespace Extensions {
namespace RequestValidator {
namespace {

// A JSON number literal (RFC 8259): what "integer" and "number" parameters must be.
bool isJsonNumber(absl::string_view s) {
  size_t i = 0;
  if (i < s.size() && s[i] == '-') ++i;
  if (i >= s.size()) return false;
  if (s[i] == '0') {
    ++i;
  } else if (s[i] >= '1' && s[i] <= '9') {
    while (i < s.size() && absl::ascii_isdigit(s[i])) ++i;
  } else {
    return false;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (i >= s.size() || !absl::ascii_isdigit(s[i])) return false;
    while (i < s.size() && absl::ascii_isdigit(s[i])) ++i;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (i >= s.size() || !absl::ascii_isdigit(s[i])) return false;
    while (i < s.size() && absl::ascii_isdigit(s[i])) ++i;
  }
  return i == s.size();
}

bool scalar(ValueKind kind, absl::string_view text, Json::Value& out, std::string* error) {
  switch (kind) {
    case ValueKind::Integer:
    case ValueKind::Number:
      if (!isJsonNumber(text)) {
        *error = kind == ValueKind::Integer ? "must be an integer" : "must be a number";
        return false;
      }
      out = Json::Value::number(std::string(text));
      return true;
    case ValueKind::Boolean:
      if (text != "true" && text != "false") {
        *error = "must be true or false";
        return false;
      }
      out = Json::Value::boolean(text == "true");
      return true;
    default:
      out = Json::Value::string(std::string(text));
      return true;
  }
}

absl::string_view mediaType(absl::string_view content_type) {
  return absl::StripAsciiWhitespace(content_type.substr(0, content_type.find(';')));
}

}  // namespace

bool parameterValue(const CompiledParameter& p, const std::vector<absl::string_view>& texts,
                    Json::Value& out, std::string* error) {
  if (p.kind != ValueKind::Array) {
    // A scalar given several times: the first counts (as most frameworks read it).
    return scalar(p.kind, texts.front(), out, error);
  }
  std::vector<absl::string_view> items;
  if (p.in == ParameterProto::QUERY) {
    items = texts;  // form style, exploded: one occurrence per item
  } else {
    for (absl::string_view t : texts) {
      for (absl::string_view item : absl::StrSplit(t, ',')) items.push_back(item);
    }
  }
  out = Json::Value::array();
  for (size_t i = 0; i < items.size(); ++i) {
    Json::Value item;
    std::string why;
    if (!scalar(p.item_kind, absl::StripAsciiWhitespace(items[i]), item, &why)) {
      *error = absl::StrCat("item ", i, ": ", why);
      return false;
    }
    out.items().push_back(std::move(item));
  }
  return true;
}

bool RequestValidatorFilter::checkParameters(const Http::RequestHeaderMap& h) {
  const absl::string_view target = h.path;
  const size_t q = target.find('?');
  const absl::string_view query = q == absl::string_view::npos ? "" : target.substr(q + 1);
  std::vector<std::pair<std::string, std::string>> captures;
  bool captures_read = false;
  for (const CompiledParameter& p : config_->parameters) {
    std::vector<std::string> owned;
    std::vector<absl::string_view> texts;
    switch (p.in) {
      case ParameterProto::QUERY:
        owned = Transform::queryValues(query, p.name);
        break;
      case ParameterProto::HEADER:
        for (const Http::HeaderEntry& e : h.entries()) {
          if (absl::string_view(e.key) == p.name) texts.push_back(e.value);
        }
        break;
      case ParameterProto::PATH: {
        if (!captures_read) {
          captures = callbacks_->route()->namedCaptures(target.substr(0, q));
          captures_read = true;
        }
        for (const auto& [name, value] : captures) {
          if (name == p.name) owned.push_back(Transform::decodeFormComponent(value));
        }
        break;
      }
      default:
        break;
    }
    for (const std::string& o : owned) texts.push_back(o);
    if (texts.empty()) {
      if (!p.required) continue;
      callbacks_->sendLocalReply(400, absl::StrCat(p.label, " is required"),
                                 Http::GatewayResponseType::BadRequestParameters);
      return false;
    }
    Json::Value value;
    std::string error;
    if (!parameterValue(p, texts, value, &error) ||
        (p.schema != nullptr && !p.schema->validate(value, &error, p.label))) {
      // A schema error reads "label: why" or "label[1]: why"; a parsing one is just "why".
      if (absl::StartsWith(error, p.label)) {
        error.erase(0, p.label.size());
        if (absl::StartsWith(error, ": ")) error.erase(0, 2);
      }
      const bool indexed = absl::StartsWith(error, "[");
      callbacks_->sendLocalReply(400, absl::StrCat(p.label, indexed ? "" : ": ", error),
                                 Http::GatewayResponseType::BadRequestParameters);
      return false;
    }
  }
  return true;
}

Http::FilterHeadersStatus RequestValidatorFilter::decodeHeaders(Http::RequestHeaderMap& h,
                                                                bool end_stream) {
  const Router::RouteEntry* route = callbacks_->route();
  config_ = route != nullptr ? route->perFilterConfig<RouteConfig>(kFilterName) : nullptr;
  if (config_ == nullptr || config_->disabled) return Http::FilterHeadersStatus::Continue;
  if (!checkParameters(h)) return Http::FilterHeadersStatus::StopIteration;
  const absl::string_view type = mediaType(h.get("content-type"));
  uint64_t length = 0;
  const bool has_length = absl::SimpleAtoi(h.get("content-length"), &length);
  const bool has_body = !end_stream && !(has_length && length == 0);
  if (!has_body) {
    if (config_->body_required) {
      callbacks_->sendLocalReply(400, "request body is required",
                                 Http::GatewayResponseType::BadRequestBody);
      return Http::FilterHeadersStatus::StopIteration;
    }
    return Http::FilterHeadersStatus::Continue;
  }
  if (!config_->content_types.empty()) {
    bool accepted = false;
    for (const std::string& t : config_->content_types) {
      accepted = accepted || absl::EqualsIgnoreCase(t, type);
    }
    if (!accepted) {
      callbacks_->sendLocalReply(415, absl::StrCat("content type \"", type, "\" is not accepted"),
                                 Http::GatewayResponseType::UnsupportedMediaType);
      return Http::FilterHeadersStatus::StopIteration;
    }
  }
  if (config_->body_schema == nullptr || !Transform::isJsonContentType(type)) {
    return Http::FilterHeadersStatus::Continue;
  }
  if (Transform::hasContentCoding(h)) {
    callbacks_->sendLocalReply(
        415, "request_validator can't read a body with a content coding",
        Http::GatewayResponseType::UnsupportedMediaType, absl::nullopt,
        [](Http::ResponseHeaderMap& r) { r.add("accept-encoding", "identity"); });
    return Http::FilterHeadersStatus::StopIteration;
  }
  if (has_length && length > max_body_bytes_) {
    callbacks_->sendLocalReply(413, "request body too large",
                               Http::GatewayResponseType::RequestTooLarge);
    return Http::FilterHeadersStatus::StopIteration;
  }
  buffering_ = true;
  callbacks_->sendContinueIfExpected();
  return Http::FilterHeadersStatus::StopIteration;
}

bool RequestValidatorFilter::checkBody() {
  buffering_ = false;
  const std::string text = body_.toString();
  if (text.empty()) {
    if (!config_->body_required) return true;
    callbacks_->sendLocalReply(400, "request body is required",
                               Http::GatewayResponseType::BadRequestBody);
    return false;
  }
  auto parsed = Transform::parseBody(text);
  if (!parsed.ok()) {
    callbacks_->sendLocalReply(
        400, absl::StrCat("request body is not valid JSON: ", parsed.status().message()),
        Http::GatewayResponseType::BadRequestBody);
    return false;
  }
  std::string error;
  if (!config_->body_schema->validate(*parsed, &error, "body")) {
    callbacks_->sendLocalReply(400, error, Http::GatewayResponseType::BadRequestBody);
    return false;
  }
  return true;
}

Http::FilterDataStatus RequestValidatorFilter::decodeData(Buffer::Instance& data, bool end_stream) {
  if (!buffering_) return Http::FilterDataStatus::Continue;
  body_.move(data);
  if (body_.length() > max_body_bytes_) {
    buffering_ = false;
    callbacks_->sendLocalReply(413, "request body too large",
                               Http::GatewayResponseType::RequestTooLarge);
    return Http::FilterDataStatus::StopIterationNoBuffer;
  }
  if (!end_stream) return Http::FilterDataStatus::StopIterationNoBuffer;
  if (!checkBody()) return Http::FilterDataStatus::StopIterationNoBuffer;
  // Valid: the body goes on as it came, behind the headers.
  data.move(body_);
  callbacks_->continueDecoding();
  return Http::FilterDataStatus::Continue;
}

Http::FilterTrailersStatus RequestValidatorFilter::decodeTrailers(Http::HeaderMap&) {
  if (!buffering_) return Http::FilterTrailersStatus::Continue;
  if (!checkBody()) return Http::FilterTrailersStatus::StopIteration;
  callbacks_->addDecodedData(body_);
  callbacks_->continueDecoding();
  return Http::FilterTrailersStatus::Continue;
}

}  // namespace RequestValidator
}  // namespace Extensions
}  // namespace sluice
