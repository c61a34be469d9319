// Feeds arbitrary bytes to the JSON body path of the transformers (response_transformer, and
// request_transformer when it comes): Transform::parseBody, then rules in Kong's order with
// nested dotted paths (a fixed set, and paths named by the input's first bytes), then the
// serializer. Nothing may crash, hang or leak, and what a transformer writes must hold up:
//   - the text of a parsed body reads back with a strict reader (no duplicate member, nesting
//     within the limit) and writes back to the same text (a fixed point);
//   - so does the text of a transformed body; rules change nothing in a body that is not an
//     object (applyJsonRules says false);
//   - after a remove the path is gone; after an append the path (when it could be made) holds
//     an array ending with the appended value.
// A violation aborts. The default (gcc) build replays files given on the command line.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "source/common/common/json_value.h"
#include "source/extensions/filters/http/common/transform.h"

namespace sluice {
namespace {

using Extensions::Transform::JsonPath;
using Extensions::Transform::JsonRename;
using Extensions::Transform::JsonRule;
using Extensions::Transform::JsonRules;
using Extensions::Transform::RenameMissing;
namespace T = Extensions::Transform;

[[noreturn]] void violation(const char* what, const std::string& detail) {
  std::fprintf(stderr, "json_transform_fuzzer: invariant violated: %s\n%s\n", what,
               detail.substr(0, 2000).c_str());
  std::fflush(stderr);
  std::abort();
}

// The strictest reader of the output: what any other JSON reader takes.
Json::ParseOptions strict() {
  Json::ParseOptions o;
  o.max_depth = Json::kMaxDepthLimit;
  o.reject_duplicate_names = true;
  return o;
}

// `text` reads back strictly and writes back to itself.
void checkFixedPoint(const std::string& text, const char* what) {
  absl::StatusOr<Json::Value> again = Json::parse(text, strict());
  if (!again.ok()) violation(what, std::string(again.status().message()) + "\n" + text);
  if (again->toJson() != text) violation(what, text);
}

JsonPath path(const char* text) {
  absl::StatusOr<JsonPath> p = T::parseJsonPath(text);
  if (!p.ok()) violation("a fixed path does not parse", text);
  return *p;
}

// A path of 1 to 3 keys named by the input's bytes (cycling through them): keys bodies use.
JsonPath derivedPath(const uint8_t* data, size_t size, size_t& pos) {
  static const char* const kKeys[] = {"a", "b", "meta", "api_version", "id", "tags", "", "0"};
  auto next = [&]() -> uint8_t { return size == 0 ? 0 : data[pos++ % size]; };
  const int depth = 1 + next() % 3;
  JsonPath p;
  for (int i = 0; i < depth; ++i) {
    const uint8_t b = next();
    // Key 6 is a key of the body itself when there is one: a byte of the input as a key.
    p.keys.emplace_back(b % 8 == 6 ? std::string(1, static_cast<char>('a' + (b >> 3) % 26))
                                   : kKeys[b % 8]);
    p.text += (i ? "." : "") + p.keys.back();
  }
  return p;
}

JsonRules rules(const uint8_t* data, size_t size) {
  JsonRules r;
  size_t pos = 0;
  r.remove = {path("secret"), path("meta.internal"), derivedPath(data, size, pos)};
  r.rename = {{path("id"), path("user_id")},
              {path("meta.ver"), path("meta.version")},
              {derivedPath(data, size, pos), derivedPath(data, size, pos)}};
  r.replace = {{path("meta.api_version"), Json::Value::string("v1")},
               {derivedPath(data, size, pos), Json::Value::number("-1.50e3")}};
  r.add = {{path("meta.region"), Json::Value::string("eu")},
           {path("deep.new.key"), Json::Value::boolean(true)},
           {derivedPath(data, size, pos), Json::Value::null()}};
  r.append = {{path("tags"), Json::Value::string("new")},
              {derivedPath(data, size, pos), Json::Value::string("x\"\\\n\xc3\xa9")}};
  return r;
}

void checkTransform(const Json::Value& parsed, const JsonRules& r, RenameMissing missing) {
  Json::Value v = parsed;
  const bool applied = T::applyJsonRules(v, r, missing);
  const std::string out = v.toJson();
  if (applied != parsed.isObject()) violation("rules applied to a non-object (or not)", out);
  if (!applied && out != parsed.toJson()) violation("a non-object body changed", out);
  checkFixedPoint(out, "a transformed body does not read back as itself");
}

}  // namespace
}  // namespace sluice

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  namespace T = sluice::Extensions::Transform;
  const std::string input(reinterpret_cast<const char*>(data), size);
  // The other parsers of the shared code, on the same bytes.
  (void)T::parseEntry(input);
  (void)T::parseJsonPath(input);
  (void)T::isJsonContentType(input);

  absl::StatusOr<Json::Value> parsed = T::parseBody(input);
  if (!parsed.ok()) return 0;
  checkFixedPoint(parsed->toJson(), "a parsed body does not read back as itself");

  const T::JsonRules all = rules(data, size);
  checkTransform(*parsed, all, T::RenameMissing::Skip);
  checkTransform(*parsed, all, T::RenameMissing::RemoveTarget);

  // One rule at a time: what it must leave behind.
  for (const T::JsonPath& p : all.remove) {
    Json::Value v = *parsed;
    T::JsonRules r;
    r.remove = {p};
    T::applyJsonRules(v, r, T::RenameMissing::Skip);
    if (T::findPath(v, p) != nullptr) violation("a removed path is still there", p.text);
  }
  for (const T::JsonRule& rule : all.append) {
    Json::Value v = *parsed;
    T::JsonRules r;
    r.append = {rule};
    T::applyJsonRules(v, r, T::RenameMissing::Skip);
    const Json::Value* got = T::findPath(v, rule.path);
    if (got == nullptr) continue;  // an object on the way was something else: nothing changed
    if (!got->isArray() || got->items().empty() ||
        got->items().back().toJson() != rule.value.toJson()) {
      violation("an appended path does not end with the value", rule.path.text);
    }
  }
  return 0;
}
