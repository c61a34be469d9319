#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "source/common/common/json_value.h"
#include "source/common/http/headers.h"

namespace sluice {
namespace Extensions {
namespace Transform {

// What the request_transformer and response_transformer filters share: Kong's rule entries,
// JSON body edits in Kong's order and meaning, and the content types they apply to.

// One entry of a Kong rule list, "name:value" / "old:new". Kong reads it as ^([^:]+):*(.-)$:
// the name runs to the first colon, more colons before the value are skipped, the value is the
// rest (so "p3:value:3" is p3 = "value:3"). An entry without a value has `has_value` false.
struct Entry {
  std::string name;
  std::string value;
  bool has_value = false;
};
// Errors when the name is empty.
absl::StatusOr<Entry> parseEntry(absl::string_view text);

// A member of a JSON body by dotted path: "meta.api_version" is member api_version of the
// top-level member meta. (A key with a dot in it can't be named.)
struct JsonPath {
  std::vector<std::string> keys;
  std::string text;  // as configured, for errors and logs
};
// Errors on an empty path or an empty segment ("a..b", ".a").
absl::StatusOr<JsonPath> parseJsonPath(absl::string_view text);

// The member at `path`, or null when it or an object on the way is missing.
Json::Value* findPath(Json::Value& root, const JsonPath& path);
// Kong's (Lua's) test of a member: present, and not `false`. A member that is false counts as
// absent for replace and add (Kong reads `if body[name]`), null counts as present.
bool truthy(const Json::Value* v);
// Removes the member at `path`; false when there was none.
bool removePath(Json::Value& root, const JsonPath& path);
// Sets the member at `path`, making the missing objects on the way; false (nothing changed)
// when something on the way is not an object.
bool setPath(Json::Value& root, const JsonPath& path, Json::Value value);
// Kong's append: a string becomes [string, value], an array gets value pushed, anything else
// (absent, number, boolean, null, object) becomes [value].
Json::Value appendValue(Json::Value* current, Json::Value value);

// JSON body rules, applied in Kong's order: remove, rename, replace (only present members),
// add (only absent members), append (always).
struct JsonRule {
  JsonPath path;
  Json::Value value;
};
struct JsonRename {
  JsonPath from;
  JsonPath to;
};
struct JsonRules {
  std::vector<JsonPath> remove;
  std::vector<JsonRename> rename;
  std::vector<JsonRule> replace;
  std::vector<JsonRule> add;
  std::vector<JsonRule> append;
  bool empty() const {
    return remove.empty() && rename.empty() && replace.empty() && add.empty() && append.empty();
  }
};
// How rename treats a missing source. Kong's request-transformer moves the value whatever it is,
// so a missing `old` removes `new`; its response-transformer renames only a present member.
enum class RenameMissing { RemoveTarget, Skip };
// Applies `rules` to `root` (an object; other values are left as they are: false).
bool applyJsonRules(Json::Value& root, const JsonRules& rules, RenameMissing rename_missing);

// Body parsing for transforms: one member per name (the last value wins, where the first
// stood), nesting up to 64.
absl::StatusOr<Json::Value> parseBody(absl::string_view text);

// application/json, or any type/subtype with a +json suffix (parameters ignored, any case).
bool isJsonContentType(absl::string_view content_type);
// application/x-www-form-urlencoded.
bool isFormContentType(absl::string_view content_type);
// The message carries a content coding other than identity (a body the gateway can't read).
bool hasContentCoding(const Http::HeaderMap& headers);

// Percent-decodes a form component ('+' is a space; a malformed escape stays as it is).
std::string decodeFormComponent(absl::string_view s);
// Percent-encodes everything but RFC 3986 unreserved characters.
std::string encodeFormComponent(absl::string_view s);
// The decoded values of query parameter `name` in `query` (the part after '?'), in order: an
// empty value for `?name` and `?name=`.
std::vector<std::string> queryValues(absl::string_view query, absl::string_view name);

}  // namespace Transform
}  // namespace Extensions
}  // namespace sluice
