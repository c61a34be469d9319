#include "source/common/config/redact.h"

#include <openssl/sha.h>

#include <memory>
#include <type_traits>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/struct.pb.h"
#include "sluice/config/v1/options.pb.h"
#include "source/common/config/utility.h"

namespace sluice {
namespace Config {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

constexpr absl::string_view kRedactedPrefix = "[redacted sha256:";

absl::Mutex cache_mu;
absl::flat_hash_map<const Descriptor*, bool>& cache() ABSL_EXCLUSIVE_LOCKS_REQUIRED(cache_mu) {
  static auto* c = new absl::flat_hash_map<const Descriptor*, bool>();
  return *c;
}

// Every message type reachable from `root` (itself included) gets its answer in the cache: a
// fixed point over the reachable types, so recursive types (google.protobuf.Value) are right.
void computeReachable(const Descriptor& root) ABSL_EXCLUSIVE_LOCKS_REQUIRED(cache_mu) {
  std::vector<const Descriptor*> types{&root};
  absl::flat_hash_set<const Descriptor*> seen{&root};
  for (size_t i = 0; i < types.size(); ++i) {
    for (int f = 0; f < types[i]->field_count(); ++f) {
      const Descriptor* nested = types[i]->field(f)->message_type();
      if (nested != nullptr && seen.insert(nested).second) {
        types.push_back(nested);
      }
    }
  }
  absl::flat_hash_map<const Descriptor*, bool> holds;
  for (const Descriptor* t : types) {
    auto known = cache().find(t);
    holds[t] = known != cache().end() && known->second;
    for (int f = 0; f < t->field_count() && !holds[t]; ++f) {
      holds[t] = isSensitive(*t->field(f));
    }
  }
  for (bool changed = true; changed;) {
    changed = false;
    for (const Descriptor* t : types) {
      for (int f = 0; f < t->field_count() && !holds[t]; ++f) {
        const Descriptor* nested = t->field(f)->message_type();
        if (nested != nullptr && holds[nested]) {
          holds[t] = changed = true;
        }
      }
    }
  }
  for (const auto& [t, h] : holds) {
    cache()[t] = h;
  }
}

// Shared by the const and the mutable walk: Msg is `const Message` or `Message`; fn gets the
// value as `const std::string&` or `std::string&` (then stored back).
template <class Msg, class Fn>
absl::Status walk(Msg& message, const std::string& prefix, const Fn& fn) {
  constexpr bool kMutable = !std::is_const_v<Msg>;
  if (!mayHoldSensitive(*message.GetDescriptor())) {
    return absl::OkStatus();
  }
  const Reflection& refl = *message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  refl.ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    const std::string path =
        prefix.empty() ? field->name() : absl::StrCat(prefix, ".", field->name());
    const bool repeated = field->is_repeated();
    const int count = repeated ? refl.FieldSize(message, field) : 1;
    auto at = [&](int i) { return repeated ? absl::StrCat(path, "[", i, "]") : path; };
    absl::Status s;
    if (field->message_type() != nullptr) {
      if (!mayHoldSensitive(*field->message_type())) {
        continue;
      }
      for (int i = 0; i < count && s.ok(); ++i) {
        if constexpr (kMutable) {
          s = walk(repeated ? *refl.MutableRepeatedMessage(&message, field, i)
                            : *refl.MutableMessage(&message, field),
                   at(i), fn);
        } else {
          s = walk(repeated ? refl.GetRepeatedMessage(message, field, i)
                            : refl.GetMessage(message, field),
                   at(i), fn);
        }
      }
    } else if (isSensitive(*field) && field->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      for (int i = 0; i < count && s.ok(); ++i) {
        std::string value =
            repeated ? refl.GetRepeatedString(message, field, i) : refl.GetString(message, field);
        if (value.empty()) {
          continue;
        }
        s = fn(at(i), value);
        if constexpr (kMutable) {
          if (s.ok() && repeated) {
            refl.SetRepeatedString(&message, field, i, std::move(value));
          } else if (s.ok()) {
            refl.SetString(&message, field, std::move(value));
          }
        }
      }
    }
    if (!s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

// Filter configs are google.protobuf.Struct: untyped, so no field there carries the sensitive
// mark. What prints config redacts in them what is a secret by its name: a string under a key
// that says so (password, secret, token, authorization, cookie, api key), every value of a
// `headers` map (http_log's headers carry the log endpoint's credentials), and the password of
// a URL's user info ("https://user:pass@host" -> "https://user:[redacted ...]@host").
bool secretKey(absl::string_view key) {
  const std::string k = absl::AsciiStrToLower(key);
  for (absl::string_view word : {"password", "passwd", "secret", "token", "authorization", "cookie",
                                 "api-key", "api_key", "apikey", "private_key"}) {
    if (absl::StrContains(k, word)) return true;
  }
  return false;
}

// The password of a URL's user info replaced; false when there is none.
bool redactUrlPassword(std::string& value) {
  const size_t scheme = value.find("://");
  if (scheme == std::string::npos) return false;
  const size_t start = scheme + 3;
  const size_t end = value.find_first_of("/?#", start);
  const size_t at = value.rfind('@', end == std::string::npos ? value.size() : end);
  if (at == std::string::npos || at < start) return false;
  const size_t colon = value.find(':', start);
  if (colon == std::string::npos || colon > at) return false;
  if (absl::StartsWith(absl::string_view(value).substr(colon + 1), kRedactedPrefix)) return false;
  value = absl::StrCat(value.substr(0, colon + 1),
                       redactedValue(value.substr(colon + 1, at - colon - 1)), value.substr(at));
  return true;
}

void redactValue(google::protobuf::Value& value, bool secret);

void redactStruct(google::protobuf::Struct& s, bool all_secret) {
  for (auto& [key, value] : *s.mutable_fields()) {
    const bool headers = absl::AsciiStrToLower(key) == "headers" && value.has_struct_value();
    if (headers) {
      redactStruct(*value.mutable_struct_value(), true);
    } else {
      redactValue(value, all_secret || secretKey(key));
    }
  }
}

void redactValue(google::protobuf::Value& value, bool secret) {
  switch (value.kind_case()) {
    case google::protobuf::Value::kStringValue:
      if (secret && !value.string_value().empty() &&
          !absl::StartsWith(value.string_value(), kRedactedPrefix)) {
        value.set_string_value(redactedValue(value.string_value()));
      } else if (!secret) {
        redactUrlPassword(*value.mutable_string_value());
      }
      break;
    case google::protobuf::Value::kStructValue:
      redactStruct(*value.mutable_struct_value(), false);
      break;
    case google::protobuf::Value::kListValue:
      for (auto& item : *value.mutable_list_value()->mutable_values()) {
        redactValue(item, secret);
      }
      break;
    default:
      break;
  }
}

// Messages of this type can hold a google.protobuf.Struct (a filter config), directly or in a
// nested message. Computed once per type.
bool mayHoldStruct(const Descriptor& type) {
  static absl::Mutex mu;
  static auto* known = new absl::flat_hash_map<const Descriptor*, bool>();
  {
    absl::ReaderMutexLock lock(&mu);
    auto it = known->find(&type);
    if (it != known->end()) return it->second;
  }
  std::vector<const Descriptor*> types{&type};
  absl::flat_hash_set<const Descriptor*> seen{&type};
  bool holds = false;
  for (size_t i = 0; i < types.size() && !holds; ++i) {
    holds = types[i] == google::protobuf::Struct::descriptor();
    for (int f = 0; f < types[i]->field_count(); ++f) {
      const Descriptor* nested = types[i]->field(f)->message_type();
      if (nested != nullptr && seen.insert(nested).second) types.push_back(nested);
    }
  }
  absl::MutexLock lock(&mu);
  (*known)[&type] = holds;
  return holds;
}

// Calls `fn` on every google.protobuf.Struct in `message` (recursively). Msg is `const
// Message` or `Message` (then `fn` may change the Struct), as in walk().
template <class Msg, class Fn>
void forEachStruct(Msg& message, const Fn& fn) {
  using Struct = std::conditional_t<std::is_const_v<Msg>, const google::protobuf::Struct,
                                    google::protobuf::Struct>;
  if (auto* s = dynamic_cast<Struct*>(&message)) {
    fn(*s);
    return;
  }
  const Reflection& refl = *message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  refl.ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    if (field->message_type() == nullptr || !mayHoldStruct(*field->message_type())) continue;
    const bool repeated = field->is_repeated();
    const int count = repeated ? refl.FieldSize(message, field) : 1;
    for (int i = 0; i < count; ++i) {
      if constexpr (std::is_const_v<Msg>) {
        forEachStruct(
            repeated ? refl.GetRepeatedMessage(message, field, i) : refl.GetMessage(message, field),
            fn);
      } else {
        forEachStruct(repeated ? *refl.MutableRepeatedMessage(&message, field, i)
                               : *refl.MutableMessage(&message, field),
                      fn);
      }
    }
  }
}

using StringFn = std::function<void(const std::string&, const std::string&)>;
void structStrings(const google::protobuf::Value& value, const std::string& path,
                   const StringFn& fn);

// Every string in a Struct, recursively, with its path below `path`.
void structStrings(const google::protobuf::Struct& s, const std::string& path, const StringFn& fn) {
  for (const auto& [key, v] : s.fields()) structStrings(v, absl::StrCat(path, ".", key), fn);
}

void structStrings(const google::protobuf::Value& value, const std::string& path,
                   const StringFn& fn) {
  switch (value.kind_case()) {
    case google::protobuf::Value::kStringValue:
      fn(path, value.string_value());
      break;
    case google::protobuf::Value::kStructValue:
      structStrings(value.struct_value(), path, fn);
      break;
    case google::protobuf::Value::kListValue:
      for (int i = 0; i < value.list_value().values_size(); ++i) {
        structStrings(value.list_value().values(i), absl::StrCat(path, "[", i, "]"), fn);
      }
      break;
    default:
      break;
  }
}

}  // namespace

bool isSensitive(const FieldDescriptor& field) {
  return field.options().GetExtension(sluice::config::v1::sensitive);
}

bool mayHoldSensitive(const Descriptor& type) {
  {
    absl::ReaderMutexLock lock(&cache_mu);
    auto it = cache().find(&type);
    if (it != cache().end()) {
      return it->second;
    }
  }
  absl::MutexLock lock(&cache_mu);
  computeReachable(type);
  return cache()[&type];
}

absl::Status forEachSensitive(Message& message, const SensitiveFn& fn) {
  return walk(message, "", fn);
}

absl::Status forEachSensitive(const Message& message, const SensitiveConstFn& fn) {
  return walk(message, "", fn);
}

std::string redactedValue(absl::string_view value) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(value.data()), value.size(), digest);
  return absl::StrCat(kRedactedPrefix,
                      absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(digest), 4)),
                      "]");
}

std::vector<std::string> redactedPlaceholders(const Message& message) {
  std::vector<std::string> errors;
  const std::string kMessage =
      ": is a redacted placeholder (as `sluicectl get` prints it), not a value: give the "
      "secret itself";
  (void)forEachSensitive(message, [&](const std::string& path, const std::string& value) {
    if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(value), kRedactedPrefix)) {
      errors.push_back(absl::StrCat(path, kMessage));
    }
    return absl::OkStatus();
  });
  // Filter configs: a placeholder anywhere in a string (a URL's password).
  if (mayHoldStruct(*message.GetDescriptor())) {
    forEachStruct(message, [&](const google::protobuf::Struct& s) {
      structStrings(s, "filter config", [&](const std::string& path, const std::string& v) {
        if (absl::StrContains(v, kRedactedPrefix)) {
          errors.push_back(absl::StrCat(path, kMessage));
        }
      });
    });
  }
  return errors;
}

void redact(Message& message) {
  (void)forEachSensitive(message, [](const std::string&, std::string& value) {
    value = redactedValue(value);
    return absl::OkStatus();
  });
  if (mayHoldStruct(*message.GetDescriptor())) {
    forEachStruct(message, [](google::protobuf::Struct& s) { redactStruct(s, false); });
  }
}

std::string toRedactedJson(const Message& message, bool pretty) {
  if (!mayHoldSensitive(*message.GetDescriptor()) && !mayHoldStruct(*message.GetDescriptor())) {
    return toJson(message, pretty);
  }
  std::unique_ptr<Message> copy(message.New());
  copy->CopyFrom(message);
  redact(*copy);
  return toJson(*copy, pretty);
}

}  // namespace Config
}  // namespace sluice
