#include "source/extensions/filters/http/rate_limit/filter.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "source/common/router/config.h"
#include "source/extensions/filters/http/rate_limit/config.h"
#include "source/extensions/filters/http/rate_limit/redis_script.h"

namespace sluice {
namespace Extensions {
namespace RateLimit {
namespace {

const std::string kRateLimitLimit = "ratelimit-limit";
const std::string kRateLimitRemaining = "ratelimit-remaining";
const std::string kRateLimitReset = "ratelimit-reset";
const std::string kRateLimitPolicy = "ratelimit-policy";
const std::string kRateLimit = "ratelimit";

}  // namespace

RateLimitStats RateLimitStats::create(Stats::Store& store, const std::string& policy) {
  RateLimitStats s;
  const Stats::Labels labels{{"policy", policy}};
#define RATE_LIMIT_MAKE_COUNTER(name) \
  s.name =                            \
      &store.counter(absl::StrCat("rate_limit.", policy, "." #name), "rate_limit_" #name, labels);
  ALL_RATE_LIMIT_STATS(RATE_LIMIT_MAKE_COUNTER)
#undef RATE_LIMIT_MAKE_COUNTER
  return s;
}

RateLimitStats RateLimitStats::discarded() {
  // Enough writer slots for any worker count (at most 256, plus the main thread).
  static Stats::Counter sink(Stats::StatName{}, 257);
  RateLimitStats s;
#define RATE_LIMIT_SINK(name) s.name = &sink;
  ALL_RATE_LIMIT_STATS(RATE_LIMIT_SINK)
#undef RATE_LIMIT_SINK
  return s;
}

FilterConfig::FilterConfig(LocalStoreSharedPtr local, Stats::Store* stats, Clock clock)
    : local_(std::move(local)), stats_(stats), clock_(std::move(clock)) {}

bool FilterConfig::addPolicy(const PolicyProto& policy, const std::string& path) {
  auto compiled = compilePolicy(policy, path);
  if (!compiled.ok()) {
    return false;
  }
  PolicyRuntime rt;
  rt.policy = *compiled;
  rt.stats = stats_ != nullptr ? RateLimitStats::create(*stats_, policy.name())
                               : RateLimitStats::discarded();
  policies_[policy.name()] = std::move(rt);
  return true;
}

const PolicyRuntime* FilterConfig::find(const std::string& name) const {
  auto it = policies_.find(name);
  return it == policies_.end() ? nullptr : &it->second;
}

int64_t FilterConfig::nowMs() const {
  if (clock_) {
    return clock_();
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void RateLimitFilter::identity(const CompiledPolicy& policy, const Http::RequestHeaderMap& headers,
                               const Router::RouteEntry& route, const Http::StreamInfo& info,
                               absl::string_view client_ip, std::string& out) {
  absl::string_view kind;
  absl::string_view value;
  switch (policy.limit_by) {
    case PolicyProto::CONSUMER:
      kind = "consumer:";
      value = info.filter_state.getString(Http::FilterStateNames::kConsumer);
      break;
    case PolicyProto::CREDENTIAL:
      kind = "credential:";
      value = info.filter_state.getString(Http::FilterStateNames::kCredential);
      break;
    case PolicyProto::HEADER:
      kind = "header:";
      value = headers.get(policy.header_name);
      break;
    case PolicyProto::PATH:
      kind = "path:";
      value = headers.pathOnly();
      break;
    case PolicyProto::SERVICE:
      kind = "service:";
      value = route.cluster();
      if (value.empty() && !route.weightedClusters().empty()) {
        out.assign(kind.data(), kind.size());
        for (size_t i = 0; i < route.weightedClusters().size(); ++i) {
          absl::StrAppend(&out, i == 0 ? "" : ",", route.weightedClusters()[i].first);
        }
        boundIdentity(out);
        return;
      }
      break;
    case PolicyProto::ROUTE:
      kind = "route:";
      value = route.name();
      break;
    default:
      break;
  }
  if (value.empty()) {
    kind = "ip:";
    value = client_ip;
  }
  out.assign(kind.data(), kind.size());
  out.append(value.data(), value.size());
  boundIdentity(out);
}

Http::FilterHeadersStatus RateLimitFilter::decodeHeaders(Http::RequestHeaderMap& headers, bool) {
  const Router::RouteEntry* route = decoder_callbacks_->route();
  if (route == nullptr) return Http::FilterHeadersStatus::Continue;
  // The most specific config wins: route, virtual host, then the listener's.
  const RouteConfig* per_route = route->perFilterConfig<RouteConfig>(kFilterName);
  const std::string* name = per_route != nullptr ? &per_route->policy : &config_->defaultPolicy();
  if (per_route != nullptr && !per_route->consumer_policies.empty()) {
    // A consumer with a policy of its own here (auth, before this filter, identified it).
    auto it = per_route->consumer_policies.find(
        decoder_callbacks_->streamInfo().filter_state.getString(Http::FilterStateNames::kConsumer));
    if (it != per_route->consumer_policies.end()) name = &it->second;
  }
  if (name->empty()) return Http::FilterHeadersStatus::Continue;
  // Null only for a static route naming a policy the control plane has not sent yet.
  policy_ = config_->find(*name);
  if (policy_ == nullptr) {
    return Http::FilterHeadersStatus::Continue;
  }
  const CompiledPolicy& p = *policy_->policy;
  // Worker-local scratch for the key: no allocation per request.
  thread_local std::string id;
  identity(p, headers, *route, decoder_callbacks_->streamInfo(),
           decoder_callbacks_->downstreamAddress(), id);
  if (!p.redis) {
    config_->local().consume(p, id, config_->nowMs(), decision_);
    return apply() ? Http::FilterHeadersStatus::Continue : Http::FilterHeadersStatus::StopIteration;
  }
  client_ =
      &RedisClient::get(decoder_callbacks_->dispatcher(), p.redis_settings, config_->dnsOptions());
  std::string error;
  request_ = client_->send(scriptCommand(p, id), *this, error);
  if (request_ == nullptr) {
    return failed(false) ? Http::FilterHeadersStatus::Continue
                         : Http::FilterHeadersStatus::StopIteration;
  }
  timer_ = decoder_callbacks_->dispatcher().createTimer([this]() { onTimeout(); });
  timer_->enableTimer(p.redis_settings.timeout);
  return Http::FilterHeadersStatus::StopIteration;
}

void RateLimitFilter::onRedisReply(const redisReply* reply, absl::string_view error) {
  request_.reset();
  if (timer_ != nullptr) {
    timer_->disableTimer();
  }
  bool go;
  if (reply == nullptr) {
    go = failed(false);
  } else {
    std::string parse_error;
    if (parseScriptReply(*reply, *policy_->policy, decision_, parse_error)) {
      go = apply();
    } else {
      client_->logError(absl::StrCat("script failed: ", parse_error));
      go = failed(false);
    }
  }
  (void)error;  // the client logs connection-level errors (rate-limited)
  if (go) {
    decoder_callbacks_->continueDecoding();
  }
}

void RateLimitFilter::onTimeout() {
  if (request_ != nullptr) {
    request_->cancel();
    request_.reset();
  }
  client_->logError(absl::StrCat("no reply within ",
                                 policy_->policy->redis_settings.timeout.count(), "ms (timeout)"));
  if (failed(true)) {
    decoder_callbacks_->continueDecoding();
  }
}

bool RateLimitFilter::apply() {
  decided_ = true;
  if (decision_.allowed) {
    policy_->stats.allowed->inc();
    return true;
  }
  policy_->stats.limited->inc();
  const std::string retry = absl::StrCat(headerSeconds(decision_.retry_after_ms));
  decoder_callbacks_->sendLocalReply(
      429, "API rate limit exceeded", Http::ResponseFlag::RateLimited,
      [&retry](Http::ResponseHeaderMap& h) { h.set("retry-after", retry); },
      refusalType(*policy_->policy, decision_));
  return false;
}

Http::GatewayResponseType RateLimitFilter::refusalType(const CompiledPolicy& policy,
                                                       const Decision& decision) {
  constexpr int64_t kDayMs = 24 * 3600 * 1000;
  const size_t n = std::min(policy.windows.size(), decision.windows.size());
  for (size_t i = 0; i < n; ++i) {
    // A refusing window is one with nothing left (the others still had room).
    if (decision.windows[i].remaining == 0 && policy.windows[i].length_ms >= kDayMs) {
      return Http::GatewayResponseType::QuotaExceeded;
    }
  }
  return Http::GatewayResponseType::Throttled;
}

bool RateLimitFilter::failed(bool timeout) {
  const RateLimitStats& s = policy_->stats;
  s.redis_error->inc();
  if (timeout) {
    s.redis_timeout->inc();
  }
  if (policy_->policy->fault_tolerant) {
    s.fail_open->inc();
    return true;
  }
  s.fail_closed->inc();
  decoder_callbacks_->sendLocalReply(503, "rate limit service unavailable",
                                     Http::ResponseFlag::RateLimitServiceError);
  return false;
}

void RateLimitFilter::onDestroy() {
  if (request_ != nullptr) {
    request_->cancel();
    request_.reset();
  }
  // Not destroyed here: onDestroy can run inside the timer's own callback (a 503 on timeout).
  if (timer_ != nullptr) {
    timer_->disableTimer();
  }
}

Http::FilterHeadersStatus RateLimitFilter::encodeHeaders(Http::ResponseHeaderMap& headers, bool) {
  if (decided_ && !policy_->policy->hide_client_headers) {
    addHeaders(*policy_->policy, decision_, headers);
  }
  return Http::FilterHeadersStatus::Continue;
}

void RateLimitFilter::addHeaders(const CompiledPolicy& p, const Decision& d,
                                 Http::ResponseHeaderMap& headers) {
  const size_t n = p.windows.size();
  if (d.windows.size() != n) {
    return;
  }
  // Ours replace any the upstream sent. Those are rare: one scan finds out, and the common case
  // appends without a lookup per header.
  bool replace = false;
  for (const Http::HeaderEntry& e : headers.entries()) {
    if (absl::StartsWith(e.key, "ratelimit") || absl::StartsWith(e.key, "x-ratelimit-")) {
      replace = true;
      break;
    }
  }
  auto put = [&headers, replace](const std::string& key, std::string&& value) {
    if (replace) {
      headers.set(key, value);
    } else {
      headers.addMove(std::string(key), std::move(value));
    }
  };
  headers.entries().reserve(headers.size() + 2 * n + 5);
  if (p.headers != PolicyProto::IETF) {
    // Kong: every window, then the most restrictive one (least remaining; ties: the longer).
    size_t tightest = 0;
    for (size_t i = 0; i < n; ++i) {
      put(p.windows[i].kong_limit_header, std::string(p.windows[i].limit_text));
      put(p.windows[i].kong_remaining_header, absl::StrCat(d.windows[i].remaining));
      if (d.windows[i].remaining <= d.windows[tightest].remaining) {
        tightest = i;
      }
    }
    put(kRateLimitLimit, std::string(p.windows[tightest].limit_text));
    put(kRateLimitRemaining, absl::StrCat(d.windows[tightest].remaining));
    put(kRateLimitReset, absl::StrCat(headerSeconds(d.windows[tightest].reset_ms)));
  }
  if (p.headers != PolicyProto::KONG) {
    // draft-ietf-httpapi-ratelimit-headers (-07 and later): structured fields.
    put(kRateLimitPolicy, std::string(p.ietf_policy_value));
    std::string value;
    for (size_t i = 0; i < n; ++i) {
      absl::StrAppend(&value, i == 0 ? "" : ", ", p.windows[i].ietf_name,
                      ";r=", d.windows[i].remaining, ";t=", headerSeconds(d.windows[i].reset_ms));
    }
    put(kRateLimit, std::move(value));
  }
}

}  // namespace RateLimit
}  // namespace Extensions
}  // namespace sluice
