#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "source/common/config/utility.h"
#include "source/common/http/headers.h"
#include "source/common/router/config.h"
#include "source/extensions/filters/http/common/transform.h"
#include "source/extensions/filters/http/request_transformer/config.pb.h"

namespace sluice {
namespace Extensions {
namespace RequestTransformer {

inline constexpr char kFilterName[] = "request_transformer";
inline constexpr uint32_t kDefaultMaxBodyBytes = 1024 * 1024;

// The request values a template names with `$name`.
enum class TemplateVariable { RequestId, Scheme, Host, ClientIp, Consumer };

// What a template reads from the request it is rendered for.
class TemplateContext {
 public:
  virtual ~TemplateContext() = default;
  // The first value of request header `name` (lower case), or nullopt.
  virtual absl::optional<absl::string_view> header(absl::string_view name) const = 0;
  // The first value of query parameter `name` (decoded), or nullopt.
  virtual absl::optional<std::string> queryParam(absl::string_view name) const = 0;
  // Named group `name` of the route's regex path, or nullopt.
  virtual absl::optional<std::string> uriCapture(absl::string_view name) const = 0;
  // $request_id, $scheme, $host, $client_ip, $consumer ("" when there is none).
  virtual absl::string_view variable(TemplateVariable v) const = 0;
};

// A value with Kong's placeholders `$(headers.NAME)`, `$(headers["NAME"])`,
// `$(query_params.NAME)`, `$(uri_captures.NAME)`, and Sluice's `$request_id`, `$scheme`,
// `$host`, `$client_ip`, `$consumer`. A placeholder with nothing to read renders empty; a `$`
// before anything else is a plain `$`. Compiled once per config.
class Template {
 public:
  static absl::StatusOr<Template> compile(absl::string_view text);
  // `text` as it is, without placeholders.
  static Template literal(absl::string_view text);
  bool isStatic() const {
    return segments_.empty() || (segments_.size() == 1 && segments_[0].kind == Kind::Literal);
  }
  const std::string& text() const { return text_; }
  std::string render(const TemplateContext& ctx) const;

 private:
  enum class Kind { Literal, Header, Query, UriCapture, Variable };
  struct Segment {
    Kind kind;
    std::string text;                                         // the literal, or the name read
    TemplateVariable variable = TemplateVariable::RequestId;  // Kind::Variable
  };
  std::string text_;
  std::vector<Segment> segments_;
};

struct NameValue {
  std::string name;  // headers: lower case
  Template value;
  bool has_value = false;
};

struct NameRules {
  std::vector<std::string> remove;
  std::vector<NameValue> rename;  // value: the new name
  std::vector<NameValue> replace;
  std::vector<NameValue> add;
  std::vector<NameValue> append;
  bool empty() const {
    return remove.empty() && rename.empty() && replace.empty() && add.empty() && append.empty();
  }
};

struct BodyRule {
  Transform::JsonPath path;  // JSON: the member; form: path.text is the field name
  Template value;
  bool has_value = false;
};
struct BodyRules {
  std::vector<Transform::JsonPath> remove;
  std::vector<Transform::JsonRename> rename;
  std::vector<BodyRule> replace;
  std::vector<BodyRule> add;
  std::vector<BodyRule> append;
  bool empty() const {
    return remove.empty() && rename.empty() && replace.empty() && add.empty() && append.empty();
  }
};

// A compiled `request_transformer` config (the listener's, or a route's filter_config).
class TransformConfig : public Router::RouteSpecificFilterConfig {
 public:
  // Compiles `proto`; errors name fields under `path` (`...config.add.headers[0]`), and the
  // result is null.
  static std::shared_ptr<const TransformConfig> create(
      const sluice::extensions::filters::http::request_transformer::v1::RequestTransformer& proto,
      const std::string& path, sluice::Config::ErrorList& errors);

  std::string http_method;
  NameRules headers;
  NameRules query;
  BodyRules body;
  // `body` as JSON rules, each value its template's text: what applies as it is when no body
  // value is a template (else the filter renders the values into a copy).
  Transform::JsonRules json;
  bool json_values_static = true;
  absl::optional<Template> uri;
  uint32_t max_body_bytes = kDefaultMaxBodyBytes;
  // Reads the body of a form request: body rules, or a method change to GET/HEAD/TRACE.
  bool reads_form_body = false;
  bool reads_json_body = false;
  bool moves_form_to_query = false;
};
using TransformConfigConstSharedPtr = std::shared_ptr<const TransformConfig>;

}  // namespace RequestTransformer
}  // namespace Extensions
}  // namespace sluice
