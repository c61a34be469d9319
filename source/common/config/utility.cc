#include "source/common/config/utility.h"

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "source/common/common/json.h"
#include "yaml-cpp/yaml.h"

namespace sluice {
namespace Config {

absl::StatusOr<std::chrono::milliseconds> durationMs(const google::protobuf::Duration& d,
                                                     const std::string& field) {
  if (d.seconds() < 0 || d.nanos() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": must not be negative"));
  }
  if (d.seconds() > 315576000000LL / 1000) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": too large"));
  }
  return std::chrono::milliseconds(d.seconds() * 1000 + d.nanos() / 1000000);
}

std::chrono::milliseconds durationOr(bool has, const google::protobuf::Duration& d,
                                     std::chrono::milliseconds def) {
  if (!has) {
    return def;
  }
  return std::chrono::milliseconds(d.seconds() * 1000 + d.nanos() / 1000000);
}

namespace {

absl::Status toJson(const YAML::Node& node, std::string& out, int depth) {
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
        if (absl::SimpleAtoi(v, &i) && v.find_first_of("+") == std::string::npos &&
            !(v.size() > 1 && v[0] == '0')) {
          out += v;
        } else if (v.find_first_not_of("0123456789.eE-") == std::string::npos &&
                   absl::SimpleAtod(v, &d) && v.find('.') != std::string::npos) {
          out += v;
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
        auto s = toJson(item, out, depth + 1);
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
        auto s = toJson(kv.second, out, depth + 1);
        if (!s.ok()) return s;
      }
      out += '}';
      return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> yamlToJson(const std::string& text) {
  try {
    YAML::Node root = YAML::Load(text);
    std::string out;
    auto s = toJson(root, out, 0);
    if (!s.ok()) return s;
    return out;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("invalid YAML: ", e.what()));
  }
}

absl::Status loadFromYaml(const std::string& text, google::protobuf::Message& message) {
  auto json = yamlToJson(text);
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
