// The response_transformer filter's config side: its config message, compiled into Rules with
// every error named by field. Linked by sluice and sluice-cp.
#include "source/extensions/filters/http/response_transformer/config.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"
#include "source/common/common/json_value.h"
#include "source/common/http/filter_config.h"
#include "source/common/http/headers.h"

namespace sluice {
namespace Extensions {
namespace ResponseTransformer {
namespace {

namespace v1 = sluice::extensions::filters::http::response_transformer::v1;
using Field = std::function<std::string(absl::string_view)>;

// Compiles the sections of one config into Rules, reporting each error at its field.
class Compiler {
 public:
  Compiler(const Field& field, Config::ErrorList& errors) : field_(field), errors_(errors) {}

  bool ok() const { return ok_; }

  void removeRules(const v1::RemoveRules& config, Rules& out) {
    for (int i = 0; i < config.headers_size(); ++i) {
      const std::string where = at("remove.headers", i);
      auto e = entry(config.headers(i), where, false);
      std::string name;
      if (e && headerName(e->name, where, name)) out.remove_headers.push_back(std::move(name));
    }
    for (int i = 0; i < config.json_size(); ++i) {
      const std::string where = at("remove.json", i);
      auto e = entry(config.json(i), where, false);
      Transform::JsonPath path;
      if (e && jsonPath(e->name, where, path)) out.json.remove.push_back(std::move(path));
    }
  }

  void renameRules(const v1::RenameRules& config, Rules& out) {
    for (int i = 0; i < config.headers_size(); ++i) {
      const std::string where = at("rename.headers", i);
      auto e = entry(config.headers(i), where, true);
      HeaderRename r;
      if (!e || !headerName(e->name, where, r.from) || !headerName(e->value, where, r.to)) continue;
      if (r.from == r.to) {
        // Kong would set the header, then clear it: the header would be removed.
        fail(where, absl::StrCat("\"", config.headers(i), "\" renames the header to itself"));
        continue;
      }
      out.rename_headers.push_back(std::move(r));
    }
    for (int i = 0; i < config.json_size(); ++i) {
      const std::string where = at("rename.json", i);
      auto e = entry(config.json(i), where, true);
      Transform::JsonRename r;
      if (!e || !jsonPath(e->name, where, r.from) || !jsonPath(e->value, where, r.to)) continue;
      if (r.from.keys == r.to.keys) {
        fail(where, absl::StrCat("\"", config.json(i), "\" renames the member to itself"));
        continue;
      }
      out.json.rename.push_back(std::move(r));
    }
  }

  void valueRules(absl::string_view section, const v1::ValueRules& config,
                  std::vector<HeaderValue>& headers, std::vector<Transform::JsonRule>& json) {
    for (int i = 0; i < config.headers_size(); ++i) {
      const std::string where = at(absl::StrCat(section, ".headers"), i);
      auto e = entry(config.headers(i), where, true);
      HeaderValue h;
      if (!e || !headerName(e->name, where, h.name)) continue;
      if (!Http::isValidHeaderValue(e->value)) {
        fail(where, absl::StrCat("\"", config.headers(i), "\": the value has a character a ",
                                 "header value may not contain"));
        continue;
      }
      h.value = std::move(e->value);
      headers.push_back(std::move(h));
    }
    const std::string types_field = absl::StrCat(section, ".json_types");
    if (config.json_types_size() > config.json_size()) {
      fail(types_field,
           absl::StrCat("has ", config.json_types_size(), " entries for ", config.json_size(),
                        " json entries (one type per json entry, by index)"));
    }
    for (int i = 0; i < config.json_types_size(); ++i) {
      const std::string& t = config.json_types(i);
      if (t != "string" && t != "boolean" && t != "number") {
        fail(at(types_field, i),
             absl::StrCat("unknown type \"", t, "\" (string, boolean or number)"));
      }
    }
    for (int i = 0; i < config.json_size(); ++i) {
      const std::string where = at(absl::StrCat(section, ".json"), i);
      auto e = entry(config.json(i), where, true);
      Transform::JsonRule r;
      if (!e || !jsonPath(e->name, where, r.path)) continue;
      const std::string type = i < config.json_types_size() ? config.json_types(i) : "string";
      if (type == "boolean") {
        r.value = Json::Value::boolean(e->value == "true");  // Kong: true only for "true"
      } else if (type == "number") {
        absl::StatusOr<Json::Value> n = Json::parse(e->value);
        if (!n.ok() || !n->isNumber()) {
          fail(at(types_field, i), absl::StrCat("\"", e->value, "\" (", section, ".json[", i,
                                                "]) is not a JSON number"));
          continue;
        }
        r.value = std::move(*n);
      } else {
        r.value = Json::Value::string(std::move(e->value));
      }
      json.push_back(std::move(r));
    }
  }

 private:
  static std::string at(absl::string_view list, int i) { return absl::StrCat(list, "[", i, "]"); }

  // Reports `message` at the config field `where` (relative to the filter's config).
  void fail(absl::string_view where, const std::string& message) {
    errors_.add(field_(where), message);
    ok_ = false;
  }

  // The entry at field `where` (relative); reports and returns nullopt when it has no name, or
  // no value where one is needed (Kong would skip such a rule, or fail the response).
  absl::optional<Transform::Entry> entry(const std::string& text, const std::string& where,
                                         bool need_value) {
    absl::StatusOr<Transform::Entry> e = Transform::parseEntry(text);
    if (!e.ok()) {
      fail(where, std::string(e.status().message()));
      return absl::nullopt;
    }
    if (need_value && !e->has_value) {
      fail(where, absl::StrCat("\"", text, "\": expected \"name:value\" (the value is empty)"));
      return absl::nullopt;
    }
    return std::move(*e);
  }

  bool headerName(absl::string_view name, const std::string& where, std::string& out) {
    out = std::string(name);
    Http::toLowerInPlace(out);
    if (!Http::isValidToken(out)) {
      fail(where, absl::StrCat("\"", name, "\" is not a valid header name"));
      return false;
    }
    if (out == "content-length" || Http::isHopByHop(out)) {
      fail(where, absl::StrCat("\"", name,
                               "\": the message framing and hop-by-hop headers are "
                               "the gateway's, not a transformer's"));
      return false;
    }
    return true;
  }

  bool jsonPath(absl::string_view text, const std::string& where, Transform::JsonPath& out) {
    absl::StatusOr<Transform::JsonPath> p = Transform::parseJsonPath(text);
    if (!p.ok()) {
      fail(where, std::string(p.status().message()));
      return false;
    }
    if (p->keys.size() > kMaxJsonPathKeys) {
      fail(where, absl::StrCat("\"", text, "\": more than ", kMaxJsonPathKeys,
                               " keys in a dotted JSON path"));
      return false;
    }
    out = std::move(*p);
    return true;
  }

  const Field& field_;
  Config::ErrorList& errors_;
  bool ok_ = true;
};

// {remove, rename, replace, add, append, max_body_bytes}, on the listener and per route.
class ResponseTransformerFilterType : public Http::FilterType {
 public:
  std::string name() const override { return kFilterName; }
  std::unique_ptr<google::protobuf::Message> createEmptyConfigProto() const override {
    return std::make_unique<ConfigProto>();
  }
  void validateConfig(const google::protobuf::Message& config, const std::string& path,
                      const Http::FilterValidationContext&,
                      Config::ErrorList& errors) const override {
    compileRules(
        static_cast<const ConfigProto&>(config),
        [&path](absl::string_view f) { return absl::StrCat(path, ".", f); }, errors);
  }
  std::unique_ptr<google::protobuf::Message> createEmptyRouteConfigProto() const override {
    return std::make_unique<ConfigProto>();
  }
  Router::RouteSpecificFilterConfigConstSharedPtr createRouteConfig(
      const google::protobuf::Message& config, const Http::RouteConfigContext& ctx,
      Config::ErrorList& errors) const override {
    return compileRules(static_cast<const ConfigProto&>(config), ctx.field_path, errors);
  }
};

REGISTER_HTTP_FILTER_TYPE(ResponseTransformerFilterType);

}  // namespace

RulesConstSharedPtr compileRules(const ConfigProto& config, const Field& field,
                                 Config::ErrorList& errors) {
  auto rules = std::make_shared<Rules>();
  Compiler c(field, errors);
  c.removeRules(config.remove(), *rules);
  c.renameRules(config.rename(), *rules);
  c.valueRules("replace", config.replace(), rules->replace_headers, rules->json.replace);
  c.valueRules("add", config.add(), rules->add_headers, rules->json.add);
  c.valueRules("append", config.append(), rules->append_headers, rules->json.append);
  if (config.max_body_bytes() > kMaxMaxBodyBytes) {
    errors.add(field("max_body_bytes"), absl::StrCat("must be <= ", kMaxMaxBodyBytes));
    return nullptr;
  }
  rules->max_body_bytes =
      config.max_body_bytes() == 0 ? kDefaultMaxBodyBytes : config.max_body_bytes();
  if (!c.ok()) return nullptr;
  return rules;
}

}  // namespace ResponseTransformer
}  // namespace Extensions
}  // namespace sluice
