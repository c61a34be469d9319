#include "source/common/router/config.h"

#include <algorithm>

#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "source/common/config/utility.h"

namespace sluice {
namespace Router {
namespace {

absl::string_view stripPort(absl::string_view host) {
  if (!host.empty() && host[0] == '[') {
    size_t close = host.find(']');
    return close == absl::string_view::npos ? host : host.substr(0, close + 1);
  }
  size_t colon = host.rfind(':');
  return colon == absl::string_view::npos ? host : host.substr(0, colon);
}

absl::StatusOr<std::unique_ptr<RE2>> compileRegex(const std::string& pattern,
                                                  const std::string& field) {
  RE2::Options opts;
  opts.set_log_errors(false);
  auto re = std::make_unique<RE2>(pattern, opts);
  if (!re->ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": invalid regex \"", pattern, "\": ", re->error()));
  }
  return re;
}

// Percent-decoding is not applied: routes match the path as sent, like Envoy's default.
absl::string_view queryValue(absl::string_view query, absl::string_view name, bool& found) {
  found = false;
  for (absl::string_view kv : absl::StrSplit(query, '&')) {
    size_t eq = kv.find('=');
    absl::string_view k = eq == absl::string_view::npos ? kv : kv.substr(0, eq);
    if (k == name) {
      found = true;
      return eq == absl::string_view::npos ? absl::string_view() : kv.substr(eq + 1);
    }
  }
  return {};
}

}  // namespace

bool HeaderMatch::matches(const Http::HeaderMap& headers) const {
  const Http::HeaderEntry* e = headers.find(name);
  bool result = false;
  if (e == nullptr) {
    result = false;
  } else {
    switch (kind) {
      case Kind::Exact:
        result = e->value == value;
        break;
      case Kind::Prefix:
        result = absl::StartsWith(e->value, value);
        break;
      case Kind::Regex:
        result = RE2::FullMatch(e->value, *regex);
        break;
      case Kind::Present:
        result = true;
        break;
    }
  }
  return result != invert;
}

bool QueryMatch::matches(absl::string_view query) const {
  bool found;
  absl::string_view v = queryValue(query, name, found);
  if (!found) {
    return false;
  }
  switch (kind) {
    case Kind::Exact:
      return v == value;
    case Kind::Regex:
      return RE2::FullMatch(re2::StringPiece(v.data(), v.size()), *regex);
    case Kind::Present:
      return true;
  }
  return false;
}

bool RouteEntry::matchesPath(absl::string_view path) const {
  switch (path_kind_) {
    case PathKind::Prefix:
      return case_sensitive_ ? absl::StartsWith(path, path_value_)
                             : absl::StartsWithIgnoreCase(path, path_value_);
    case PathKind::Exact:
      return case_sensitive_ ? path == path_value_ : absl::EqualsIgnoreCase(path, path_value_);
    case PathKind::Regex:
      return RE2::FullMatch(re2::StringPiece(path.data(), path.size()), *path_regex_);
  }
  return false;
}

bool RouteEntry::matchesRest(const Http::RequestHeaderMap& headers) const {
  if (!methods_.empty() &&
      std::find(methods_.begin(), methods_.end(), headers.method) == methods_.end()) {
    return false;
  }
  for (const HeaderMatch& h : headers_) {
    if (!h.matches(headers)) {
      return false;
    }
  }
  if (!query_.empty()) {
    absl::string_view q = headers.query();
    for (const QueryMatch& m : query_) {
      if (!m.matches(q)) {
        return false;
      }
    }
  }
  return true;
}

const std::string& RouteEntry::pickCluster(uint64_t random) const {
  if (type_ != ActionType::WeightedClusters) {
    return cluster_;
  }
  uint64_t point = random % total_weight_;
  for (const auto& [name, weight] : weighted_) {
    if (point < weight) {
      return name;
    }
    point -= weight;
  }
  return weighted_.back().first;
}

std::string RouteEntry::rewrittenPath(const Http::RequestHeaderMap& headers) const {
  if (prefix_rewrite_.empty()) {
    return {};
  }
  absl::string_view path = headers.path;
  if (path_kind_ == PathKind::Prefix) {
    return absl::StrCat(prefix_rewrite_, path.substr(std::min(path.size(), path_value_.size())));
  }
  // Exact and regex routes: the whole path is replaced, the query kept.
  absl::string_view q = headers.query();
  return q.empty() ? prefix_rewrite_ : absl::StrCat(prefix_rewrite_, "?", q);
}

std::string RouteEntry::redirectLocation(const Http::RequestHeaderMap& headers,
                                         absl::string_view scheme) const {
  const auto& r = redirect_;
  std::string out_scheme = r.scheme_redirect().empty() ? std::string(scheme) : r.scheme_redirect();
  absl::string_view host_header = headers.host();
  std::string host =
      r.host_redirect().empty() ? std::string(stripPort(host_header)) : r.host_redirect();
  std::string port;
  if (r.port_redirect() != 0) {
    port = absl::StrCat(":", r.port_redirect());
  } else if (r.host_redirect().empty() && r.scheme_redirect().empty()) {
    // Same scheme and host: keep the port the client used.
    absl::string_view h = host_header;
    absl::string_view stripped = stripPort(h);
    if (stripped.size() < h.size()) port = std::string(h.substr(stripped.size()));
  }
  std::string path;
  if (!r.path_redirect().empty()) {
    path = r.path_redirect();
  } else if (!r.prefix_rewrite().empty() && path_kind_ == PathKind::Prefix) {
    absl::string_view p = headers.pathOnly();
    path = absl::StrCat(r.prefix_rewrite(), p.substr(std::min(p.size(), path_value_.size())));
    if (!r.strip_query() && !headers.query().empty()) {
      absl::StrAppend(&path, "?", headers.query());
    }
  } else {
    path = r.strip_query() ? std::string(headers.pathOnly()) : headers.path;
  }
  if (r.strip_query() && !r.path_redirect().empty()) {
    size_t q = path.find('?');
    if (q != std::string::npos) path.resize(q);
  }
  return absl::StrCat(out_scheme, "://", host, port, path);
}

void VirtualHostImpl::buildIndex() {
  for (uint32_t i = 0; i < routes_.size(); ++i) {
    const RouteEntry& r = *routes_[i];
    if (!r.case_sensitive_ || r.path_kind_ == RouteEntry::PathKind::Regex) {
      always_.push_back(i);
    } else if (r.path_kind_ == RouteEntry::PathKind::Exact) {
      exact_[r.path_value_].push_back(i);
    } else {
      prefixes_[r.path_value_].push_back(i);
      prefix_lengths_.push_back(r.path_value_.size());
    }
  }
  std::sort(prefix_lengths_.begin(), prefix_lengths_.end());
  prefix_lengths_.erase(std::unique(prefix_lengths_.begin(), prefix_lengths_.end()),
                        prefix_lengths_.end());
}

const RouteEntry* VirtualHostImpl::match(const Http::RequestHeaderMap& headers) const {
  const absl::string_view path = headers.pathOnly();
  absl::InlinedVector<uint32_t, 16> candidates;
  if (!exact_.empty()) {
    auto it = exact_.find(path);
    if (it != exact_.end()) {
      candidates.insert(candidates.end(), it->second.begin(), it->second.end());
    }
  }
  for (uint32_t len : prefix_lengths_) {
    if (len > path.size()) {
      break;
    }
    auto it = prefixes_.find(path.substr(0, len));
    if (it != prefixes_.end()) {
      candidates.insert(candidates.end(), it->second.begin(), it->second.end());
    }
  }
  candidates.insert(candidates.end(), always_.begin(), always_.end());
  if (candidates.size() > 1) {
    std::sort(candidates.begin(), candidates.end());
  }
  for (uint32_t i : candidates) {
    const RouteEntry& r = *routes_[i];
    if ((r.path_kind_ != RouteEntry::PathKind::Regex && r.case_sensitive_) || r.matchesPath(path)) {
      if (r.matchesRest(headers)) {
        return &r;
      }
    }
  }
  return nullptr;
}

absl::StatusOr<RouteTableConstSharedPtr> RouteTableImpl::create(
    const sluice::config::v1::RouteTable& config, const std::string& path, Stats::Store* stats,
    const std::function<bool(const std::string&)>& cluster_exists) {
  auto checkCluster = [&](const std::string& name, const std::string& field, Config::ErrorList& e) {
    if (cluster_exists && !name.empty() && !cluster_exists(name)) {
      e.add(field, absl::StrCat("unknown cluster \"", name, "\""));
    }
  };
  auto table = std::shared_ptr<RouteTableImpl>(new RouteTableImpl());
  table->name_ = config.name();
  Config::ErrorList errors;
  if (config.name().empty()) {
    errors.add(path + ".name", "is required");
  }
  for (int v = 0; v < config.virtual_hosts_size(); ++v) {
    const auto& vh_config = config.virtual_hosts(v);
    const std::string vpath = absl::StrCat(path, ".virtual_hosts[", v, "]");
    auto vh = std::make_unique<VirtualHostImpl>();
    vh->name_ = vh_config.name().empty() ? absl::StrCat("vhost", v) : vh_config.name();
    if (vh_config.domains_size() == 0) {
      errors.add(vpath + ".domains", "at least one domain is required");
    }
    for (int r = 0; r < vh_config.routes_size(); ++r) {
      const auto& rc = vh_config.routes(r);
      const std::string rpath = absl::StrCat(vpath, ".routes[", r, "]");
      auto entry = std::make_unique<RouteEntry>();
      entry->name_ = rc.name().empty() ? absl::StrCat(vh->name_, "/", r) : rc.name();
      const auto& m = rc.match();
      int kinds = !m.prefix().empty() + !m.path().empty() + !m.regex().empty();
      if (kinds != 1) {
        errors.add(rpath + ".match", "exactly one of prefix, path, regex is required");
      } else if (!m.prefix().empty()) {
        entry->path_kind_ = RouteEntry::PathKind::Prefix;
        entry->path_value_ = m.prefix();
      } else if (!m.path().empty()) {
        entry->path_kind_ = RouteEntry::PathKind::Exact;
        entry->path_value_ = m.path();
      } else {
        entry->path_kind_ = RouteEntry::PathKind::Regex;
        auto re = compileRegex(m.regex(), rpath + ".match.regex");
        if (!re.ok()) {
          errors.add(re.status());
        } else {
          entry->path_regex_ = std::move(*re);
        }
      }
      if ((!m.prefix().empty() && m.prefix()[0] != '/') ||
          (!m.path().empty() && m.path()[0] != '/')) {
        errors.add(rpath + ".match", "prefix and path must start with '/'");
      }
      entry->case_sensitive_ = !m.has_case_sensitive() || m.case_sensitive();
      for (const std::string& method : m.methods()) {
        entry->methods_.push_back(absl::AsciiStrToUpper(method));
      }
      for (int h = 0; h < m.headers_size(); ++h) {
        const auto& hc = m.headers(h);
        const std::string hpath = absl::StrCat(rpath, ".match.headers[", h, "]");
        HeaderMatch hm;
        hm.name = absl::AsciiStrToLower(hc.name());
        hm.invert = hc.invert();
        if (hc.name().empty()) errors.add(hpath + ".name", "is required");
        int n = !hc.exact().empty() + !hc.prefix().empty() + !hc.regex().empty() + hc.present();
        if (n > 1) errors.add(hpath, "at most one of exact, prefix, regex, present");
        if (!hc.exact().empty()) {
          hm.kind = HeaderMatch::Kind::Exact;
          hm.value = hc.exact();
        } else if (!hc.prefix().empty()) {
          hm.kind = HeaderMatch::Kind::Prefix;
          hm.value = hc.prefix();
        } else if (!hc.regex().empty()) {
          hm.kind = HeaderMatch::Kind::Regex;
          auto re = compileRegex(hc.regex(), hpath + ".regex");
          if (!re.ok()) {
            errors.add(re.status());
          } else {
            hm.regex = std::move(*re);
          }
        }
        entry->headers_.push_back(std::move(hm));
      }
      for (int q = 0; q < m.query_parameters_size(); ++q) {
        const auto& qc = m.query_parameters(q);
        const std::string qpath = absl::StrCat(rpath, ".match.query_parameters[", q, "]");
        QueryMatch qm;
        qm.name = qc.name();
        if (qc.name().empty()) errors.add(qpath + ".name", "is required");
        if (!qc.exact().empty() + !qc.regex().empty() + qc.present() > 1) {
          errors.add(qpath, "at most one of exact, regex, present");
        }
        if (!qc.exact().empty()) {
          qm.kind = QueryMatch::Kind::Exact;
          qm.value = qc.exact();
        } else if (!qc.regex().empty()) {
          qm.kind = QueryMatch::Kind::Regex;
          auto re = compileRegex(qc.regex(), qpath + ".regex");
          if (!re.ok()) {
            errors.add(re.status());
          } else {
            qm.regex = std::move(*re);
          }
        }
        entry->query_.push_back(std::move(qm));
      }

      entry->auth_policy_ = rc.auth();
      entry->rate_limit_policy_ = rc.rate_limit();
      int actions = rc.has_route() + rc.has_direct_response() + rc.has_redirect();
      if (actions != 1) {
        errors.add(rpath, "exactly one of route, direct_response, redirect is required");
      } else if (rc.has_route()) {
        const auto& a = rc.route();
        if (a.cluster().empty() == !a.has_weighted_clusters()) {
          errors.add(rpath + ".route", "exactly one of cluster, weighted_clusters is required");
        }
        if (!a.cluster().empty()) {
          entry->type_ = ActionType::Cluster;
          entry->cluster_ = a.cluster();
          checkCluster(a.cluster(), rpath + ".route.cluster", errors);
        } else {
          entry->type_ = ActionType::WeightedClusters;
          const auto& wc = a.weighted_clusters();
          if (wc.clusters_size() == 0) {
            errors.add(rpath + ".route.weighted_clusters.clusters", "at least one is required");
          }
          for (int w = 0; w < wc.clusters_size(); ++w) {
            const std::string wpath =
                absl::StrCat(rpath, ".route.weighted_clusters.clusters[", w, "]");
            if (wc.clusters(w).name().empty()) errors.add(wpath + ".name", "is required");
            if (wc.clusters(w).weight() == 0) errors.add(wpath + ".weight", "must be > 0");
            checkCluster(wc.clusters(w).name(), wpath + ".name", errors);
            entry->weighted_.emplace_back(wc.clusters(w).name(), wc.clusters(w).weight());
            entry->total_weight_ += wc.clusters(w).weight();
          }
        }
        entry->prefix_rewrite_ = a.prefix_rewrite();
        if (!a.prefix_rewrite().empty() && a.prefix_rewrite()[0] != '/') {
          errors.add(rpath + ".route.prefix_rewrite", "must start with '/'");
        }
        entry->host_rewrite_ = a.host_rewrite();
        if (!a.host_rewrite().empty() && !Http::isValidHeaderValue(a.host_rewrite())) {
          errors.add(rpath + ".route.host_rewrite", "invalid host");
        }
        if (a.has_timeout()) {
          auto d = Config::durationMs(a.timeout(), rpath + ".route.timeout");
          if (!d.ok()) {
            errors.add(d.status());
          } else {
            entry->timeout_ = *d;
          }
        }
      } else if (rc.has_direct_response()) {
        const auto& d = rc.direct_response();
        entry->type_ = ActionType::DirectResponse;
        if (d.status() < 200 || d.status() > 599) {
          errors.add(rpath + ".direct_response.status", "must be 200-599");
        }
        entry->direct_status_ = d.status();
        entry->direct_body_ = d.body();
        entry->direct_content_type_ = d.content_type().empty() ? "text/plain" : d.content_type();
      } else {
        const auto& rd = rc.redirect();
        entry->type_ = ActionType::Redirect;
        entry->redirect_ = rd;
        entry->redirect_code_ = rd.response_code() == 0 ? 301 : rd.response_code();
        switch (entry->redirect_code_) {
          case 301:
          case 302:
          case 303:
          case 307:
          case 308:
            break;
          default:
            errors.add(rpath + ".redirect.response_code", "must be 301, 302, 303, 307 or 308");
        }
        if (!rd.prefix_rewrite().empty() && entry->path_kind_ != RouteEntry::PathKind::Prefix) {
          errors.add(rpath + ".redirect.prefix_rewrite",
                     "only for prefix routes (use path_redirect for path and regex routes)");
        }
        if (!rd.path_redirect().empty() && !rd.prefix_rewrite().empty()) {
          errors.add(rpath + ".redirect", "path_redirect and prefix_rewrite are exclusive");
        }
        if (rd.port_redirect() > 65535) {
          errors.add(rpath + ".redirect.port_redirect", "must be <= 65535");
        }
      }
      if (stats != nullptr) {
        Stats::Labels labels{{"route", entry->name_}};
        entry->stats_.rq_total = &stats->counter(absl::StrCat("route.", entry->name_, ".rq_total"),
                                                 "route_rq_total", labels);
        entry->stats_.rq_time = &stats->histogram(absl::StrCat("route.", entry->name_, ".rq_time"),
                                                  "route_rq_time", labels);
      }
      vh->routes_.push_back(std::move(entry));
    }
    vh->buildIndex();
    for (int d = 0; d < vh_config.domains_size(); ++d) {
      std::string domain = absl::AsciiStrToLower(vh_config.domains(d));
      const std::string dpath = absl::StrCat(vpath, ".domains[", d, "]");
      if (domain.find(':') != std::string::npos && domain[0] != '[') {
        errors.add(dpath, "must not include a port (the Host header's port is ignored)");
      } else if (domain == "*") {
        if (table->default_host_ != nullptr) errors.add(dpath, "a second \"*\" virtual host");
        table->default_host_ = vh.get();
      } else if (absl::StartsWith(domain, "*")) {
        if (domain.size() < 2 || domain[1] != '.') {
          errors.add(dpath, "wildcards must have the form \"*.suffix\"");
        }
        for (const auto& [s, other] : table->suffix_hosts_) {
          if (s == domain.substr(1))
            errors.add(dpath, absl::StrCat("duplicate domain \"", domain, "\""));
        }
        table->suffix_hosts_.emplace_back(domain.substr(1), vh.get());
      } else if (domain.empty() || domain.find('*') != std::string::npos) {
        errors.add(dpath, "invalid domain");

      } else if (!table->exact_hosts_.emplace(domain, vh.get()).second) {
        errors.add(dpath, absl::StrCat("duplicate domain \"", domain, "\""));
      }
    }
    table->vhosts_.push_back(std::move(vh));
  }
  RETURN_IF_ERRORS(errors);
  std::stable_sort(table->suffix_hosts_.begin(), table->suffix_hosts_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  return RouteTableConstSharedPtr(std::move(table));
}

const VirtualHostImpl* RouteTableImpl::virtualHost(absl::string_view host_header) const {
  if (!exact_hosts_.empty() || !suffix_hosts_.empty()) {
    std::string host = absl::AsciiStrToLower(stripPort(host_header));
    auto it = exact_hosts_.find(host);
    if (it != exact_hosts_.end()) {
      return it->second;
    }
    for (const auto& [suffix, vh] : suffix_hosts_) {
      if (host.size() > suffix.size() && absl::EndsWith(host, suffix)) {
        return vh;
      }
    }
  }
  return default_host_;
}

const RouteEntry* RouteTableImpl::route(const Http::RequestHeaderMap& headers) const {
  const VirtualHostImpl* vh = virtualHost(headers.host());
  return vh == nullptr ? nullptr : vh->match(headers);
}

}  // namespace Router
}  // namespace sluice
