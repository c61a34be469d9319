// The request_transformer filter's config side: templates, rule compilation and validation.
// Linked by sluice and sluice-cp.
#include "source/extensions/filters/http/request_transformer/config.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "source/common/http/filter_config.h"

namespace sluice {
namespace Extensions {
namespace RequestTransformer {

using ProtoConfig = sluice::extensions::filters::http::request_transformer::v1::RequestTransformer;

namespace {

bool isIdentChar(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_'; }

}  // namespace

absl::StatusOr<Template> Template::compile(absl::string_view text) {
  Template t;
  t.text_ = std::string(text);
  auto literal = [&t](absl::string_view s) {
    if (s.empty()) return;
    if (!t.segments_.empty() && t.segments_.back().kind == Kind::Literal) {
      t.segments_.back().text.append(s.data(), s.size());
    } else {
      t.segments_.push_back({Kind::Literal, std::string(s)});
    }
  };
  size_t i = 0;
  while (i < text.size()) {
    const size_t dollar = text.find('$', i);
    if (dollar == absl::string_view::npos) {
      literal(text.substr(i));
      break;
    }
    literal(text.substr(i, dollar - i));
    i = dollar + 1;
    if (i < text.size() && text[i] == '(') {
      const size_t close = text.find(')', i);
      if (close == absl::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrCat("unterminated \"$(\" in \"", text, "\""));
      }
      const absl::string_view expr = absl::StripAsciiWhitespace(text.substr(i + 1, close - i - 1));
      i = close + 1;
      // source.NAME or source["NAME"] / source['NAME']
      size_t end = 0;
      while (end < expr.size() && isIdentChar(expr[end])) ++end;
      const absl::string_view source = expr.substr(0, end);
      absl::string_view name;
      const absl::string_view rest = expr.substr(end);
      if (absl::StartsWith(rest, ".")) {
        name = rest.substr(1);
        for (char c : name) {
          if (!isIdentChar(c) && c != '-') name = absl::string_view();
        }
      } else if (rest.size() >= 4 && rest.front() == '[' && rest.back() == ']' &&
                 (rest[1] == '"' || rest[1] == '\'') && rest[rest.size() - 2] == rest[1]) {
        name = rest.substr(2, rest.size() - 4);
      }
      Kind kind;
      if (source == "headers") {
        kind = Kind::Header;
      } else if (source == "query_params") {
        kind = Kind::Query;
      } else if (source == "uri_captures") {
        kind = Kind::UriCapture;
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "unknown template \"$(", expr,
            ")\" (one of $(headers.NAME), $(query_params.NAME), $(uri_captures.NAME))"));
      }
      if (name.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("template \"$(", expr, ")\" names no ", source, " entry"));
      }
      std::string n(name);
      if (kind == Kind::Header) n = absl::AsciiStrToLower(n);
      t.segments_.push_back({kind, std::move(n)});
      continue;
    }
    size_t end = i;
    while (end < text.size() && isIdentChar(text[end])) ++end;
    const absl::string_view ident = text.substr(i, end - i);
    static constexpr std::pair<absl::string_view, TemplateVariable> kVariables[] = {
        {"request_id", TemplateVariable::RequestId},
        {"scheme", TemplateVariable::Scheme},
        {"host", TemplateVariable::Host},
        {"client_ip", TemplateVariable::ClientIp},
        {"consumer", TemplateVariable::Consumer}};
    const auto* known = std::find_if(std::begin(kVariables), std::end(kVariables),
                                     [ident](const auto& v) { return v.first == ident; });
    if (known == std::end(kVariables)) {
      literal("$");  // a plain dollar sign
      continue;
    }
    t.segments_.push_back({Kind::Variable, "", known->second});
    i = end;
  }
  return t;
}

Template Template::literal(absl::string_view text) {
  Template t;
  t.text_ = std::string(text);
  if (!text.empty()) t.segments_.push_back({Kind::Literal, std::string(text)});
  return t;
}

std::string Template::render(const TemplateContext& ctx) const {
  std::string out;
  for (const Segment& s : segments_) {
    switch (s.kind) {
      case Kind::Literal:
        out += s.text;
        break;
      case Kind::Header: {
        absl::optional<absl::string_view> v = ctx.header(s.text);
        if (!v.has_value() && s.text.find('_') != std::string::npos) {
          // As nginx's header table Kong reads: headers.x_user finds X-User.
          v = ctx.header(absl::StrReplaceAll(s.text, {{"_", "-"}}));
        }
        if (v.has_value()) absl::StrAppend(&out, *v);
        break;
      }
      case Kind::Query:
        out += ctx.queryParam(s.text).value_or("");
        break;
      case Kind::UriCapture:
        out += ctx.uriCapture(s.text).value_or("");
        break;
      case Kind::Variable:
        absl::StrAppend(&out, ctx.variable(s.variable));
        break;
    }
  }
  return out;
}

namespace {

// Headers the gateway frames and routes the request with: a rule may not touch them (a
// transformer that could set content-length or transfer-encoding would smuggle requests).
bool isManagedHeader(absl::string_view name) {
  return name == "content-length" || Http::isHopByHop(name) || name == "te" ||
         name == "x-request-id" || absl::StartsWith(name, ":");
}

class Compiler {
 public:
  Compiler(const std::string& path, sluice::Config::ErrorList& errors)
      : path_(path), errors_(errors) {}

  absl::optional<Template> compileTemplate(const std::string& field, absl::string_view text) {
    absl::StatusOr<Template> t = Template::compile(text);
    if (!t.ok()) {
      errors_.add(field, std::string(t.status().message()));
      return absl::nullopt;
    }
    return std::move(*t);
  }

  // A header name a rule may name, lower-cased in place; false (with the error at `field`) when
  // it is not a token or is one the gateway manages.
  bool headerName(const std::string& field, std::string& name) {
    if (!Http::isValidToken(name)) {
      errors_.add(field, absl::StrCat("\"", name, "\" is not a valid header name"));
      return false;
    }
    name = absl::AsciiStrToLower(name);
    if (isManagedHeader(name)) {
      errors_.add(
          field, absl::StrCat("\"", name, "\" is managed by the gateway and can't be transformed"));
      return false;
    }
    return true;
  }

  // Kong entries of a headers or querystring list.
  void names(const google::protobuf::RepeatedPtrField<std::string>& list, const std::string& field,
             bool headers, bool rename, bool value_needed, std::vector<NameValue>* out,
             std::vector<std::string>* names_only) {
    for (int i = 0; i < list.size(); ++i) {
      const std::string f = absl::StrCat(path_, ".", field, "[", i, "]");
      absl::StatusOr<Transform::Entry> e = Transform::parseEntry(list[i]);
      if (!e.ok()) {
        errors_.add(f, std::string(e.status().message()));
        continue;
      }
      if (headers && !headerName(f, e->name)) continue;
      if (names_only != nullptr) {
        names_only->push_back(e->name);
        continue;
      }
      if (value_needed && !e->has_value) {
        errors_.add(f, absl::StrCat("\"", list[i], "\": expected \"name:value\""));
        continue;
      }
      NameValue nv;
      nv.name = e->name;
      nv.has_value = e->has_value;
      if (rename) {
        if (headers && !headerName(f, e->value)) continue;
        nv.value = Template::literal(e->value);
      } else {
        absl::optional<Template> t = compileTemplate(f, e->value);
        if (!t.has_value()) continue;
        if (headers && t->isStatic() && !Http::isValidHeaderValue(e->value)) {
          errors_.add(f, "the value is not a valid header value");
          continue;
        }
        nv.value = std::move(*t);
      }
      out->push_back(std::move(nv));
    }
  }

  void body(const google::protobuf::RepeatedPtrField<std::string>& list, const std::string& field,
            bool value_needed, std::vector<BodyRule>* out) {
    for (int i = 0; i < list.size(); ++i) {
      const std::string f = absl::StrCat(path_, ".", field, "[", i, "]");
      absl::StatusOr<Transform::Entry> e = Transform::parseEntry(list[i]);
      if (!e.ok()) {
        errors_.add(f, std::string(e.status().message()));
        continue;
      }
      if (value_needed && !e->has_value) {
        errors_.add(f, absl::StrCat("\"", list[i], "\": expected \"name:value\""));
        continue;
      }
      absl::StatusOr<Transform::JsonPath> p = Transform::parseJsonPath(e->name);
      absl::optional<Template> t = compileTemplate(f, e->value);
      if (!p.ok()) errors_.add(f, std::string(p.status().message()));
      if (!p.ok() || !t.has_value()) continue;
      out->push_back(BodyRule{std::move(*p), std::move(*t), e->has_value});
    }
  }

 private:
  const std::string& path_;
  sluice::Config::ErrorList& errors_;
};

}  // namespace

std::shared_ptr<const TransformConfig> TransformConfig::create(const ProtoConfig& proto,
                                                               const std::string& path,
                                                               sluice::Config::ErrorList& out) {
  auto c = std::make_shared<TransformConfig>();
  sluice::Config::ErrorList errors;
  Compiler k(path, errors);

  if (!proto.http_method().empty()) {
    if (!Http::isValidToken(proto.http_method())) {
      errors.add(path + ".http_method", "not a valid method");
    }
    c->http_method = absl::AsciiStrToUpper(proto.http_method());
    c->moves_form_to_query =
        c->http_method == "GET" || c->http_method == "HEAD" || c->http_method == "TRACE";
  }
  // Headers.
  k.names(proto.remove().headers(), "remove.headers", true, false, false, nullptr,
          &c->headers.remove);
  k.names(proto.rename().headers(), "rename.headers", true, true, true, &c->headers.rename,
          nullptr);
  k.names(proto.replace().headers(), "replace.headers", true, false, true, &c->headers.replace,
          nullptr);
  k.names(proto.add().headers(), "add.headers", true, false, true, &c->headers.add, nullptr);
  k.names(proto.append().headers(), "append.headers", true, false, true, &c->headers.append,
          nullptr);
  // Query string.
  k.names(proto.remove().querystring(), "remove.querystring", false, false, false, nullptr,
          &c->query.remove);
  k.names(proto.rename().querystring(), "rename.querystring", false, true, true, &c->query.rename,
          nullptr);
  k.names(proto.replace().querystring(), "replace.querystring", false, false, true,
          &c->query.replace, nullptr);
  k.names(proto.add().querystring(), "add.querystring", false, false, true, &c->query.add, nullptr);
  k.names(proto.append().querystring(), "append.querystring", false, false, true, &c->query.append,
          nullptr);
  // Body.
  std::vector<BodyRule> removes, renames;
  k.body(proto.remove().body(), "remove.body", false, &removes);
  for (BodyRule& r : removes) c->body.remove.push_back(std::move(r.path));
  k.body(proto.rename().body(), "rename.body", true, &renames);
  for (int i = 0; i < static_cast<int>(renames.size()); ++i) {
    absl::StatusOr<Transform::JsonPath> to = Transform::parseJsonPath(renames[i].value.text());
    if (!to.ok()) {
      errors.add(absl::StrCat(path, ".rename.body[", i, "]"), std::string(to.status().message()));
      continue;
    }
    c->body.rename.push_back(Transform::JsonRename{std::move(renames[i].path), std::move(*to)});
  }
  k.body(proto.replace().body(), "replace.body", true, &c->body.replace);
  k.body(proto.add().body(), "add.body", true, &c->body.add);
  k.body(proto.append().body(), "append.body", true, &c->body.append);
  // URI.
  if (!proto.replace().uri().empty()) {
    c->uri = k.compileTemplate(path + ".replace.uri", proto.replace().uri());
    if (c->uri.has_value() && c->uri->isStatic() && proto.replace().uri()[0] != '/') {
      errors.add(path + ".replace.uri", "must start with \"/\"");
    }
  }
  if (proto.max_body_bytes() > 0) c->max_body_bytes = proto.max_body_bytes();

  c->json.remove = c->body.remove;
  c->json.rename = c->body.rename;
  for (auto [from, to] : {std::make_pair(&c->body.replace, &c->json.replace),
                          std::make_pair(&c->body.add, &c->json.add),
                          std::make_pair(&c->body.append, &c->json.append)}) {
    for (const BodyRule& r : *from) {
      to->push_back({r.path, Json::Value::string(r.value.text())});
      c->json_values_static &= r.value.isStatic();
    }
  }
  c->reads_json_body = !c->body.empty();
  c->reads_form_body = !c->body.empty() || c->moves_form_to_query;
  if (errors.empty()) return c;
  out.add(errors.status());
  return nullptr;
}

namespace {

class RequestTransformerFilterType : public Http::FilterType {
 public:
  std::string name() const override { return kFilterName; }
  std::unique_ptr<google::protobuf::Message> createEmptyConfigProto() const override {
    return std::make_unique<ProtoConfig>();
  }
  void validateConfig(const google::protobuf::Message& config, const std::string& path,
                      const Http::FilterValidationContext&,
                      sluice::Config::ErrorList& errors) const override {
    TransformConfig::create(static_cast<const ProtoConfig&>(config), path, errors);
  }
  std::unique_ptr<google::protobuf::Message> createEmptyRouteConfigProto() const override {
    return std::make_unique<ProtoConfig>();
  }
  Router::RouteSpecificFilterConfigConstSharedPtr createRouteConfig(
      const google::protobuf::Message& config, const Http::RouteConfigContext& ctx,
      sluice::Config::ErrorList& errors) const override {
    return TransformConfig::create(static_cast<const ProtoConfig&>(config),
                                   Http::routeConfigPath(ctx), errors);
  }
  std::string describeRouteConfig(const google::protobuf::Message&) const override {
    return "request_transformer rules";
  }
};

REGISTER_HTTP_FILTER_TYPE(RequestTransformerFilterType);

}  // namespace
}  // namespace RequestTransformer
}  // namespace Extensions
}  // namespace sluice
