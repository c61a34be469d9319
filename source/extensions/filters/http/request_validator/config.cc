// The request_validator filter's config side. Linked by sluice and sluice-cp.
#include "source/extensions/filters/http/request_validator/config.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "source/common/http/filter_config.h"
#include "source/common/http/headers.h"

namespace sluice {
namespace Extensions {
namespace RequestValidator {
namespace {

// A google.protobuf.Value as our JSON value.
absl::StatusOr<Json::Value> toJson(const google::protobuf::Value& value) {
  std::string text;
  auto printed = google::protobuf::util::MessageToJsonString(value, &text);
  if (!printed.ok()) return absl::InvalidArgumentError(printed.ToString());
  return Json::parse(text, {.max_depth = 64});
}

ValueKind kindOf(const Json::Value* schema) {
  if (schema == nullptr) return ValueKind::String;
  const std::string* type = schema->findString("type");
  if (type == nullptr) return ValueKind::String;
  if (*type == "integer") return ValueKind::Integer;
  if (*type == "number") return ValueKind::Number;
  if (*type == "boolean") return ValueKind::Boolean;
  if (*type == "array") return ValueKind::Array;
  return ValueKind::String;
}

SchemaConstSharedPtr compileSchema(const google::protobuf::Value& value, const std::string& path,
                                   Json::Value* json_out, Config::ErrorList& errors) {
  auto json = toJson(value);
  if (!json.ok()) {
    errors.add(path, std::string(json.status().message()));
    return nullptr;
  }
  auto schema = Schema::compile(*json);
  if (!schema.ok()) {
    errors.add(path, std::string(schema.status().message()));
    return nullptr;
  }
  if (json_out != nullptr) *json_out = std::move(*json);
  return *schema;
}

const char* inName(ParameterProto::In in) {
  switch (in) {
    case ParameterProto::PATH:
      return "path";
    case ParameterProto::HEADER:
      return "header";
    default:
      return "query";
  }
}

}  // namespace

std::shared_ptr<const RouteConfig> compileRouteConfig(const PerRouteProto& config,
                                                      const std::string& path,
                                                      Config::ErrorList& errors) {
  auto out = std::make_shared<RouteConfig>();
  if (config.disabled()) {  // standing alone: the filter type checked
    out->disabled = true;
    return out;
  }
  const size_t before = errors.size();
  for (int i = 0; i < config.parameters_size(); ++i) {
    const ParameterProto& p = config.parameters(i);
    const std::string ppath = absl::StrCat(path, ".parameters[", i, "]");
    CompiledParameter c;
    c.name = p.name();
    c.in = p.in();
    if (!ParameterProto::In_IsValid(p.in())) errors.add(ppath + ".in", "unknown value");
    if (c.name.empty()) {
      errors.add(ppath + ".name", "is required");
    } else if (c.in == ParameterProto::HEADER) {
      if (!Http::isValidToken(c.name)) errors.add(ppath + ".name", "is not a header name");
      c.name = absl::AsciiStrToLower(c.name);
    }
    c.required = p.required() || c.in == ParameterProto::PATH;
    c.label = absl::StrCat(inName(c.in), " parameter \"", p.name(), "\"");
    if (p.has_schema()) {
      Json::Value json;
      c.schema = compileSchema(p.schema(), ppath + ".schema", &json, errors);
      c.kind = kindOf(&json);
      if (c.kind == ValueKind::Array) {
        const Json::Value* items = json.find("items");
        c.item_kind = items != nullptr && items->isObject() ? kindOf(items) : ValueKind::String;
        if (c.item_kind == ValueKind::Array) c.item_kind = ValueKind::String;
      }
    }
    out->parameters.push_back(std::move(c));
  }
  const auto& body = config.body();
  out->body_required = body.required();
  if (body.has_schema()) {
    out->body_schema = compileSchema(body.schema(), path + ".body.schema", nullptr, errors);
  }
  for (int i = 0; i < body.content_types_size(); ++i) {
    std::string t = absl::AsciiStrToLower(body.content_types(i));
    if (t.empty() || t.find('/') == std::string::npos || t.find(';') != std::string::npos) {
      errors.add(absl::StrCat(path, ".body.content_types[", i, "]"),
                 "must be a media type (type/subtype, without parameters)");
    }
    out->content_types.push_back(std::move(t));
  }
  if (errors.size() != before) return nullptr;
  return out;
}

namespace {

class RequestValidatorFilterType : public Http::FilterType {
 public:
  std::string name() const override { return kFilterName; }
  std::unique_ptr<google::protobuf::Message> createEmptyConfigProto() const override {
    return std::make_unique<RequestValidatorProto>();
  }
  void validateConfig(const google::protobuf::Message& message, const std::string& path,
                      const Http::FilterValidationContext&,
                      Config::ErrorList& errors) const override {
    const auto& c = static_cast<const RequestValidatorProto&>(message);
    if (c.has_max_body_bytes() && c.max_body_bytes() == 0) {
      errors.add(path + ".max_body_bytes", "must be at least 1");
    }
  }
  std::unique_ptr<google::protobuf::Message> createEmptyRouteConfigProto() const override {
    return std::make_unique<PerRouteProto>();
  }
  Router::RouteSpecificFilterConfigConstSharedPtr createRouteConfig(
      const google::protobuf::Message& message, const Http::RouteConfigContext& ctx,
      Config::ErrorList& errors) const override {
    const auto& config = static_cast<const PerRouteProto&>(message);
    if (config.disabled() && !Http::disabledStandsAlone(config, ctx, errors)) return nullptr;
    return compileRouteConfig(config, Http::routeConfigPath(ctx), errors);
  }
  std::string describeRouteConfig(const google::protobuf::Message& message) const override {
    return static_cast<const PerRouteProto&>(message).disabled() ? "" : "request validation";
  }
};

REGISTER_HTTP_FILTER_TYPE(RequestValidatorFilterType);

}  // namespace
}  // namespace RequestValidator
}  // namespace Extensions
}  // namespace sluice
