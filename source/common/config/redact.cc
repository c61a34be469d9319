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
  (void)forEachSensitive(message, [&errors](const std::string& path, const std::string& value) {
    if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(value), kRedactedPrefix)) {
      errors.push_back(absl::StrCat(path,
                                    ": is a redacted placeholder (as `sluicectl get` prints "
                                    "it), not a value: give the PEM text"));
    }
    return absl::OkStatus();
  });
  return errors;
}

void redact(Message& message) {
  (void)forEachSensitive(message, [](const std::string&, std::string& value) {
    value = redactedValue(value);
    return absl::OkStatus();
  });
}

std::string toRedactedJson(const Message& message, bool pretty) {
  if (!mayHoldSensitive(*message.GetDescriptor())) {
    return toJson(message, pretty);
  }
  std::unique_ptr<Message> copy(message.New());
  copy->CopyFrom(message);
  redact(*copy);
  return toJson(*copy, pretty);
}

}  // namespace Config
}  // namespace sluice
