#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "source/common/common/json_value.h"

namespace sluice {
namespace Extensions {
namespace RequestValidator {

// A JSON Schema (draft 4, the dialect OpenAPI 3.0's Schema Object is a subset of, plus OpenAPI's
// `nullable`), compiled once: regexes built, `$ref`s resolved (JSON pointers into the same
// document, `id` scopes), keywords checked. Immutable and shared by every worker.
//
// Supported: type, enum, multipleOf, maximum/exclusiveMaximum, minimum/exclusiveMinimum,
// maxLength/minLength (in code points), pattern (RE2: no backreferences or lookaround),
// items/additionalItems, maxItems/minItems, uniqueItems, maxProperties/minProperties, required,
// properties, patternProperties, additionalProperties, dependencies, allOf/anyOf/oneOf/not,
// definitions, $ref, id, nullable. `format` is an annotation (not asserted), as draft 4 allows.
// `$ref`s to other documents resolve only to the ones given in Options::documents; any other is
// refused at compile time, naming the reference (nothing is fetched).
class Schema {
 public:
  struct Options {
    // OpenAPI 3.0: `nullable: true` also admits null.
    bool nullable_keyword = true;
    // Other documents `$ref`s may name, by URI (nothing is ever fetched).
    std::vector<std::pair<std::string, Json::Value>> documents;
  };
  // Errors name the schema location: `#/properties/age/minimum: must be a number`.
  static absl::StatusOr<std::shared_ptr<const Schema>> compile(const Json::Value& schema,
                                                               const Options& options);
  static absl::StatusOr<std::shared_ptr<const Schema>> compile(const Json::Value& schema) {
    return compile(schema, Options());
  }
  ~Schema();

  // True when `instance` is valid. Otherwise false, with `*error` saying where and why:
  // `<root>.items[2].id: must be an integer` (`root` names the instance: "body").
  bool validate(const Json::Value& instance, std::string* error, absl::string_view root = "") const;

  struct Node;

 private:
  Schema();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};
using SchemaConstSharedPtr = std::shared_ptr<const Schema>;

// Deep JSON equality, numbers compared by value (1 == 1.0), object members in any order.
bool jsonEquals(const Json::Value& a, const Json::Value& b);

}  // namespace RequestValidator
}  // namespace Extensions
}  // namespace sluice
