#include "source/extensions/filters/http/request_validator/json_schema.h"

#include <cmath>
#include <deque>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "re2/re2.h"

namespace sluice {
namespace Extensions {
namespace RequestValidator {

namespace {

// Types as a bit set.
enum TypeBit : uint8_t {
  kNull = 1,
  kBoolean = 2,
  kObject = 4,
  kArray = 8,
  kNumber = 16,
  kString = 32,
  kInteger = 64,
};

double numberOf(const Json::Value& v) {
  double d = 0;
  if (!absl::SimpleAtod(v.str(), &d)) return std::nan("");
  return d;
}

bool isIntegral(const Json::Value& v) {
  const double d = numberOf(v);
  return std::isfinite(d) && std::floor(d) == d;
}

uint8_t typeOf(const Json::Value& v) {
  switch (v.type()) {
    case Json::Value::Type::Null:
      return kNull;
    case Json::Value::Type::Bool:
      return kBoolean;
    case Json::Value::Type::Object:
      return kObject;
    case Json::Value::Type::Array:
      return kArray;
    case Json::Value::Type::Number:
      return isIntegral(v) ? (kNumber | kInteger) : kNumber;
    case Json::Value::Type::String:
      return kString;
  }
  return 0;
}

const char* typeName(uint8_t bit) {
  switch (bit) {
    case kNull:
      return "null";
    case kBoolean:
      return "boolean";
    case kObject:
      return "object";
    case kArray:
      return "array";
    case kNumber:
      return "number";
    case kString:
      return "string";
    case kInteger:
      return "integer";
  }
  return "?";
}

size_t codePoints(absl::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xc0) != 0x80;
  return n;
}

// A JSON pointer token's unescaping (~1 -> /, ~0 -> ~) after URI percent-decoding.
std::string pointerToken(absl::string_view raw) {
  std::string pct;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '%' && i + 2 < raw.size()) {
      int v = 0;
      if (absl::SimpleHexAtoi(raw.substr(i + 1, 2), &v)) {
        pct += static_cast<char>(v);
        i += 2;
        continue;
      }
    }
    pct += raw[i];
  }
  std::string out;
  for (size_t i = 0; i < pct.size(); ++i) {
    if (pct[i] == '~' && i + 1 < pct.size() && (pct[i + 1] == '0' || pct[i + 1] == '1')) {
      out += pct[i + 1] == '0' ? '~' : '/';
      ++i;
    } else {
      out += pct[i];
    }
  }
  return out;
}

// `ref` resolved against `base` (RFC 3986, as far as schema ids need: absolute references,
// fragments, and paths relative to the base's last segment).
std::string resolveUri(const std::string& base, absl::string_view ref) {
  if (ref.empty()) return base;
  if (ref[0] == '#') return absl::StrCat(base.substr(0, base.find('#')), ref);
  if (ref.find("://") != absl::string_view::npos || absl::StartsWith(ref, "urn:")) {
    return std::string(ref);
  }
  const std::string doc = base.substr(0, base.find('#'));
  if (ref[0] == '/') {
    const size_t scheme = doc.find("://");
    const size_t path = scheme == std::string::npos ? 0 : doc.find('/', scheme + 3);
    return absl::StrCat(doc.substr(0, path == std::string::npos ? doc.size() : path), ref);
  }
  const size_t slash = doc.rfind('/');
  return absl::StrCat(slash == std::string::npos ? "" : doc.substr(0, slash + 1), ref);
}

std::string withoutFragment(const std::string& uri) {
  std::string out = uri.substr(0, uri.find('#'));
  return out;
}

}  // namespace

bool jsonEquals(const Json::Value& a, const Json::Value& b) {
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Json::Value::Type::Null:
      return true;
    case Json::Value::Type::Bool:
      return a.boolValue() == b.boolValue();
    case Json::Value::Type::String:
      return a.str() == b.str();
    case Json::Value::Type::Number:
      return a.str() == b.str() || numberOf(a) == numberOf(b);
    case Json::Value::Type::Array:
      if (a.items().size() != b.items().size()) return false;
      for (size_t i = 0; i < a.items().size(); ++i) {
        if (!jsonEquals(a.items()[i], b.items()[i])) return false;
      }
      return true;
    case Json::Value::Type::Object:
      if (a.members().size() != b.members().size()) return false;
      for (const auto& m : a.members()) {
        const Json::Value* o = b.find(m.first);
        if (o == nullptr || !jsonEquals(m.second, *o)) return false;
      }
      return true;
  }
  return false;
}

struct Schema::Node {
  const Node* ref = nullptr;  // $ref: every other keyword is ignored (draft 4)
  bool has_ref = false;
  uint8_t types = 0;  // 0: any
  bool nullable = false;
  std::vector<const Json::Value*> enum_values;
  bool has_enum = false;
  double multiple_of = 0;
  bool has_maximum = false, exclusive_maximum = false;
  double maximum = 0;
  bool has_minimum = false, exclusive_minimum = false;
  double minimum = 0;
  int64_t max_length = -1, min_length = 0;
  std::unique_ptr<RE2> pattern;
  std::string pattern_text;
  // items: one schema for every item, or a tuple (with additional_items for the rest).
  const Node* items = nullptr;
  std::vector<const Node*> tuple;
  bool tuple_items = false;
  bool additional_items_allowed = true;
  const Node* additional_items = nullptr;
  int64_t max_items = -1, min_items = 0;
  bool unique_items = false;
  int64_t max_properties = -1, min_properties = 0;
  std::vector<std::string> required;
  std::vector<std::pair<std::string, const Node*>> properties;
  std::vector<std::pair<std::unique_ptr<RE2>, const Node*>> pattern_properties;
  bool additional_properties_allowed = true;
  const Node* additional_properties = nullptr;
  std::vector<std::pair<std::string, std::vector<std::string>>> property_dependencies;
  std::vector<std::pair<std::string, const Node*>> schema_dependencies;
  std::vector<const Node*> all_of, any_of, one_of;
  const Node* not_ = nullptr;
};

struct Schema::Impl {
  Json::Value document;
  std::deque<Json::Value> others;  // Options::documents, at stable addresses
  Options options;
  std::deque<Node> nodes;
  absl::flat_hash_map<const Json::Value*, Node*> compiled;
  // Documents and subschemas by their id (without fragment), for $ref.
  absl::flat_hash_map<std::string, const Json::Value*> ids;
  // The base URI in effect where each object of the documents is (before its own `id`).
  absl::flat_hash_map<const Json::Value*, std::string> bases;
  std::vector<std::string> errors;

  const Node* compile(const Json::Value& v, const std::string& base, const std::string& where);
  void registerIds(const Json::Value& v, const std::string& base);
  const Json::Value* resolve(const std::string& uri, const std::string& where);
  bool check(const Node& n, const Json::Value& v, std::string& path, std::string* error) const;
};

void Schema::Impl::registerIds(const Json::Value& v, const std::string& base) {
  if (v.isArray()) {
    for (const auto& item : v.items()) registerIds(item, base);
    return;
  }
  if (!v.isObject()) return;
  bases.emplace(&v, base);
  std::string scope = base;
  if (const std::string* id = v.findString("id"); id != nullptr) {
    scope = resolveUri(base, *id);
    ids.emplace(withoutFragment(scope), &v);
  }
  for (const auto& m : v.members()) {
    if (m.first == "enum" || m.first == "const") continue;  // data, not schemas
    registerIds(m.second, scope);
  }
}

const Json::Value* Schema::Impl::resolve(const std::string& uri, const std::string& where) {
  const size_t hash = uri.find('#');
  const std::string doc = uri.substr(0, hash);
  auto it = ids.find(doc);
  if (it == ids.end()) {
    errors.push_back(absl::StrCat(where, ": $ref \"", uri,
                                  "\" is in another document (remote references are not "
                                  "supported)"));
    return nullptr;
  }
  const Json::Value* v = it->second;
  if (hash == std::string::npos) return v;
  absl::string_view fragment = absl::string_view(uri).substr(hash + 1);
  if (fragment.empty()) return v;
  if (fragment[0] != '/') {
    errors.push_back(absl::StrCat(where, ": $ref \"", uri, "\": unsupported fragment"));
    return nullptr;
  }
  for (absl::string_view raw : absl::StrSplit(fragment.substr(1), '/')) {
    const std::string token = pointerToken(raw);
    if (v->isObject()) {
      v = v->find(token);
    } else if (v->isArray()) {
      size_t i = 0;
      v = absl::SimpleAtoi(token, &i) && i < v->items().size() ? &v->items()[i] : nullptr;
    } else {
      v = nullptr;
    }
    if (v == nullptr) {
      errors.push_back(absl::StrCat(where, ": $ref \"", uri, "\" points to nothing"));
      return nullptr;
    }
  }
  return v;
}

const Schema::Node* Schema::Impl::compile(const Json::Value& v, const std::string& base,
                                          const std::string& where) {
  auto it = compiled.find(&v);
  if (it != compiled.end()) return it->second;
  Node& n = nodes.emplace_back();
  compiled.emplace(&v, &n);
  if (!v.isObject()) {
    errors.push_back(absl::StrCat(where, ": a schema must be an object"));
    return &n;
  }
  std::string scope = base;
  if (const std::string* id = v.findString("id"); id != nullptr) scope = resolveUri(base, *id);
  auto err = [&](absl::string_view key, absl::string_view msg) {
    errors.push_back(absl::StrCat(where, "/", key, ": ", msg));
  };
  auto sub = [&](const Json::Value& s, absl::string_view key) {
    return compile(s, scope, absl::StrCat(where, "/", key));
  };
  auto number = [&](absl::string_view key, double* out) {
    const Json::Value* m = v.find(key);
    if (m == nullptr) return false;
    if (!m->isNumber()) {
      err(key, "must be a number");
      return false;
    }
    *out = numberOf(*m);
    return true;
  };
  auto count = [&](absl::string_view key, int64_t* out) {
    const Json::Value* m = v.find(key);
    if (m == nullptr) return;
    if (!m->isNumber() || !isIntegral(*m) || numberOf(*m) < 0) {
      err(key, "must be a non-negative integer");
      return;
    }
    *out = static_cast<int64_t>(numberOf(*m));
  };
  auto boolean = [&](absl::string_view key) {
    const Json::Value* m = v.find(key);
    if (m == nullptr) return false;
    if (!m->isBool()) {
      err(key, "must be a boolean");
      return false;
    }
    return m->boolValue();
  };
  auto schemaList = [&](absl::string_view key, std::vector<const Node*>& out) {
    const Json::Value* m = v.find(key);
    if (m == nullptr) return;
    if (!m->isArray() || m->items().empty()) {
      err(key, "must be a non-empty array of schemas");
      return;
    }
    for (size_t i = 0; i < m->items().size(); ++i) {
      out.push_back(sub(m->items()[i], absl::StrCat(key, "/", i)));
    }
  };

  if (const Json::Value* ref = v.find("$ref"); ref != nullptr && ref->isString()) {
    n.has_ref = true;
    const std::string uri = resolveUri(scope, ref->str());
    const Json::Value* target = resolve(uri, where + "/$ref");
    // The target's own references resolve against the document it is in.
    if (target != nullptr) {
      auto b = bases.find(target);
      n.ref =
          compile(*target, b != bases.end() ? b->second : withoutFragment(uri), where + "/$ref");
    }
    return &n;  // draft 4: $ref replaces the object it is in
  }
  if (const Json::Value* t = v.find("type"); t != nullptr) {
    auto one = [&](const Json::Value& name) {
      static constexpr uint8_t kAll[] = {kNull,   kBoolean, kObject, kArray,
                                         kNumber, kString,  kInteger};
      if (name.isString()) {
        for (uint8_t bit : kAll) {
          if (name.str() == typeName(bit)) {
            n.types |= bit;
            return;
          }
        }
      }
      err("type", absl::StrCat("unknown type ", name.toJson()));
    };
    if (t->isArray()) {
      for (const auto& name : t->items()) one(name);
    } else {
      one(*t);
    }
  }
  n.nullable = options.nullable_keyword && boolean("nullable");
  if (const Json::Value* e = v.find("enum"); e != nullptr) {
    if (!e->isArray() || e->items().empty()) {
      err("enum", "must be a non-empty array");
    } else {
      n.has_enum = true;
      for (const auto& item : e->items()) n.enum_values.push_back(&item);
    }
  }
  if (number("multipleOf", &n.multiple_of) && !(n.multiple_of > 0)) {
    err("multipleOf", "must be greater than 0");
  }
  n.has_maximum = number("maximum", &n.maximum);
  n.exclusive_maximum = boolean("exclusiveMaximum");
  n.has_minimum = number("minimum", &n.minimum);
  n.exclusive_minimum = boolean("exclusiveMinimum");
  count("maxLength", &n.max_length);
  count("minLength", &n.min_length);
  if (const Json::Value* p = v.find("pattern"); p != nullptr) {
    if (!p->isString()) {
      err("pattern", "must be a string");
    } else {
      RE2::Options o;
      o.set_log_errors(false);
      n.pattern = std::make_unique<RE2>(p->str(), o);
      n.pattern_text = p->str();
      if (!n.pattern->ok()) err("pattern", absl::StrCat("invalid regex: ", n.pattern->error()));
    }
  }
  if (const Json::Value* items = v.find("items"); items != nullptr) {
    if (items->isArray()) {
      n.tuple_items = true;
      for (size_t i = 0; i < items->items().size(); ++i) {
        n.tuple.push_back(sub(items->items()[i], absl::StrCat("items/", i)));
      }
    } else {
      n.items = sub(*items, "items");
    }
  }
  if (const Json::Value* a = v.find("additionalItems"); a != nullptr) {
    if (a->isBool()) {
      n.additional_items_allowed = a->boolValue();
    } else {
      n.additional_items = sub(*a, "additionalItems");
    }
  }
  count("maxItems", &n.max_items);
  count("minItems", &n.min_items);
  n.unique_items = boolean("uniqueItems");
  count("maxProperties", &n.max_properties);
  count("minProperties", &n.min_properties);
  if (const Json::Value* r = v.find("required"); r != nullptr) {
    if (!r->isArray()) {
      err("required", "must be an array of strings");
    } else {
      for (const auto& name : r->items()) {
        if (!name.isString()) {
          err("required", "must be an array of strings");
          break;
        }
        n.required.push_back(name.str());
      }
    }
  }
  if (const Json::Value* p = v.find("properties"); p != nullptr) {
    if (!p->isObject()) {
      err("properties", "must be an object");
    } else {
      for (const auto& m : p->members()) {
        n.properties.emplace_back(m.first, sub(m.second, absl::StrCat("properties/", m.first)));
      }
    }
  }
  if (const Json::Value* p = v.find("patternProperties"); p != nullptr) {
    if (!p->isObject()) {
      err("patternProperties", "must be an object");
    } else {
      for (const auto& m : p->members()) {
        RE2::Options o;
        o.set_log_errors(false);
        auto re = std::make_unique<RE2>(m.first, o);
        if (!re->ok()) err("patternProperties", absl::StrCat("invalid regex: ", re->error()));
        n.pattern_properties.emplace_back(std::move(re),
                                          sub(m.second, "patternProperties/" + m.first));
      }
    }
  }
  if (const Json::Value* a = v.find("additionalProperties"); a != nullptr) {
    if (a->isBool()) {
      n.additional_properties_allowed = a->boolValue();
    } else {
      n.additional_properties = sub(*a, "additionalProperties");
    }
  }
  if (const Json::Value* d = v.find("dependencies"); d != nullptr) {
    if (!d->isObject()) {
      err("dependencies", "must be an object");
    } else {
      for (const auto& m : d->members()) {
        if (m.second.isArray()) {
          std::vector<std::string> names;
          for (const auto& name : m.second.items()) {
            if (name.isString()) names.push_back(name.str());
          }
          n.property_dependencies.emplace_back(m.first, std::move(names));
        } else {
          n.schema_dependencies.emplace_back(m.first, sub(m.second, "dependencies/" + m.first));
        }
      }
    }
  }
  schemaList("allOf", n.all_of);
  schemaList("anyOf", n.any_of);
  schemaList("oneOf", n.one_of);
  if (const Json::Value* no = v.find("not"); no != nullptr) n.not_ = sub(*no, "not");
  if (const Json::Value* defs = v.find("definitions"); defs != nullptr && defs->isObject()) {
    for (const auto& m : defs->members()) sub(m.second, "definitions/" + m.first);
  }
  return &n;
}

namespace {

void fail(std::string* error, const std::string& path, absl::string_view message) {
  if (error != nullptr) *error = absl::StrCat(path.empty() ? "(root)" : path, ": ", message);
}

std::string numberText(double d) {
  if (std::floor(d) == d && std::fabs(d) < 1e15) return absl::StrCat(static_cast<int64_t>(d));
  return absl::StrCat(d);
}

}  // namespace

// Checks `v` against `n`, appending to and restoring `path` as it descends; the first error
// only (a request gets one clear reason).
bool Schema::Impl::check(const Node& node, const Json::Value& v, std::string& path,
                         std::string* error) const {
  const Node* np = &node;
  for (int hops = 0; np->has_ref; ++hops) {
    if (np->ref == nullptr || hops > 64) return true;  // refused at compile time
    np = np->ref;
  }
  const Node& n = *np;
  const uint8_t t = typeOf(v);
  if (n.types != 0 && (n.types & t) == 0 && !(n.nullable && t == kNull)) {
    std::string want;
    for (uint8_t bit = 1; bit != 0 && bit <= kInteger; bit <<= 1) {
      if (n.types & bit) absl::StrAppend(&want, want.empty() ? "" : " or ", typeName(bit));
    }
    const bool vowel = want[0] == 'a' || want[0] == 'i' || want[0] == 'o';
    fail(error, path, absl::StrCat("must be ", vowel ? "an " : "a ", want));
    return false;
  }
  if (n.has_enum) {
    bool found = false;
    for (const Json::Value* e : n.enum_values) found = found || jsonEquals(*e, v);
    if (!found && !(n.nullable && t == kNull)) {
      fail(error, path, "must be one of the allowed values");
      return false;
    }
  }
  if (t & kNumber) {
    const double d = numberOf(v);
    if (n.multiple_of > 0) {
      const double q = d / n.multiple_of;
      if (!std::isfinite(q) || std::fabs(q - std::round(q)) > 1e-9 * std::max(1.0, std::fabs(q))) {
        fail(error, path, absl::StrCat("must be a multiple of ", numberText(n.multiple_of)));
        return false;
      }
    }
    if (n.has_maximum && (n.exclusive_maximum ? d >= n.maximum : d > n.maximum)) {
      fail(error, path,
           absl::StrCat("must be ", n.exclusive_maximum ? "< " : "<= ", numberText(n.maximum)));
      return false;
    }
    if (n.has_minimum && (n.exclusive_minimum ? d <= n.minimum : d < n.minimum)) {
      fail(error, path,
           absl::StrCat("must be ", n.exclusive_minimum ? "> " : ">= ", numberText(n.minimum)));
      return false;
    }
  }
  if (t == kString) {
    const size_t len = codePoints(v.str());
    if (n.max_length >= 0 && len > static_cast<size_t>(n.max_length)) {
      fail(error, path, absl::StrCat("must be at most ", n.max_length, " characters long"));
      return false;
    }
    if (len < static_cast<size_t>(n.min_length)) {
      fail(error, path, absl::StrCat("must be at least ", n.min_length, " characters long"));
      return false;
    }
    if (n.pattern != nullptr && n.pattern->ok() && !RE2::PartialMatch(v.str(), *n.pattern)) {
      fail(error, path, absl::StrCat("must match the pattern ", n.pattern_text));
      return false;
    }
  }
  if (t == kArray) {
    const auto& items = v.items();
    if (n.max_items >= 0 && items.size() > static_cast<size_t>(n.max_items)) {
      fail(error, path, absl::StrCat("must have at most ", n.max_items, " items"));
      return false;
    }
    if (items.size() < static_cast<size_t>(n.min_items)) {
      fail(error, path, absl::StrCat("must have at least ", n.min_items, " items"));
      return false;
    }
    const size_t base = path.size();
    for (size_t i = 0; i < items.size(); ++i) {
      const Node* s = nullptr;
      if (!n.tuple_items) {
        s = n.items;
      } else if (i < n.tuple.size()) {
        s = n.tuple[i];
      } else if (!n.additional_items_allowed) {
        fail(error, path, absl::StrCat("must have at most ", n.tuple.size(), " items"));
        return false;
      } else {
        s = n.additional_items;
      }
      if (s == nullptr) continue;
      absl::StrAppend(&path, "[", i, "]");
      const bool ok = check(*s, items[i], path, error);
      path.resize(base);
      if (!ok) return false;
    }
    if (n.unique_items) {
      for (size_t i = 0; i < items.size(); ++i) {
        for (size_t j = i + 1; j < items.size(); ++j) {
          if (jsonEquals(items[i], items[j])) {
            fail(error, path, absl::StrCat("items ", i, " and ", j, " must not be equal"));
            return false;
          }
        }
      }
    }
  }
  if (t == kObject) {
    const auto& members = v.members();
    if (n.max_properties >= 0 && members.size() > static_cast<size_t>(n.max_properties)) {
      fail(error, path, absl::StrCat("must have at most ", n.max_properties, " properties"));
      return false;
    }
    if (members.size() < static_cast<size_t>(n.min_properties)) {
      fail(error, path, absl::StrCat("must have at least ", n.min_properties, " properties"));
      return false;
    }
    for (const std::string& name : n.required) {
      if (v.find(name) == nullptr) {
        fail(error, path, absl::StrCat("missing required property \"", name, "\""));
        return false;
      }
    }
    const size_t base = path.size();
    for (const auto& [name, value] : members) {
      auto descend = [&](const Node& s) {
        absl::StrAppend(&path, path.empty() ? "" : ".", name);
        const bool ok = check(s, value, path, error);
        path.resize(base);
        return ok;
      };
      bool matched = false;
      for (const auto& [prop, s] : n.properties) {
        if (prop == name) {
          matched = true;
          if (!descend(*s)) return false;
        }
      }
      for (const auto& [re, s] : n.pattern_properties) {
        if (re->ok() && RE2::PartialMatch(name, *re)) {
          matched = true;
          if (!descend(*s)) return false;
        }
      }
      if (!matched) {
        if (!n.additional_properties_allowed) {
          fail(error, path, absl::StrCat("property \"", name, "\" is not allowed"));
          return false;
        }
        if (n.additional_properties != nullptr && !descend(*n.additional_properties)) {
          return false;
        }
      }
    }
    for (const auto& [prop, needs] : n.property_dependencies) {
      if (v.find(prop) == nullptr) continue;
      for (const std::string& need : needs) {
        if (v.find(need) == nullptr) {
          fail(error, path, absl::StrCat("property \"", prop, "\" requires \"", need, "\""));
          return false;
        }
      }
    }
    for (const auto& [prop, s] : n.schema_dependencies) {
      if (v.find(prop) != nullptr && !check(*s, v, path, error)) return false;
    }
  }
  for (const Node* s : n.all_of) {
    if (!check(*s, v, path, error)) return false;
  }
  if (!n.any_of.empty()) {
    bool any = false;
    for (const Node* s : n.any_of) any = any || check(*s, v, path, nullptr);
    if (!any) {
      fail(error, path, "must match at least one of the anyOf schemas");
      return false;
    }
  }
  if (!n.one_of.empty()) {
    int matches = 0;
    for (const Node* s : n.one_of) matches += check(*s, v, path, nullptr) ? 1 : 0;
    if (matches != 1) {
      fail(error, path,
           matches == 0 ? "must match one of the oneOf schemas"
                        : "must match exactly one of the oneOf schemas, not several");
      return false;
    }
  }
  if (n.not_ != nullptr && check(*n.not_, v, path, nullptr)) {
    fail(error, path, "must not match the `not` schema");
    return false;
  }
  return true;
}

Schema::Schema() : impl_(std::make_unique<Impl>()) {}
Schema::~Schema() = default;

absl::StatusOr<std::shared_ptr<const Schema>> Schema::compile(const Json::Value& schema,
                                                              const Options& options) {
  std::shared_ptr<Schema> s(new Schema());
  Impl& impl = *s->impl_;
  impl.document = schema;
  impl.options = options;
  for (const auto& [uri, doc] : options.documents) {
    const Json::Value& d = impl.others.emplace_back(doc);
    impl.ids.emplace(withoutFragment(uri), &d);
    impl.registerIds(d, uri);
  }
  impl.options.documents.clear();
  // The document itself is "" (and its id, if it has one).
  impl.ids.emplace("", &impl.document);
  impl.registerIds(impl.document, "");
  impl.compile(impl.document, "", "#");
  if (!impl.errors.empty()) {
    return absl::InvalidArgumentError(absl::StrJoin(impl.errors, "; "));
  }
  return std::shared_ptr<const Schema>(std::move(s));
}

bool Schema::validate(const Json::Value& instance, std::string* error,
                      absl::string_view root) const {
  std::string path(root);
  auto it = impl_->compiled.find(&impl_->document);
  return impl_->check(*it->second, instance, path, error);
}

}  // namespace RequestValidator
}  // namespace Extensions
}  // namespace sluice
