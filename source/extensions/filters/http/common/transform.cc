#include "source/extensions/filters/http/common/transform.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "source/common/http/path.h"

namespace sluice {
namespace Extensions {
namespace Transform {

absl::StatusOr<Entry> parseEntry(absl::string_view text) {
  Entry e;
  const size_t colon = text.find(':');
  e.name = std::string(text.substr(0, colon));
  if (e.name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\": expected \"name:value\" (the name is empty)"));
  }
  if (colon != absl::string_view::npos) {
    absl::string_view rest = text.substr(colon);
    while (!rest.empty() && rest.front() == ':') rest.remove_prefix(1);
    e.value = std::string(rest);
    e.has_value = !e.value.empty();
  }
  return e;
}

absl::StatusOr<JsonPath> parseJsonPath(absl::string_view text) {
  JsonPath p;
  p.text = std::string(text);
  for (absl::string_view k : absl::StrSplit(text, '.')) {
    if (k.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", text, "\": empty key in a dotted JSON path"));
    }
    p.keys.emplace_back(k);
  }
  return p;
}

Json::Value* findPath(Json::Value& root, const JsonPath& path) {
  Json::Value* v = &root;
  for (const std::string& k : path.keys) {
    if (!v->isObject()) return nullptr;
    v = v->find(k);
    if (v == nullptr) return nullptr;
  }
  return v;
}

bool truthy(const Json::Value* v) { return v != nullptr && !(v->isBool() && !v->boolValue()); }

bool removePath(Json::Value& root, const JsonPath& path) {
  Json::Value* parent = &root;
  for (size_t i = 0; i + 1 < path.keys.size(); ++i) {
    if (!parent->isObject()) return false;
    parent = parent->find(path.keys[i]);
    if (parent == nullptr) return false;
  }
  return parent->isObject() && parent->remove(path.keys.back());
}

bool setPath(Json::Value& root, const JsonPath& path, Json::Value value) {
  Json::Value* parent = &root;
  for (size_t i = 0; i + 1 < path.keys.size(); ++i) {
    if (!parent->isObject()) return false;
    Json::Value* next = parent->find(path.keys[i]);
    parent = next != nullptr ? next : &parent->set(path.keys[i], Json::Value::object());
  }
  if (!parent->isObject()) return false;
  parent->set(path.keys.back(), std::move(value));
  return true;
}

Json::Value appendValue(Json::Value* current, Json::Value value) {
  if (current != nullptr && current->isArray()) {
    Json::Value out = std::move(*current);
    out.items().push_back(std::move(value));
    return out;
  }
  Json::Value out = Json::Value::array();
  if (current != nullptr && current->isString()) out.items().push_back(std::move(*current));
  out.items().push_back(std::move(value));
  return out;
}

bool applyJsonRules(Json::Value& root, const JsonRules& rules, RenameMissing rename_missing) {
  if (!root.isObject()) return false;
  for (const JsonPath& p : rules.remove) {
    removePath(root, p);
  }
  for (const JsonRename& r : rules.rename) {
    Json::Value* from = findPath(root, r.from);
    if (from == nullptr) {
      if (rename_missing == RenameMissing::RemoveTarget) removePath(root, r.to);
      continue;
    }
    Json::Value moved = std::move(*from);
    removePath(root, r.from);
    setPath(root, r.to, std::move(moved));
  }
  for (const JsonRule& r : rules.replace) {
    Json::Value* v = findPath(root, r.path);
    if (truthy(v)) *v = r.value;
  }
  for (const JsonRule& r : rules.add) {
    if (!truthy(findPath(root, r.path))) setPath(root, r.path, r.value);
  }
  for (const JsonRule& r : rules.append) {
    setPath(root, r.path, appendValue(findPath(root, r.path), r.value));
  }
  return true;
}

absl::StatusOr<Json::Value> parseBody(absl::string_view text) {
  Json::ParseOptions options;
  options.max_depth = 64;
  options.reject_duplicate_names = false;
  return Json::parse(text, options);
}

namespace {

// The media type of a Content-Type value: type/subtype, lower case, without parameters.
std::string mediaType(absl::string_view content_type) {
  content_type = content_type.substr(0, content_type.find(';'));
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(content_type));
}

}  // namespace

bool isJsonContentType(absl::string_view content_type) {
  const std::string t = mediaType(content_type);
  const size_t slash = t.find('/');
  return t == "application/json" ||
         (slash != std::string::npos && slash > 0 && absl::EndsWith(t, "+json"));
}

bool isFormContentType(absl::string_view content_type) {
  return mediaType(content_type) == "application/x-www-form-urlencoded";
}

bool hasContentCoding(const Http::HeaderMap& headers) {
  for (const Http::HeaderEntry& e : headers.entries()) {
    if (e.key != "content-encoding") continue;
    for (absl::string_view c : absl::StrSplit(e.value, ',')) {
      c = absl::StripAsciiWhitespace(c);
      if (!c.empty() && !absl::EqualsIgnoreCase(c, "identity")) return true;
    }
  }
  return false;
}

std::string decodeFormComponent(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && Http::Path::hexValue(s[i + 1]) >= 0 &&
               Http::Path::hexValue(s[i + 2]) >= 0) {
      out +=
          static_cast<char>(Http::Path::hexValue(s[i + 1]) * 16 + Http::Path::hexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string encodeFormComponent(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (Http::Path::isUnreserved(static_cast<unsigned char>(c))) {
      out += c;
    } else {
      Http::Path::appendPercentEncoded(out, static_cast<unsigned char>(c));
    }
  }
  return out;
}

std::vector<std::string> queryValues(absl::string_view query, absl::string_view name) {
  std::vector<std::string> out;
  for (absl::string_view p : absl::StrSplit(query, '&')) {
    if (p.empty()) continue;
    const size_t eq = p.find('=');
    if (decodeFormComponent(p.substr(0, eq)) != name) continue;
    out.push_back(eq == absl::string_view::npos ? std::string()
                                                : decodeFormComponent(p.substr(eq + 1)));
  }
  return out;
}

}  // namespace Transform
}  // namespace Extensions
}  // namespace sluice
