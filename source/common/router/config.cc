#include "source/common/router/config.h"

#include <algorithm>
#include <random>

#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "source/common/common/hash.h"
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

// A path (and query) written into a request line or a Location header: it must start with
// '/' and hold only visible ASCII other than '#' (no CR/LF, spaces or controls).
bool isValidPathValue(absl::string_view v) {
  if (v.empty() || v[0] != '/') return false;
  for (unsigned char c : v) {
    if (c <= 0x20 || c >= 0x7f || c == '#') return false;
  }
  return true;
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

std::vector<std::pair<std::string, std::string>> RouteEntry::namedCaptures(
    absl::string_view path) const {
  std::vector<std::pair<std::string, std::string>> out;
  if (path_kind_ != PathKind::Regex || path_regex_->NamedCapturingGroups().empty()) return out;
  const int n = path_regex_->NumberOfCapturingGroups();
  std::vector<re2::StringPiece> groups(n + 1);
  if (!path_regex_->Match(re2::StringPiece(path.data(), path.size()), 0, path.size(),
                          RE2::ANCHOR_BOTH, groups.data(), n + 1)) {
    return out;
  }
  for (const auto& [name, index] : path_regex_->NamedCapturingGroups()) {
    out.emplace_back(name, std::string(groups[index].data(), groups[index].size()));
  }
  return out;
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

namespace {

// Maps a 64-bit value onto [0, total) preserving order, so a client's position in the split
// moves monotonically when the weights change.
uint64_t scale(uint64_t x, uint64_t total) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(x) * total) >> 64);
}

// The value of cookie `name` in the request's Cookie header(s), or empty.
absl::string_view cookieValue(const Http::RequestHeaderMap& headers, absl::string_view name) {
  for (const Http::HeaderEntry& e : headers.entries()) {
    if (e.key != "cookie") continue;
    for (absl::string_view pair : absl::StrSplit(e.value, ';')) {
      pair = absl::StripAsciiWhitespace(pair);
      size_t eq = pair.find('=');
      if (eq != absl::string_view::npos && pair.substr(0, eq) == name) {
        absl::string_view v = pair.substr(eq + 1);
        if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
        return v;
      }
    }
  }
  return {};
}

// Per worker thread: a Weyl sequence (golden-ratio steps) is equidistributed with
// discrepancy O(log n / n), so the split over n requests is off by a handful of requests at
// most instead of the sqrt(n) of independent draws. Seeded differently per thread.
thread_local uint64_t t_split_sequence = 0;
thread_local bool t_split_seeded = false;

uint64_t nextSplitPoint() {
  if (!t_split_seeded) {
    t_split_seeded = true;
    t_split_sequence =
        (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  }
  t_split_sequence += 0x9e3779b97f4a7c15ULL;
  return t_split_sequence;
}

}  // namespace

bool RetryPolicy::retriableStatus(uint32_t status) const {
  if ((retry_on & k5xx) && status >= 500 && status <= 599) {
    return true;
  }
  if ((retry_on & kGatewayError) && status >= 502 && status <= 504) {
    return true;
  }
  if (retry_on & kRetriableStatusCodes) {
    return std::find(retriable_status_codes.begin(), retriable_status_codes.end(), status) !=
           retriable_status_codes.end();
  }
  return false;
}

bool RetryPolicy::retriableGrpcStatus(uint32_t grpc_status) const {
  switch (grpc_status) {
    case 1:
      return (retry_on & kGrpcCancelled) != 0;
    case 4:
      return (retry_on & kGrpcDeadlineExceeded) != 0;
    case 8:
      return (retry_on & kGrpcResourceExhausted) != 0;
    case 14:
      return (retry_on & kGrpcUnavailable) != 0;
    default:
      return false;
  }
}

uint64_t RouteEntry::splitPoint(const Http::RequestHeaderMap& headers,
                                absl::string_view client_ip) const {
  absl::string_view key;
  switch (hash_on_) {
    case CanaryHashOn::Random:
      return nextSplitPoint();
    case CanaryHashOn::Header:
      key = headers.get(hash_key_);
      break;
    case CanaryHashOn::Cookie:
      key = cookieValue(headers, hash_key_);
      break;
    case CanaryHashOn::Consumer:
      // Set by the auth filter (client copies are removed there).
      key = headers.get("x-consumer-username");
      break;
    case CanaryHashOn::Ip:
      break;
  }
  return stableHash(key.empty() ? client_ip : key);  // same as the ring hash's
}

const std::string& RouteEntry::selectCluster(const Http::RequestHeaderMap& headers,
                                             absl::string_view client_ip) const {
  if (type_ != ActionType::WeightedClusters) {
    return cluster_;
  }
  // The canary is the last cluster; "never" splits over the others by their weights.
  size_t n = weighted_.size();
  uint64_t total = total_weight_;
  if (!canary_header_.empty() && n > 1) {
    const Http::HeaderEntry* e = headers.find(canary_header_);
    if (e != nullptr && absl::EqualsIgnoreCase(e->value, "always")) {
      return weighted_.back().first;
    }
    if (e != nullptr && absl::EqualsIgnoreCase(e->value, "never")) {
      total -= weighted_.back().second;
      --n;
    }
  }
  uint64_t point = scale(splitPoint(headers, client_ip), total);
  for (size_t i = 0; i < n; ++i) {
    if (point < weighted_[i].second) {
      return weighted_[i].first;
    }
    point -= weighted_[i].second;
  }
  return weighted_[n - 1].first;
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

void RouteTableImpl::compileSplit(const sluice::config::v1::WeightedClusters& wc,
                                  const std::string& path, RouteEntry& entry,
                                  Config::ErrorList& errors) {
  using HashOn = sluice::config::v1::WeightedClusters;
  switch (wc.hash_on()) {
    case HashOn::HEADER:
      entry.hash_on_ = CanaryHashOn::Header;
      entry.hash_key_ = absl::AsciiStrToLower(wc.hash_key());
      break;
    case HashOn::COOKIE:
      entry.hash_on_ = CanaryHashOn::Cookie;
      entry.hash_key_ = wc.hash_key();
      break;
    case HashOn::IP:
      entry.hash_on_ = CanaryHashOn::Ip;
      break;
    case HashOn::CONSUMER:
      entry.hash_on_ = CanaryHashOn::Consumer;
      break;
    default:
      entry.hash_on_ = CanaryHashOn::Random;
      break;
  }
  const bool needs_key =
      entry.hash_on_ == CanaryHashOn::Header || entry.hash_on_ == CanaryHashOn::Cookie;
  if (needs_key && wc.hash_key().empty()) {
    errors.add(path + ".hash_key", "is required when hash_on is HEADER or COOKIE");
  } else if (needs_key && !Http::isValidToken(wc.hash_key())) {
    errors.add(path + ".hash_key", absl::StrCat("invalid name \"", wc.hash_key(), "\""));
  } else if (!needs_key && !wc.hash_key().empty()) {
    errors.add(path + ".hash_key", "only for hash_on HEADER or COOKIE");
  }
  if (!wc.canary_header().empty()) {
    if (!Http::isValidToken(wc.canary_header())) {
      errors.add(path + ".canary_header",
                 absl::StrCat("invalid header name \"", wc.canary_header(), "\""));
    } else if (wc.clusters_size() < 2) {
      errors.add(path + ".canary_header", "needs at least two clusters (the last is the canary)");
    }
    entry.canary_header_ = absl::AsciiStrToLower(wc.canary_header());
  }
}

std::unique_ptr<const RetryPolicy> RouteTableImpl::compileRetryPolicy(
    const sluice::config::v1::RetryPolicy& rp, const std::string& path, Config::ErrorList& errors) {
  auto policy = std::make_unique<RetryPolicy>();
  if (rp.retry_on_size() > 0) {
    policy->retry_on = 0;
  }
  for (int i = 0; i < rp.retry_on_size(); ++i) {
    const std::string& on = rp.retry_on(i);
    if (on == "connect-failure") {
      policy->retry_on |= RetryPolicy::kConnectFailure;
    } else if (on == "reset") {
      policy->retry_on |= RetryPolicy::kReset;
    } else if (on == "5xx") {
      policy->retry_on |= RetryPolicy::k5xx;
    } else if (on == "gateway-error") {
      policy->retry_on |= RetryPolicy::kGatewayError;
    } else if (on == "retriable-status-codes") {
      policy->retry_on |= RetryPolicy::kRetriableStatusCodes;
    } else if (on == "cancelled") {
      policy->retry_on |= RetryPolicy::kGrpcCancelled;
    } else if (on == "deadline-exceeded") {
      policy->retry_on |= RetryPolicy::kGrpcDeadlineExceeded;
    } else if (on == "resource-exhausted") {
      policy->retry_on |= RetryPolicy::kGrpcResourceExhausted;
    } else if (on == "unavailable") {
      policy->retry_on |= RetryPolicy::kGrpcUnavailable;
    } else {
      errors.add(absl::StrCat(path, ".retry_on[", i, "]"),
                 absl::StrCat("unknown condition \"", on,
                              "\" (connect-failure, reset, 5xx, gateway-error, "
                              "retriable-status-codes, cancelled, deadline-exceeded, "
                              "resource-exhausted, unavailable)"));
    }
  }
  if (rp.has_num_retries()) {
    policy->num_retries = rp.num_retries();
    if (rp.num_retries() > 10) errors.add(path + ".num_retries", "must be <= 10");
  }
  if (rp.has_per_try_timeout()) {
    auto d = Config::durationMs(rp.per_try_timeout(), path + ".per_try_timeout");
    if (!d.ok()) {
      errors.add(d.status());
    } else {
      policy->per_try_timeout = *d;
    }
  }
  for (int i = 0; i < rp.retriable_status_codes_size(); ++i) {
    const uint32_t st = rp.retriable_status_codes(i);
    if (st < 100 || st > 599) {
      errors.add(absl::StrCat(path, ".retriable_status_codes[", i, "]"), "must be 100-599");
    }
    policy->retriable_status_codes.push_back(st);
  }
  if ((policy->retry_on & RetryPolicy::kRetriableStatusCodes) &&
      policy->retriable_status_codes.empty()) {
    errors.add(path + ".retriable_status_codes",
               "at least one is required with retry_on retriable-status-codes");
  }
  const auto& b = rp.backoff();
  if (b.has_base_interval()) {
    auto d = Config::durationMs(b.base_interval(), path + ".backoff.base_interval");
    if (!d.ok()) {
      errors.add(d.status());
    } else if (d->count() == 0) {
      errors.add(path + ".backoff.base_interval", "must be > 0");
    } else {
      policy->base_interval = *d;
    }
  }
  policy->max_interval = policy->base_interval * 10;
  if (b.has_max_interval()) {
    auto d = Config::durationMs(b.max_interval(), path + ".backoff.max_interval");
    if (!d.ok()) {
      errors.add(d.status());
    } else if (*d < policy->base_interval) {
      errors.add(path + ".backoff.max_interval", "must be >= base_interval");
    } else {
      policy->max_interval = *d;
    }
  }
  return policy;
}

void RouteTableImpl::compileMatch(const sluice::config::v1::RouteMatch& m, const std::string& rpath,
                                  RouteEntry& entry, Config::ErrorList& errors) {
  int kinds = !m.prefix().empty() + !m.path().empty() + !m.regex().empty();
  if (kinds != 1) {
    errors.add(rpath + ".match", "exactly one of prefix, path, regex is required");
  } else if (!m.prefix().empty()) {
    entry.path_kind_ = RouteEntry::PathKind::Prefix;
    entry.path_value_ = m.prefix();
  } else if (!m.path().empty()) {
    entry.path_kind_ = RouteEntry::PathKind::Exact;
    entry.path_value_ = m.path();
  } else {
    entry.path_kind_ = RouteEntry::PathKind::Regex;
    auto re = compileRegex(m.regex(), rpath + ".match.regex");
    if (!re.ok()) {
      errors.add(re.status());
    } else {
      entry.path_regex_ = std::move(*re);
    }
  }
  if ((!m.prefix().empty() && m.prefix()[0] != '/') || (!m.path().empty() && m.path()[0] != '/')) {
    errors.add(rpath + ".match", "prefix and path must start with '/'");
  }
  entry.case_sensitive_ = !m.has_case_sensitive() || m.case_sensitive();
  for (const std::string& method : m.methods()) {
    entry.methods_.push_back(absl::AsciiStrToUpper(method));
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
    entry.headers_.push_back(std::move(hm));
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
    entry.query_.push_back(std::move(qm));
  }
}

void RouteTableImpl::compileClusterAction(const sluice::config::v1::RouteAction& a,
                                          const std::string& rpath,
                                          const ClusterCheck& checkCluster, RouteEntry& entry,
                                          Config::ErrorList& errors) {
  if (a.cluster().empty() == !a.has_weighted_clusters()) {
    errors.add(rpath + ".route", "exactly one of cluster, weighted_clusters is required");
  }
  if (!a.cluster().empty()) {
    entry.type_ = ActionType::Cluster;
    entry.cluster_ = a.cluster();
    checkCluster(a.cluster(), rpath + ".route.cluster", errors);
  } else {
    entry.type_ = ActionType::WeightedClusters;
    const auto& wc = a.weighted_clusters();
    if (wc.clusters_size() == 0) {
      errors.add(rpath + ".route.weighted_clusters.clusters", "at least one is required");
    }
    for (int w = 0; w < wc.clusters_size(); ++w) {
      const std::string wpath = absl::StrCat(rpath, ".route.weighted_clusters.clusters[", w, "]");
      if (wc.clusters(w).name().empty()) errors.add(wpath + ".name", "is required");
      if (wc.clusters(w).weight() == 0) errors.add(wpath + ".weight", "must be > 0");
      checkCluster(wc.clusters(w).name(), wpath + ".name", errors);
      entry.weighted_.emplace_back(wc.clusters(w).name(), wc.clusters(w).weight());
      entry.total_weight_ += wc.clusters(w).weight();
    }
    compileSplit(wc, rpath + ".route.weighted_clusters", entry, errors);
  }
  entry.prefix_rewrite_ = a.prefix_rewrite();
  if (!a.prefix_rewrite().empty() && !isValidPathValue(a.prefix_rewrite())) {
    errors.add(rpath + ".route.prefix_rewrite",
               "must start with '/' and hold only visible ASCII (no spaces, controls, '#')");
  }
  entry.host_rewrite_ = a.host_rewrite();
  if (!a.host_rewrite().empty() && !Http::isValidAuthority(a.host_rewrite())) {
    errors.add(rpath + ".route.host_rewrite", "invalid host (host[:port])");
  }
  if (a.has_timeout()) {
    auto d = Config::durationMs(a.timeout(), rpath + ".route.timeout");
    if (!d.ok()) {
      errors.add(d.status());
    } else {
      entry.timeout_ = *d;
    }
  }
  if (a.has_max_grpc_timeout()) {
    auto d = Config::durationMs(a.max_grpc_timeout(), rpath + ".route.max_grpc_timeout");
    if (!d.ok()) {
      errors.add(d.status());
    } else {
      entry.max_grpc_timeout_ = *d;
    }
  }
  if (a.has_retry_policy()) {
    entry.retry_policy_ =
        compileRetryPolicy(a.retry_policy(), rpath + ".route.retry_policy", errors);
  }
}

void RouteTableImpl::compileDirectResponse(const sluice::config::v1::DirectResponse& d,
                                           const std::string& rpath, RouteEntry& entry,
                                           Config::ErrorList& errors) {
  entry.type_ = ActionType::DirectResponse;
  if (d.status() < 200 || d.status() > 599) {
    errors.add(rpath + ".direct_response.status", "must be 200-599");
  }
  entry.direct_status_ = d.status();
  entry.direct_body_ = d.body();
  entry.direct_content_type_ = d.content_type().empty() ? "text/plain" : d.content_type();
  if (!d.content_type().empty() && !Http::isValidMediaType(d.content_type())) {
    errors.add(rpath + ".direct_response.content_type",
               "invalid media type (type/subtype[; parameters], no controls)");
  }
}

void RouteTableImpl::compileRedirect(const sluice::config::v1::Redirect& rd,
                                     const std::string& rpath, RouteEntry& entry,
                                     Config::ErrorList& errors) {
  entry.type_ = ActionType::Redirect;
  entry.redirect_ = rd;
  entry.redirect_code_ = rd.response_code() == 0 ? 301 : rd.response_code();
  switch (entry.redirect_code_) {
    case 301:
    case 302:
    case 303:
    case 307:
    case 308:
      break;
    default:
      errors.add(rpath + ".redirect.response_code", "must be 301, 302, 303, 307 or 308");
  }
  if (!rd.prefix_rewrite().empty() && entry.path_kind_ != RouteEntry::PathKind::Prefix) {
    errors.add(rpath + ".redirect.prefix_rewrite",
               "only for prefix routes (use path_redirect for path and regex routes)");
  }
  if (!rd.path_redirect().empty() && !rd.prefix_rewrite().empty()) {
    errors.add(rpath + ".redirect", "path_redirect and prefix_rewrite are exclusive");
  }
  if (rd.port_redirect() > 65535) {
    errors.add(rpath + ".redirect.port_redirect", "must be <= 65535");
  }
  if (!rd.host_redirect().empty() && !Http::isValidAuthority(rd.host_redirect())) {
    errors.add(rpath + ".redirect.host_redirect", "invalid host");
  }
  if (!rd.scheme_redirect().empty() && rd.scheme_redirect() != "http" &&
      rd.scheme_redirect() != "https") {
    errors.add(rpath + ".redirect.scheme_redirect", "must be http or https");
  }
  if (!rd.path_redirect().empty() && !isValidPathValue(rd.path_redirect())) {
    errors.add(rpath + ".redirect.path_redirect",
               "must start with '/' and hold only visible ASCII (no spaces, controls, '#')");
  }
  if (!rd.prefix_rewrite().empty() && !isValidPathValue(rd.prefix_rewrite())) {
    errors.add(rpath + ".redirect.prefix_rewrite",
               "must start with '/' and hold only visible ASCII (no spaces, controls, '#')");
  }
}

std::unique_ptr<RouteEntry> RouteTableImpl::compileRoute(const sluice::config::v1::Route& rc,
                                                         const std::string& rpath,
                                                         const std::string& default_name,
                                                         const CompileContext& c,
                                                         Config::ErrorList& errors) {
  auto entry = std::make_unique<RouteEntry>();
  entry->name_ = rc.name().empty() ? default_name : rc.name();
  compileMatch(rc.match(), rpath, *entry, errors);
  if (c.filters != nullptr) {
    entry->filter_configs_ = c.filters->compile(rc.filter_config(), &rc, rpath, errors);
  } else if (!rc.filter_config().empty()) {
    errors.add(rpath + ".filter_config", "no filters are known here");
  }
  int actions = rc.has_route() + rc.has_direct_response() + rc.has_redirect();
  if (actions != 1) {
    errors.add(rpath, "exactly one of route, direct_response, redirect is required");
  } else if (rc.has_route()) {
    compileClusterAction(rc.route(), rpath, c.check_cluster, *entry, errors);
  } else if (rc.has_direct_response()) {
    compileDirectResponse(rc.direct_response(), rpath, *entry, errors);
  } else {
    compileRedirect(rc.redirect(), rpath, *entry, errors);
  }
  if (c.stats != nullptr) {
    Stats::Labels labels{{"route", entry->name_}};
    entry->stats_.rq_total = &c.stats->counter(absl::StrCat("route.", entry->name_, ".rq_total"),
                                               "route_rq_total", labels);
    entry->stats_.rq_time = &c.stats->histogram(absl::StrCat("route.", entry->name_, ".rq_time"),
                                                "route_rq_time", labels);
    const std::string prefix = absl::StrCat("route.", entry->name_, ".");
    for (int cls = 1; cls <= 5; ++cls) {
      Stats::Labels l = labels;
      l.emplace_back("code_class", absl::StrCat(cls, "xx"));
      entry->stats_.rq_class[cls] =
          &c.stats->counter(absl::StrCat(prefix, "rq_", cls, "xx"), "route_rq_xx_total", l);
    }
    entry->stats_.bytes_received =
        &c.stats->counter(prefix + "bytes_received", "route_bytes_received_total", labels);
    entry->stats_.bytes_sent =
        &c.stats->counter(prefix + "bytes_sent", "route_bytes_sent_total", labels);
    entry->stats_.upstream_rq_time =
        &c.stats->histogram(prefix + "upstream_rq_time", "route_upstream_rq_time", labels);
    entry->stats_.gateway_time =
        &c.stats->histogram(prefix + "gateway_time", "route_gateway_time", labels);
  }
  return entry;
}

void RouteTableImpl::addDomains(const sluice::config::v1::VirtualHost& vh_config,
                                const std::string& vpath, const VirtualHostImpl* vh,
                                Config::ErrorList& errors) {
  RouteTableImpl* table = this;
  for (int d = 0; d < vh_config.domains_size(); ++d) {
    std::string domain = absl::AsciiStrToLower(vh_config.domains(d));
    const std::string dpath = absl::StrCat(vpath, ".domains[", d, "]");
    if (domain.find(':') != std::string::npos && domain[0] != '[') {
      errors.add(dpath, "must not include a port (the Host header's port is ignored)");
    } else if (domain == "*") {
      if (table->default_host_ != nullptr) errors.add(dpath, "a second \"*\" virtual host");
      table->default_host_ = vh;
    } else if (absl::StartsWith(domain, "*")) {
      if (domain.size() < 3 || domain[1] != '.' || !Http::isValidAuthority(domain.substr(2))) {
        errors.add(dpath, "wildcards must have the form \"*.suffix\"");
      }
      for (const auto& [s, other] : table->suffix_hosts_) {
        if (s == domain.substr(1))
          errors.add(dpath, absl::StrCat("duplicate domain \"", domain, "\""));
      }
      table->suffix_hosts_.emplace_back(domain.substr(1), vh);
    } else if (domain.empty() || domain.find('*') != std::string::npos ||
               !Http::isValidAuthority(domain)) {
      errors.add(dpath, "invalid domain");

    } else if (!table->exact_hosts_.emplace(domain, vh).second) {
      errors.add(dpath, absl::StrCat("duplicate domain \"", domain, "\""));
    }
  }
}

absl::StatusOr<RouteTableConstSharedPtr> RouteTableImpl::create(
    const sluice::config::v1::RouteTable& config, const std::string& path, Stats::Store* stats,
    const std::function<bool(const std::string&)>& cluster_exists,
    const PerFilterConfigCompiler* filters) {
  CompileContext c;
  c.stats = stats;
  c.filters = filters;
  c.check_cluster = [&](const std::string& name, const std::string& field, Config::ErrorList& e) {
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
    if (filters != nullptr) {
      vh->filter_configs_ = filters->compile(vh_config.filter_config(), nullptr, vpath, errors);
    } else if (!vh_config.filter_config().empty()) {
      errors.add(vpath + ".filter_config", "no filters are known here");
    }
    vh->gateway_responses_ = Http::GatewayResponses::create(vh_config.gateway_responses(),
                                                            vpath + ".gateway_responses", errors);
    table->has_gateway_responses_ |= vh->gateway_responses_ != nullptr;
    for (int r = 0; r < vh_config.routes_size(); ++r) {
      const std::string rpath = absl::StrCat(vpath, ".routes[", r, "]");
      auto entry =
          compileRoute(vh_config.routes(r), rpath, absl::StrCat(vh->name_, "/", r), c, errors);
      if (!vh->filter_configs_.empty()) entry->vhost_filter_configs_ = &vh->filter_configs_;
      vh->routes_.push_back(std::move(entry));
    }
    vh->buildIndex();
    table->addDomains(vh_config, vpath, vh.get(), errors);
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

const RouteEntry* RouteTableImpl::route(const Http::RequestHeaderMap& headers,
                                        const VirtualHostImpl*& vhost) const {
  vhost = virtualHost(headers.host());
  return vhost == nullptr ? nullptr : vhost->match(headers);
}

}  // namespace Router
}  // namespace sluice
