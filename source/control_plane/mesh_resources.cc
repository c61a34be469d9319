#include "source/control_plane/mesh_resources.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

// HeaderMatcher's exact_match / prefix_match / safe_regex_match are deprecated in Envoy's API in
// favour of string_match, which gRPC 1.51's client does not read: the old fields are the ones
// both understand.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace sluice {
namespace ControlPlane {
namespace {

namespace v1 = sluice::config::v1;
namespace cluster_v3 = envoy::config::cluster::v3;
namespace core_v3 = envoy::config::core::v3;
namespace endpoint_v3 = envoy::config::endpoint::v3;
namespace listener_v3 = envoy::config::listener::v3;
namespace route_v3 = envoy::config::route::v3;
namespace hcm_v3 = envoy::extensions::filters::network::http_connection_manager::v3;
namespace router_v3 = envoy::extensions::filters::http::router::v3;

constexpr char kUrlPrefix[] = "type.googleapis.com/";
// gRPC's client refuses larger rings (and Envoy's API caps minimum_ring_size there).
constexpr uint64_t kMaxRingSize = 8388608;
// Sluice's route timeout when none is given (docs/configuration.md).
constexpr int64_t kDefaultRouteTimeoutSeconds = 15;

std::string encodeDeterministic(const google::protobuf::Message& message) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  return out;
}

google::protobuf::Duration seconds(int64_t s) {
  google::protobuf::Duration d;
  d.set_seconds(s);
  return d;
}

void setAds(core_v3::ConfigSource& source) {
  source.mutable_ads();
  source.set_resource_api_version(core_v3::V3);
}

// A domain gRPC's client accepts as a virtual-host pattern: exact, "*", "*suffix" or
// "prefix*" (XdsRouting::IsValidDomainPattern). Anything else would NACK the whole
// RouteConfiguration.
bool validDomainPattern(absl::string_view d) {
  if (d.empty()) {
    return false;
  }
  if (d == "*") {
    return true;
  }
  const size_t stars = std::count(d.begin(), d.end(), '*');
  if (stars == 0) {
    return true;
  }
  return stars == 1 && (d.front() == '*' || d.back() == '*');
}

class Translator {
 public:
  explicit Translator(const v1::StaticResources& declared) : declared_(declared) {
    for (const v1::Cluster& c : declared_.clusters()) {
      clusters_.emplace(c.name(), &c);
    }
    for (const v1::ClusterEndpoints& e : declared_.cluster_endpoints()) {
      endpoints_.emplace(e.cluster_name(), &e);
    }
  }

  void run() {
    for (const v1::Cluster& c : declared_.clusters()) {
      translateCluster(c);
    }
    // Targets: every exact domain of every virtual host, route tables in name order.
    std::vector<const v1::RouteTable*> tables;
    for (const v1::RouteTable& t : declared_.route_tables()) {
      tables.push_back(&t);
    }
    std::sort(tables.begin(), tables.end(), [](const v1::RouteTable* a, const v1::RouteTable* b) {
      return a->name() < b->name();
    });
    std::map<std::string, std::string> target_table;
    for (const v1::RouteTable* t : tables) {
      for (const v1::VirtualHost& vh : t->virtual_hosts()) {
        for (const std::string& domain : vh.domains()) {
          if (domain.find('*') != std::string::npos || domain.empty()) {
            continue;
          }
          const std::string target = absl::AsciiStrToLower(domain);
          auto [it, inserted] = target_table.emplace(target, t->name());
          if (!inserted && it->second != t->name()) {
            note(absl::StrCat("target \"", target, "\": also a domain of route table \"", t->name(),
                              "\"; route table \"", it->second, "\" serves it"));
          }
        }
      }
    }
    std::set<std::string> used_tables;
    for (const auto& [target, table] : target_table) {
      addListener(target, table);
      used_tables.insert(table);
    }
    for (const v1::RouteTable* t : tables) {
      if (used_tables.count(t->name()) != 0) {
        translateRouteTable(*t);
      }
    }
  }

  std::array<std::vector<std::pair<std::string, std::unique_ptr<google::protobuf::Message>>>,
             kMeshTypeCount>
      out;
  std::set<std::string> notes;

 private:
  void note(std::string line) { notes.insert(std::move(line)); }

  template <class M>
  void add(MeshType t, const std::string& name, std::unique_ptr<M> m) {
    out[meshIndex(t)].emplace_back(name, std::move(m));
  }

  static void addEndpoint(endpoint_v3::LocalityLbEndpoints& locality, const v1::Endpoint& ep) {
    auto* lb = locality.add_lb_endpoints();
    auto* sa = lb->mutable_endpoint()->mutable_address()->mutable_socket_address();
    // gRPC's client takes IP addresses only; "localhost" is what Sluice allows besides them.
    sa->set_address(absl::AsciiStrToLower(ep.address()) == "localhost" ? "127.0.0.1"
                                                                       : ep.address());
    sa->set_port_value(ep.port());
    lb->set_health_status(core_v3::HEALTHY);
    lb->mutable_load_balancing_weight()->set_value(ep.weight() == 0 ? 1 : ep.weight());
  }

  // Endpoints with unequal weights each get a locality weighted like the endpoint: gRPC 1.51's
  // round_robin ignores endpoint weights but weighted_target honours locality weights, so the
  // split is the one the weights ask for (ring_hash multiplies both, the same result).
  static void fillAssignment(endpoint_v3::ClusterLoadAssignment& cla,
                             const google::protobuf::RepeatedPtrField<v1::Endpoint>& endpoints) {
    bool equal = true;
    for (const v1::Endpoint& ep : endpoints) {
      equal = equal && std::max(ep.weight(), 1u) == std::max(endpoints[0].weight(), 1u);
    }
    if (endpoints.empty()) {
      return;
    }
    if (equal) {
      auto* locality = cla.add_endpoints();
      // gRPC's client requires the field, empty or not.
      locality->mutable_locality();
      locality->mutable_load_balancing_weight()->set_value(1);
      for (const v1::Endpoint& ep : endpoints) {
        addEndpoint(*locality, ep);
      }
      return;
    }
    for (const v1::Endpoint& ep : endpoints) {
      auto* locality = cla.add_endpoints();
      locality->mutable_locality()->set_sub_zone(absl::StrCat(ep.address(), ":", ep.port()));
      locality->mutable_load_balancing_weight()->set_value(std::max(ep.weight(), 1u));
      addEndpoint(*locality, ep);
    }
  }

  void translateCluster(const v1::Cluster& c) {
    const std::string& name = c.name();
    if (c.type() == v1::Cluster::STRICT_DNS) {
      note(absl::StrCat("cluster \"", name,
                        "\": not served (STRICT_DNS: gRPC's client resolves LOGICAL_DNS only)"));
      return;
    }
    if (c.has_tls()) {
      note(absl::StrCat("cluster \"", name,
                        "\": not served (upstream TLS needs xDS certificate providers, which "
                        "sluice-cp does not serve)"));
      return;
    }
    auto cluster = std::make_unique<cluster_v3::Cluster>();
    cluster->set_name(name);
    switch (c.lb_policy()) {
      case v1::Cluster::RING_HASH: {
        cluster->set_lb_policy(cluster_v3::Cluster::RING_HASH);
        auto* rh = cluster->mutable_ring_hash_lb_config();
        rh->set_hash_function(cluster_v3::Cluster::RingHashLbConfig::XX_HASH);
        const uint64_t size =
            c.ring_hash().minimum_ring_size() == 0 ? 1024 : c.ring_hash().minimum_ring_size();
        rh->mutable_minimum_ring_size()->set_value(std::min(size, kMaxRingSize));
        if (size > kMaxRingSize) {
          note(absl::StrCat("cluster \"", name, "\": minimum_ring_size capped at ", kMaxRingSize));
        }
        break;
      }
      case v1::Cluster::ROUND_ROBIN:
        cluster->set_lb_policy(cluster_v3::Cluster::ROUND_ROBIN);
        break;
      default:
        cluster->set_lb_policy(cluster_v3::Cluster::ROUND_ROBIN);
        note(absl::StrCat("cluster \"", name, "\": lb_policy ",
                          v1::Cluster::LbPolicy_Name(c.lb_policy()),
                          " served as ROUND_ROBIN (gRPC's client has no equivalent)"));
    }
    if (c.has_circuit_breakers()) {
      const v1::CircuitBreakers& cb = c.circuit_breakers();
      auto* th = cluster->mutable_circuit_breakers()->add_thresholds();
      th->set_priority(core_v3::DEFAULT);
      th->mutable_max_requests()->set_value(cb.has_max_requests() ? cb.max_requests() : 1024);
      if (cb.has_max_connections() || cb.has_max_pending_requests() || cb.has_max_retries() ||
          cb.has_retry_budget() || cb.has_max_queued_requests() || cb.has_queue_timeout()) {
        note(absl::StrCat("cluster \"", name,
                          "\": circuit_breakers: only max_requests applies to proxyless clients"));
      }
    }
    if (c.has_outlier_detection()) {
      // gRPC's outlier detection (gRFC A50) has no consecutive-error detectors: consecutive_5xx
      // (or consecutive_gateway_failure) N becomes failure-percentage ejection of endpoints
      // with at least N calls in an interval, half of them failed.
      const v1::OutlierDetection& od = c.outlier_detection();
      auto* out = cluster->mutable_outlier_detection();
      *out->mutable_interval() = od.has_interval() ? od.interval() : seconds(10);
      *out->mutable_base_ejection_time() =
          od.has_base_ejection_time() ? od.base_ejection_time() : seconds(30);
      *out->mutable_max_ejection_time() =
          od.has_max_ejection_time() ? od.max_ejection_time() : seconds(300);
      out->mutable_max_ejection_percent()->set_value(
          od.has_max_ejection_percent() ? od.max_ejection_percent() : 10);
      out->mutable_enforcing_success_rate()->set_value(0);
      const uint32_t consecutive = od.has_consecutive_5xx() ? od.consecutive_5xx() : 5;
      const uint32_t n = consecutive > 0 ? consecutive : od.consecutive_gateway_failure();
      if (n > 0) {
        out->mutable_enforcing_failure_percentage()->set_value(100);
        out->mutable_failure_percentage_threshold()->set_value(50);
        out->mutable_failure_percentage_minimum_hosts()->set_value(1);
        out->mutable_failure_percentage_request_volume()->set_value(n);
      }
      note(absl::StrCat("cluster \"", name,
                        "\": outlier_detection served as failure-percentage "
                        "ejection (50% of at least ",
                        n, " calls per interval)"));
    }
    if (c.has_health_check()) {
      note(absl::StrCat("cluster \"", name,
                        "\": health_check not run by proxyless clients (endpoints are HEALTHY)"));
    }
    auto cla = std::make_unique<endpoint_v3::ClusterLoadAssignment>();
    cla->set_cluster_name(name);
    if (c.type() == v1::Cluster::LOGICAL_DNS) {
      cluster->set_type(cluster_v3::Cluster::LOGICAL_DNS);
      fillAssignment(*cluster->mutable_load_assignment(), c.endpoints());
      cluster->mutable_load_assignment()->set_cluster_name(name);
      add(MeshType::Cluster, name, std::move(cluster));
      return;
    }
    cluster->set_type(cluster_v3::Cluster::EDS);
    setAds(*cluster->mutable_eds_cluster_config()->mutable_eds_config());
    cluster->mutable_eds_cluster_config()->set_service_name(name);
    if (c.eds()) {
      auto it = endpoints_.find(name);
      if (it != endpoints_.end()) {
        fillAssignment(*cla, it->second->endpoints());
      }
    } else {
      fillAssignment(*cla, c.endpoints());
    }
    add(MeshType::Cluster, name, std::move(cluster));
    add(MeshType::ClusterLoadAssignment, name, std::move(cla));
  }

  void addListener(const std::string& target, const std::string& table) {
    hcm_v3::HttpConnectionManager hcm;
    hcm.set_stat_prefix(target);
    hcm.mutable_rds()->set_route_config_name(table);
    setAds(*hcm.mutable_rds()->mutable_config_source());
    auto* router = hcm.add_http_filters();
    router->set_name("envoy.filters.http.router");
    router->mutable_typed_config()->PackFrom(router_v3::Router());
    auto listener = std::make_unique<listener_v3::Listener>();
    listener->set_name(target);
    listener->mutable_api_listener()->mutable_api_listener()->PackFrom(hcm);
    add(MeshType::Listener, target, std::move(listener));
  }

  void translateRouteTable(const v1::RouteTable& t) {
    auto rc = std::make_unique<route_v3::RouteConfiguration>();
    rc->set_name(t.name());
    for (const v1::VirtualHost& vh : t.virtual_hosts()) {
      const std::string where =
          absl::StrCat("route table \"", t.name(), "\" virtual host \"", vh.name(), "\"");
      route_v3::VirtualHost out;
      out.set_name(vh.name());
      for (const std::string& d : vh.domains()) {
        if (validDomainPattern(d)) {
          out.add_domains(absl::AsciiStrToLower(d));
        } else {
          note(absl::StrCat(where, ": domain \"", d, "\" left out (not a pattern gRPC accepts)"));
        }
      }
      if (!vh.filter_config().empty()) {
        note(absl::StrCat(where, ": filter_config not applied by proxyless clients"));
      }
      for (int i = 0; i < vh.routes_size(); ++i) {
        translateRoute(vh.routes(i),
                       absl::StrCat(where, " route \"",
                                    vh.routes(i).name().empty() ? absl::StrCat(vh.name(), "/", i)
                                                                : vh.routes(i).name(),
                                    "\""),
                       out);
      }
      if (out.domains().empty() || out.routes().empty()) {
        note(absl::StrCat(where, ": left out (", out.domains().empty() ? "no domain" : "no route",
                          " a proxyless client can use)"));
        continue;
      }
      *rc->add_virtual_hosts() = std::move(out);
    }
    add(MeshType::RouteConfiguration, t.name(), std::move(rc));
  }

  void addHashPolicies(const std::string& cluster, route_v3::RouteAction& action,
                       std::set<std::string>& seen, const std::string& where) {
    auto it = clusters_.find(cluster);
    if (it == clusters_.end() || it->second->lb_policy() != v1::Cluster::RING_HASH) {
      return;
    }
    const v1::RingHash& rh = it->second->ring_hash();
    if (rh.hash_on() == v1::RingHash::HEADER && !rh.header_name().empty()) {
      const std::string header = absl::AsciiStrToLower(rh.header_name());
      if (seen.insert("h:" + header).second) {
        action.add_hash_policy()->mutable_header()->set_header_name(header);
      }
    } else if (seen.insert("channel").second) {
      action.add_hash_policy()->mutable_filter_state()->set_key("io.grpc.channel_id");
      note(absl::StrCat(where,
                        ": ring hash on SOURCE_IP hashes per client channel "
                        "(io.grpc.channel_id)"));
    }
  }

  void translateRoute(const v1::Route& r, const std::string& where, route_v3::VirtualHost& vh) {
    const v1::RouteMatch& m = r.match();
    if (!m.query_parameters().empty()) {
      note(where + ": left out (query_parameters: gRPC calls have no query)");
      return;
    }
    if (!m.methods().empty() &&
        std::find(m.methods().begin(), m.methods().end(), "POST") == m.methods().end()) {
      note(where + ": left out (methods without POST never match a gRPC call)");
      return;
    }
    route_v3::Route out;
    out.set_name(r.name());
    auto* match = out.mutable_match();
    if (!m.path().empty()) {
      match->set_path(m.path());
    } else if (!m.regex().empty()) {
      match->mutable_safe_regex()->set_regex(m.regex());
    } else {
      match->set_prefix(m.prefix());
    }
    if (m.has_case_sensitive()) {
      match->mutable_case_sensitive()->set_value(m.case_sensitive());
    }
    for (const v1::HeaderMatcher& h : m.headers()) {
      auto* hm = match->add_headers();
      hm->set_name(absl::AsciiStrToLower(h.name()));
      if (!h.exact().empty()) {
        hm->set_exact_match(h.exact());
      } else if (!h.prefix().empty()) {
        hm->set_prefix_match(h.prefix());
      } else if (!h.regex().empty()) {
        hm->mutable_safe_regex_match()->set_regex(h.regex());
      } else {
        hm->set_present_match(true);
      }
      hm->set_invert_match(h.invert());
    }
    if (!r.auth().empty() || !r.rate_limit().empty() || !r.filter_config().empty()) {
      note(where + ": auth, rate_limit and filter_config not applied by proxyless clients");
    }
    if (r.has_direct_response() || r.has_redirect()) {
      // Kept so that routes after it match as they do at the edge; gRPC's client fails the
      // calls that match it (UNAVAILABLE).
      out.mutable_direct_response()->set_status(
          r.has_direct_response() ? r.direct_response().status() : 503);
      note(where + ": " + (r.has_direct_response() ? "direct_response" : "redirect") +
           ": calls matching it fail on proxyless clients");
      *vh.add_routes() = std::move(out);
      return;
    }
    const v1::RouteAction& a = r.route();
    auto* action = out.mutable_route();
    std::set<std::string> hash_seen;
    if (!a.cluster().empty()) {
      action->set_cluster(a.cluster());
      addHashPolicies(a.cluster(), *action, hash_seen, where);
    } else {
      const v1::WeightedClusters& wc = a.weighted_clusters();
      auto* w = action->mutable_weighted_clusters();
      uint32_t total = 0;
      for (const v1::WeightedCluster& c : wc.clusters()) {
        if (c.weight() == 0) {
          continue;
        }
        auto* cw = w->add_clusters();
        cw->set_name(c.name());
        cw->mutable_weight()->set_value(c.weight());
        total += c.weight();
        addHashPolicies(c.name(), *action, hash_seen, where);
      }
      // gRPC 1.51 takes total_weight as 100 when absent and NACKs any other sum.
      w->mutable_total_weight()->set_value(total);
      if (wc.hash_on() != v1::WeightedClusters::RANDOM || !wc.canary_header().empty()) {
        note(where +
             ": weighted_clusters hash_on and canary_header not applied (each call "
             "draws independently)");
      }
    }
    if (!a.prefix_rewrite().empty() || !a.host_rewrite().empty()) {
      note(where + ": prefix_rewrite and host_rewrite not applied by proxyless clients");
    }
    // gRFC A31: the client's deadline is capped by grpc_timeout_header_max when set, else by
    // max_stream_duration; 0 = no cap. Sluice's route timeout caps grpc-timeout by default.
    google::protobuf::Duration timeout;
    if (a.has_timeout()) {
      timeout = a.timeout();
    } else {
      timeout.set_seconds(kDefaultRouteTimeoutSeconds);
    }
    auto* msd = action->mutable_max_stream_duration();
    *msd->mutable_max_stream_duration() = timeout;
    *msd->mutable_grpc_timeout_header_max() =
        a.has_max_grpc_timeout() ? a.max_grpc_timeout() : timeout;
    if (a.has_retry_policy()) {
      translateRetry(a.retry_policy(), where, *action);
    }
    *vh.add_routes() = std::move(out);
  }

  void translateRetry(const v1::RetryPolicy& p, const std::string& where,
                      route_v3::RouteAction& action) {
    std::set<std::string> codes;
    std::vector<std::string> dropped;
    std::vector<std::string> retry_on(p.retry_on().begin(), p.retry_on().end());
    if (retry_on.empty()) {
      retry_on = {"connect-failure", "reset", "gateway-error"};
    }
    for (const std::string& on : retry_on) {
      if (on == "cancelled" || on == "deadline-exceeded" || on == "resource-exhausted" ||
          on == "unavailable") {
        codes.insert(on);
      } else if (on == "connect-failure" || on == "reset" || on == "gateway-error") {
        // What a proxyless client sees for these: the call fails UNAVAILABLE.
        codes.insert("unavailable");
      } else if (on == "5xx") {
        codes.insert("unavailable");
        codes.insert("internal");
      } else {
        dropped.push_back(on);
      }
    }
    if (!dropped.empty()) {
      note(absl::StrCat(where, ": retry_on ", absl::StrJoin(dropped, ", "),
                        " not applied by proxyless clients"));
    }
    const uint32_t retries = p.has_num_retries() ? p.num_retries() : 1;
    if (codes.empty() || retries == 0) {
      return;
    }
    if (p.has_per_try_timeout()) {
      note(where + ": retry per_try_timeout not applied by proxyless clients");
    }
    auto* rp = action.mutable_retry_policy();
    rp->set_retry_on(absl::StrJoin(codes, ","));
    rp->mutable_num_retries()->set_value(retries);
    auto* backoff = rp->mutable_retry_back_off();
    google::protobuf::Duration base;
    if (p.backoff().has_base_interval()) {
      base = p.backoff().base_interval();
    } else {
      base.set_nanos(25000000);
    }
    *backoff->mutable_base_interval() = base;
    if (p.backoff().has_max_interval()) {
      *backoff->mutable_max_interval() = p.backoff().max_interval();
    }
  }

  const v1::StaticResources& declared_;
  std::map<std::string, const v1::Cluster*> clusters_;
  std::map<std::string, const v1::ClusterEndpoints*> endpoints_;
};

}  // namespace

const std::array<MeshType, kMeshTypeCount>& allMeshTypes() {
  static const std::array<MeshType, kMeshTypeCount> kTypes = {
      MeshType::Cluster, MeshType::ClusterLoadAssignment, MeshType::Listener,
      MeshType::RouteConfiguration};
  return kTypes;
}

const std::string& meshTypeName(MeshType t) {
  static const std::array<std::string, kMeshTypeCount> kNames = {"Cluster", "ClusterLoadAssignment",
                                                                 "Listener", "RouteConfiguration"};
  return kNames[meshIndex(t)];
}

const std::string& meshTypeUrl(MeshType t) {
  static const std::array<std::string, kMeshTypeCount> kUrls = {
      absl::StrCat(kUrlPrefix, cluster_v3::Cluster::descriptor()->full_name()),
      absl::StrCat(kUrlPrefix, endpoint_v3::ClusterLoadAssignment::descriptor()->full_name()),
      absl::StrCat(kUrlPrefix, listener_v3::Listener::descriptor()->full_name()),
      absl::StrCat(kUrlPrefix, route_v3::RouteConfiguration::descriptor()->full_name())};
  return kUrls[meshIndex(t)];
}

std::optional<MeshType> meshTypeFromUrl(absl::string_view url) {
  for (MeshType t : allMeshTypes()) {
    if (meshTypeUrl(t) == url) {
      return t;
    }
  }
  return std::nullopt;
}

MeshSnapshotConstSharedPtr MeshSnapshot::create(GroupSnapshotConstSharedPtr group,
                                                const MeshSnapshot* previous) {
  auto snap = std::make_shared<MeshSnapshot>(PrivateTag{});
  Translator translator(group->declared());
  translator.run();
  for (MeshType t : allMeshTypes()) {
    MeshTypeSnapshot& ts = snap->types_[meshIndex(t)];
    for (auto& [name, message] : translator.out[meshIndex(t)]) {
      MeshResource r;
      r.name = name;
      r.any.set_type_url(meshTypeUrl(t));
      r.any.set_value(encodeDeterministic(*message));
      r.version = contentVersion(r.any.value());
      ts.resources.emplace(name, std::move(r));
    }
    std::string hash_input;
    for (const auto& [name, r] : ts.resources) {
      hash_input.append(name).push_back('\0');
      hash_input.append(r.version).push_back('\n');
    }
    ts.content_hash = contentVersion(hash_input);
    ts.version = previous != nullptr && previous->type(t).content_hash == ts.content_hash
                     ? previous->type(t).version
                     : group->version();
  }
  snap->notes_.assign(translator.notes.begin(), translator.notes.end());
  snap->group_ = std::move(group);
  return snap;
}

std::vector<std::string> MeshSnapshot::targets() const {
  std::vector<std::string> out;
  for (const auto& [name, r] : type(MeshType::Listener).resources) {
    out.push_back(name);
  }
  return out;
}

MeshSnapshotConstSharedPtr MeshCache::get(const GroupSnapshotConstSharedPtr& group) const {
  if (group == nullptr) {
    return nullptr;
  }
  absl::MutexLock lock(&mu_);
  auto it = latest_.find(group->group());
  if (it != latest_.end() && it->second->groupPtr() == group) {
    return it->second;
  }
  // Translated under the lock: once per published snapshot, not once per stream.
  auto snap = MeshSnapshot::create(group, it != latest_.end() ? it->second.get() : nullptr);
  if (it == latest_.end() || it->second->group().versionNumber() <= group->versionNumber()) {
    latest_[group->group()] = snap;
  }
  return snap;
}

}  // namespace ControlPlane
}  // namespace sluice
