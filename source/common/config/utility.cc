#include "source/common/config/utility.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/json_util.h"
#include "re2/re2.h"
#include "source/common/common/json.h"
#include "yaml-cpp/yaml.h"

namespace sluice {
namespace Config {

namespace {
// Milliseconds, rounded up so a positive sub-millisecond value never becomes 0 ("disabled").
std::chrono::milliseconds roundUpMs(const google::protobuf::Duration& d) {
  return std::chrono::milliseconds(d.seconds() * 1000 + (d.nanos() + 999999) / 1000000);
}
}  // namespace

absl::StatusOr<std::chrono::milliseconds> durationMs(const google::protobuf::Duration& d,
                                                     const std::string& field) {
  if (d.seconds() < 0 || d.nanos() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": must not be negative"));
  }
  if (d.seconds() > 315576000000LL / 1000) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": too large"));
  }
  return roundUpMs(d);
}

std::chrono::milliseconds durationOr(bool has, const google::protobuf::Duration& d,
                                     std::chrono::milliseconds def) {
  if (!has) {
    return def;
  }
  return roundUpMs(d);
}

namespace {

// "250ms", "1.5s", "2m", "1h", "100us" -> the protobuf JSON form "0.250s". Anything else is
// left as is (the JSON parser then reports it against the field).
std::string normalizeDuration(const std::string& v) {
  static const std::pair<const char*, double> kUnits[] = {{"ns", 1e-9}, {"us", 1e-6}, {"ms", 1e-3},
                                                          {"s", 1},     {"m", 60},    {"h", 3600}};
  for (const auto& [suffix, scale] : kUnits) {
    if (!absl::EndsWith(v, suffix)) continue;
    std::string num = v.substr(0, v.size() - strlen(suffix));
    if (num.empty() || num.find_first_not_of("0123456789.") != std::string::npos) continue;
    // Integer arithmetic in nanoseconds keeps "0.1s" exact.
    size_t dot = num.find('.');
    std::string int_part = num.substr(0, dot);
    std::string frac_part = dot == std::string::npos ? "" : num.substr(dot + 1);
    if (frac_part.find('.') != std::string::npos || (int_part.empty() && frac_part.empty())) {
      return v;
    }
    const int64_t unit_ns = static_cast<int64_t>(scale * 1e9 + 0.5);
    uint64_t ip = 0;
    if (!int_part.empty() && !absl::SimpleAtoi(int_part, &ip)) return v;
    if (ip > 315576000000ULL) return v;
    __int128 total = static_cast<__int128>(ip) * unit_ns;
    __int128 frac_ns = 0, denom = 1;
    for (char c : frac_part.substr(0, 9)) {
      frac_ns = frac_ns * 10 + (c - '0');
      denom *= 10;
    }
    total += frac_ns * unit_ns / denom;
    const int64_t secs = static_cast<int64_t>(total / 1000000000);
    const int64_t nanos = static_cast<int64_t>(total % 1000000000);
    return nanos == 0 ? absl::StrCat(secs, "s")
                      : absl::StrCat(secs, ".", absl::StrFormat("%09d", nanos), "s");
  }
  return v;
}

absl::Status toJson(const YAML::Node& node, std::string& out, int depth,
                    const google::protobuf::Descriptor* type);

// The message type a map key leads to (nullptr: not a message field / unknown).
const google::protobuf::FieldDescriptor* findField(const google::protobuf::Descriptor* type,
                                                   const std::string& key) {
  if (type == nullptr) return nullptr;
  const google::protobuf::FieldDescriptor* f = type->FindFieldByName(key);
  if (f == nullptr) f = type->FindFieldByCamelcaseName(key);
  return f;
}

bool isDuration(const google::protobuf::FieldDescriptor* f) {
  return f != nullptr && f->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE &&
         f->message_type()->full_name() == "google.protobuf.Duration";
}

absl::Status toJson(const YAML::Node& node, std::string& out, int depth,
                    const google::protobuf::Descriptor* type) {
  if (depth > 64) {
    return absl::InvalidArgumentError("config nested too deeply");
  }
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      out += "null";
      return absl::OkStatus();
    case YAML::NodeType::Scalar: {
      const std::string& v = node.Scalar();
      if (node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str") {
        Json::appendString(out, v);  // quoted in the source: always a string
        return absl::OkStatus();
      }
      if (v == "true" || v == "false") {
        out += v;
      } else if (v == "null" || v == "~") {
        out += "null";
      } else {
        int64_t i;
        double d;
        static const LazyRE2 kFloat = {
            R"(-?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][-+]?\d+|\.\d+[eE][-+]?\d+))"};
        if (absl::SimpleAtoi(v, &i) && v.find_first_of("+") == std::string::npos &&
            !(v.size() > 1 && v[0] == '0') && !(v.size() > 2 && v[0] == '-' && v[1] == '0')) {
          out += v;
        } else if (RE2::FullMatch(v, *kFloat) && absl::SimpleAtod(v, &d) && std::isfinite(d)) {
          // YAML floats such as ".5" or "5." are not JSON numbers: re-print them.
          out += absl::StrFormat("%.17g", d);
        } else {
          Json::appendString(out, v);
        }
      }
      return absl::OkStatus();
    }
    case YAML::NodeType::Sequence: {
      out += '[';
      bool first = true;
      for (const auto& item : node) {
        if (!first) out += ',';
        first = false;
        auto s = toJson(item, out, depth + 1, type);
        if (!s.ok()) return s;
      }
      out += ']';
      return absl::OkStatus();
    }
    case YAML::NodeType::Map: {
      out += '{';
      bool first = true;
      for (const auto& kv : node) {
        if (!first) out += ',';
        first = false;
        if (!kv.first.IsScalar()) {
          return absl::InvalidArgumentError("map keys must be strings");
        }
        Json::appendString(out, kv.first.Scalar());
        out += ':';
        const google::protobuf::FieldDescriptor* f = findField(type, kv.first.Scalar());
        if (isDuration(f) && kv.second.IsScalar()) {
          Json::appendString(out, normalizeDuration(kv.second.Scalar()));
          continue;
        }
        const google::protobuf::Descriptor* sub =
            f != nullptr && f->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE &&
                    f->message_type()->full_name() != "google.protobuf.Struct"
                ? f->message_type()
                : nullptr;
        auto s = toJson(kv.second, out, depth + 1, sub);
        if (!s.ok()) return s;
      }
      out += '}';
      return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> yamlToJson(const std::string& text,
                                       const google::protobuf::Descriptor* type) {
  try {
    YAML::Node root = YAML::Load(text);
    std::string out;
    auto s = toJson(root, out, 0, type);
    if (!s.ok()) return s;
    return out;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("invalid YAML: ", e.what()));
  }
}

absl::Status loadFromYaml(const std::string& text, google::protobuf::Message& message) {
  // Fast path for JSON (what tools and the control plane write): protobuf's own parser is
  // ~30x faster than going through yaml-cpp, which matters for 10,000-route configs. Anything it
  // refuses ("250ms" durations, YAML) takes the YAML path below, whose errors name the field.
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '{') {
    std::unique_ptr<google::protobuf::Message> scratch(message.New());
    google::protobuf::util::JsonParseOptions fast;
    fast.ignore_unknown_fields = false;
    if (google::protobuf::util::JsonStringToMessage(text, scratch.get(), fast).ok()) {
      message.GetReflection()->Swap(&message, scratch.get());
      return absl::OkStatus();
    }
  }
  auto json = yamlToJson(text, message.GetDescriptor());
  if (!json.ok()) {
    return json.status();
  }
  if (*json == "null") {
    *json = "{}";
  }
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(*json, &message, opts);
  if (!status.ok()) {
    return absl::InvalidArgumentError(std::string(status.message()));
  }
  return absl::OkStatus();
}

absl::Status loadFromFile(const std::string& path, google::protobuf::Message& message) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read config file ", path));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return loadFromYaml(ss.str(), message);
}

std::string toJson(const google::protobuf::Message& message, bool pretty) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.add_whitespace = pretty;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out, opts);
  return out;
}

}  // namespace Config
}  // namespace sluice
