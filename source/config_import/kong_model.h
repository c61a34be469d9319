#pragma once

// The Kong importer's internal model: the entities of a Kong declarative file, read and
// cross-referenced (kong.cc), and the conversion of each plugin's config (kong_plugins.cc).
// Not a public interface: used by kong.cc and kong_plugins.cc only.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "google/protobuf/struct.pb.h"
#include "sluice/config/v1/bootstrap.pb.h"
#include "source/config_import/document.h"
#include "source/config_import/import.h"

namespace sluice {
namespace ConfigImport {
namespace Kong {

struct Service {
  std::string name;  // name, else id, else "service<N>"
  std::string id;
  std::string path;  // document path ("services[0]")
  int line = 0;
  std::string protocol = "http";
  std::string host;
  uint32_t port = 80;
  std::string base = "/";  // Kong's service.path (the upstream base path)
  int64_t retries = 5;
  int64_t connect_timeout = 60000;
  int64_t read_timeout = 60000;
  int64_t write_timeout = 60000;
  bool enabled = true;
  std::optional<bool> tls_verify;
  bool ok = true;
  std::string cluster;  // Sluice cluster name (set when converted)
  // The Host Kong sends upstream without preserve_host (set when converted).
  std::string upstream_host;
};

struct Route {
  std::string name;
  std::string id;
  std::string path;
  int line = 0;
  int service = -1;
  // Paths as Kong matches them: a leading "~" marks a regex (after the pre-3.0 migration).
  std::vector<std::string> paths;
  std::vector<std::string> path_paths;  // document path of each
  std::vector<int> path_lines;
  std::vector<std::string> hosts;
  std::vector<std::string> methods;
  std::vector<std::pair<std::string, std::vector<std::string>>> headers;
  bool strip_path = true;
  bool preserve_host = false;
  int64_t regex_priority = 0;
  bool http = true;  // protocols has http (else https only)
  int64_t https_redirect_status_code = 426;
  bool grpc = false;
  bool ok = true;
  size_t order = 0;  // file order
};

struct Consumer {
  std::string username;  // username, else custom_id
  std::string id;
  std::string custom_id;
  std::string path;
  int line = 0;
  sluice::config::v1::Consumer proto;  // username, credentials, groups
  std::vector<int> key_lines;          // line of each keyauth credential
  std::vector<int> jwt_lines;
  std::vector<std::string> key_paths;
  std::vector<std::string> jwt_paths;
};

struct Target {
  std::string host;
  uint32_t port = 8000;
  uint32_t weight = 100;
  std::string path;
  int line = 0;
};

struct Upstream {
  std::string name;
  std::string id;
  std::string path;
  int line = 0;
  const Node* node = nullptr;
  std::vector<Target> targets;
  bool used = false;
};

struct Plugin {
  std::string name;
  std::string path;
  int line = 0;
  const Node* node = nullptr;
  const Node* config = nullptr;  // may be null (all defaults)
  std::string config_path;
  int service = -1;
  int route = -1;
  int consumer = -1;
  bool enabled = true;
  bool ok = true;
  // "global", "service web", "route users", "consumer alice", ...
  std::string scope() const;
  // A name for resources made from it ("web.rate-limiting").
  std::string label;
};

// What one plugin became. Filled by convertPlugin(); `ok` false when it was refused.
struct PluginResult {
  bool ok = false;
  // The Sluice filter it configures ("cors", "rate_limit", ...); empty for plugins that
  // configure something else (prometheus -> listener metrics, request-size-limiting ->
  // listener limits, canary -> the route action, auth plugins -> an AuthPolicy).
  std::string filter;
  google::protobuf::Struct config;
  // rate-limiting: the policy made from it.
  std::string rate_limit_policy;
  // key-auth / jwt / oauth2: their part of an AuthPolicy.
  sluice::config::v1::AuthPolicy auth;
  bool auth_anonymous = false;
  // correlation-id: the header to set from the request id (empty: Sluice's own x-request-id).
  std::string correlation_header;
  // prometheus
  bool per_consumer = false;
  // request-size-limiting
  uint64_t max_body_bytes = 0;
  // canary
  struct Canary {
    std::string cluster;  // the canary cluster (made by the plugin's conversion)
    uint32_t percentage = 0;
    sluice::config::v1::WeightedClusters::HashOn hash_on =
        sluice::config::v1::WeightedClusters::RANDOM;
    std::string hash_key;
    std::string canary_header;
  };
  std::optional<Canary> canary;
};

struct Model {
  std::vector<Service> services;
  std::vector<Route> routes;
  std::vector<Consumer> consumers;
  std::vector<Upstream> upstreams;
  std::vector<Plugin> plugins;
  std::vector<PluginResult> results;  // by plugin index
  bool any_cors = false;
};

// Converts plugin `index` of `model` (its config checked field by field against Kong's schema)
// into `model.results[index]`; may add resources (rate-limit policies, canary clusters) to
// `out`.
void convertPlugin(Model& model, size_t index, const Options& options,
                   sluice::config::v1::StaticResources& out, Diagnostics& diags);

// Helpers shared by kong.cc and kong_plugins.cc.
bool checkKongFields(const Node& node, const std::string& path,
                     const std::vector<absl::string_view>& known, Diagnostics& diags);
bool isIpAddress(absl::string_view host);
google::protobuf::Value stringValue(const std::string& s);
google::protobuf::Value numberValue(double n);
google::protobuf::Value boolValue(bool b);
google::protobuf::Value listValue(const std::vector<std::string>& items);
void setMilliseconds(google::protobuf::Duration* d, int64_t ms);
// Kong's seconds (a number) as milliseconds: NaN and negatives are 0, and anything past 10^9 s
// is 10^12 ms (no overflow, whatever the file says; validation then judges the value).
int64_t secondsToMs(double seconds);
// "1500ms", "2s": a duration as Sluice's files write it.
std::string durationText(int64_t ms);

}  // namespace Kong
}  // namespace ConfigImport
}  // namespace sluice
