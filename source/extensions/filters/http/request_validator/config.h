#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "source/common/config/utility.h"
#include "source/common/router/config.h"
#include "source/extensions/filters/http/request_validator/config.pb.h"
#include "source/extensions/filters/http/request_validator/json_schema.h"

namespace sluice {
namespace Extensions {
namespace RequestValidator {

inline constexpr char kFilterName[] = "request_validator";

using RequestValidatorProto =
    sluice::extensions::filters::http::request_validator::v1::RequestValidator;
using PerRouteProto =
    sluice::extensions::filters::http::request_validator::v1::RequestValidatorPerRoute;
using ParameterProto = sluice::extensions::filters::http::request_validator::v1::Parameter;

// How a parameter's text becomes a JSON value to validate.
enum class ValueKind : uint8_t { String, Integer, Number, Boolean, Array };

struct CompiledParameter {
  std::string name;  // lower case for headers
  ParameterProto::In in = ParameterProto::QUERY;
  bool required = false;
  ValueKind kind = ValueKind::String;
  ValueKind item_kind = ValueKind::String;  // for arrays
  SchemaConstSharedPtr schema;              // null: any value
  std::string label;                        // `query parameter "limit"`, for errors
};

// A route's compiled filter_config.request_validator; immutable, shared by every worker.
struct RouteConfig : public Router::RouteSpecificFilterConfig {
  bool disabled = false;
  std::vector<CompiledParameter> parameters;
  bool body_required = false;
  SchemaConstSharedPtr body_schema;
  std::vector<std::string> content_types;  // lower case, without parameters
};

// Compiles a per-route config; errors name fields under `path`.
std::shared_ptr<const RouteConfig> compileRouteConfig(const PerRouteProto& config,
                                                      const std::string& path,
                                                      Config::ErrorList& errors);

}  // namespace RequestValidator
}  // namespace Extensions
}  // namespace sluice
