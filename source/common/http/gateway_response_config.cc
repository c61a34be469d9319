#include "source/common/http/gateway_response_config.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "source/common/common/json.h"

namespace sluice {
namespace Http {
namespace {

bool isNameChar(char c) { return absl::ascii_isalnum(c) || c == '_'; }

void appendValue(absl::string_view v, GatewayResponseTemplate::Escape escape, std::string& out) {
  switch (escape) {
    case GatewayResponseTemplate::Escape::None:
      out.append(v.data(), v.size());
      return;
    case GatewayResponseTemplate::Escape::Json:
      Json::appendEscaped(out, v);
      return;
    case GatewayResponseTemplate::Escape::HeaderValue:
      for (unsigned char c : v) {
        out += (c < 0x20 && c != '\t') || c == 0x7f ? ' ' : static_cast<char>(c);
      }
      return;
  }
}

// Header names a gateway response may not set: what the gateway computes (the body's length and
// type, the request id the client correlates by) and hop-by-hop headers.
absl::string_view refusedHeader(absl::string_view name) {
  if (name == "content-length") return "is computed from the body";
  if (name == "content-type") return "use content_type";
  if (name == "x-request-id") return "is set by the gateway";
  if (isHopByHop(name)) return "hop-by-hop headers can't be set";
  return {};
}

std::unique_ptr<const CompiledGatewayResponse> compileOne(
    const sluice::config::v1::GatewayResponse& config, const std::string& path,
    Config::ErrorList& errors) {
  auto out = std::make_unique<CompiledGatewayResponse>();
  bool ok = true;
  if (config.status_code() != 0 && (config.status_code() < 200 || config.status_code() > 599)) {
    errors.add(path + ".status_code", "must be 0 (the gateway's status) or 200..599");
    ok = false;
  }
  out->status_code = config.status_code();
  std::vector<std::string> names;
  for (const auto& [name, value] : config.headers()) names.push_back(name);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    const std::string hpath = absl::StrCat(path, ".headers.", name);
    const std::string& value = config.headers().at(name);
    std::string lower = absl::AsciiStrToLower(name);
    if (!isValidToken(name)) {
      errors.add(hpath, "invalid header name");
      ok = false;
      continue;
    }
    if (absl::string_view why = refusedHeader(lower); !why.empty()) {
      errors.add(hpath, absl::StrCat("can't be set here: ", why));
      ok = false;
      continue;
    }
    if (!isValidHeaderValue(value)) {
      errors.add(hpath, "invalid header value (control characters)");
      ok = false;
      continue;
    }
    for (const auto& [other, unused] : out->headers) {
      if (other == lower) {
        errors.add(hpath, "duplicate header (names are case-insensitive)");
        ok = false;
      }
    }
    out->headers.emplace_back(std::move(lower), GatewayResponseTemplate::compile(value));
  }
  out->has_body = config.has_body();
  if (out->has_body) {
    out->body = GatewayResponseTemplate::compile(config.body());
    out->content_type = config.content_type().empty() ? "application/json" : config.content_type();
    if (!config.content_type().empty() && !isValidMediaType(config.content_type())) {
      errors.add(path + ".content_type",
                 "invalid media type (type/subtype[; parameters], no controls)");
      ok = false;
    }
    out->json = isJsonContentType(out->content_type);
  } else if (!config.content_type().empty()) {
    errors.add(path + ".content_type", "only with body (the built-in body is JSON)");
    ok = false;
  }
  if (!ok) return nullptr;
  return out;
}

}  // namespace

GatewayResponseTemplate GatewayResponseTemplate::compile(absl::string_view text) {
  GatewayResponseTemplate t;
  Piece piece;
  size_t i = 0;
  while (i < text.size()) {
    const size_t dollar = text.find('$', i);
    if (dollar == absl::string_view::npos) {
      piece.literal.append(text.data() + i, text.size() - i);
      break;
    }
    size_t end = dollar + 1;
    while (end < text.size() && isNameChar(text[end])) ++end;
    const absl::string_view name = text.substr(dollar + 1, end - dollar - 1);
    Var var = Var::None;
    if (name == "request_id") {
      var = Var::RequestId;
    } else if (name == "status") {
      var = Var::Status;
    } else if (name == "message") {
      var = Var::Message;
    } else if (name == "route") {
      var = Var::Route;
    }
    if (var == Var::None) {
      // Not a variable: the text stays as written.
      piece.literal.append(text.data() + i, end - i);
    } else {
      piece.literal.append(text.data() + i, dollar - i);
      piece.var = var;
      t.pieces_.push_back(std::move(piece));
      piece = Piece();
    }
    i = end;
  }
  if (!piece.literal.empty() || t.pieces_.empty()) t.pieces_.push_back(std::move(piece));
  return t;
}

void GatewayResponseTemplate::render(const GatewayResponseVars& vars, Escape escape,
                                     std::string& out) const {
  for (const Piece& p : pieces_) {
    out += p.literal;
    switch (p.var) {
      case Var::None:
        break;
      case Var::RequestId:
        appendValue(vars.request_id, escape, out);
        break;
      case Var::Status:
        absl::StrAppend(&out, vars.status);
        break;
      case Var::Message:
        appendValue(vars.message, escape, out);
        break;
      case Var::Route:
        appendValue(vars.route, escape, out);
        break;
    }
  }
}

void CompiledGatewayResponse::renderBody(const GatewayResponseVars& vars, std::string& out) const {
  body.render(vars,
              json ? GatewayResponseTemplate::Escape::Json : GatewayResponseTemplate::Escape::None,
              out);
}

void CompiledGatewayResponse::applyHeaders(const GatewayResponseVars& vars,
                                           ResponseHeaderMap& out) const {
  for (const auto& [name, value] : headers) {
    std::string rendered;
    value.render(vars, GatewayResponseTemplate::Escape::HeaderValue, rendered);
    out.set(name, rendered);
  }
}

std::shared_ptr<const GatewayResponses> GatewayResponses::create(const ConfigMap& config,
                                                                 const std::string& path,
                                                                 Config::ErrorList& errors) {
  if (config.empty()) return nullptr;
  auto out = std::make_shared<GatewayResponses>();
  std::vector<std::string> names;
  for (const auto& [name, response] : config) names.push_back(name);
  std::sort(names.begin(), names.end());
  bool ok = true;
  for (const std::string& name : names) {
    const std::string tpath = absl::StrCat(path, ".", name);
    absl::optional<GatewayResponseType> type = parseGatewayResponseType(name);
    if (!type.has_value()) {
      errors.add(tpath, absl::StrCat("unknown gateway response type (one of ",
                                     gatewayResponseTypeNames(), ")"));
      ok = false;
      continue;
    }
    auto compiled = compileOne(config.at(name), tpath, errors);
    if (compiled == nullptr) {
      ok = false;
      continue;
    }
    out->by_type_[static_cast<size_t>(*type)] = std::move(compiled);
  }
  if (!ok) return nullptr;
  return out;
}

const CompiledGatewayResponse* selectGatewayResponse(GatewayResponseType type, uint32_t status,
                                                     const GatewayResponses* vhost,
                                                     const GatewayResponses* listener) {
  if (status < 400 || status > 599) return nullptr;
  const GatewayResponseType fallback =
      status < 500 ? GatewayResponseType::Default4xx : GatewayResponseType::Default5xx;
  for (GatewayResponseType t : {type, fallback}) {
    for (const GatewayResponses* set : {vhost, listener}) {
      if (set == nullptr) continue;
      if (const CompiledGatewayResponse* r = set->find(t); r != nullptr) return r;
    }
  }
  return nullptr;
}

bool isJsonContentType(absl::string_view content_type) {
  absl::string_view media = content_type.substr(0, content_type.find(';'));
  media = absl::StripAsciiWhitespace(media);
  return absl::EqualsIgnoreCase(media, "application/json") ||
         absl::EndsWithIgnoreCase(media, "+json");
}

}  // namespace Http
}  // namespace sluice
