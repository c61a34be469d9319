#include "source/extensions/filters/http/rate_limit/filter.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "source/common/router/config.h"
#include "source/extensions/filters/http/rate_limit/redis_script.h"

namespace sluice {
namespace Extensions {
namespace RateLimit {

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

FilterConfig::FilterConfig(LocalStoreSharedPtr local, Stats::Store* stats, Clock clock)
    : local_(std::move(local)), stats_(stats), clock_(std::move(clock)) {
  if (stats_ == nullptr) {
    // Enough writer slots for any worker count (validation never counts anything).
    own_stats_ = std::make_unique<Stats::Store>(257);
    stats_ = own_stats_.get();
  }
}

bool FilterConfig::addPolicy(const PolicyProto& policy, const std::string& path) {
  auto compiled = compilePolicy(policy, path);
  if (!compiled.ok()) {
    return false;
  }
  PolicyRuntime rt;
  rt.policy = *compiled;
  rt.stats = RateLimitStats::create(*stats_, policy.name());
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

std::string RateLimitFilter::identity(const CompiledPolicy& policy,
                                      const Http::RequestHeaderMap& headers,
                                      const Router::RouteEntry& route, const Http::StreamInfo& info,
                                      absl::string_view client_ip) {
  absl::string_view kind;
  absl::string_view value;
  std::string joined;
  switch (policy.limit_by) {
    case PolicyProto::CONSUMER:
      kind = "consumer:";
      value = info.consumer;
      break;
    case PolicyProto::CREDENTIAL:
      kind = "credential:";
      value = info.credential;
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
        for (const auto& wc : route.weightedClusters()) {
          absl::StrAppend(&joined, joined.empty() ? "" : ",", wc.first);
        }
        value = joined;
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
    return absl::StrCat("ip:", client_ip);
  }
  return boundedIdentity(absl::StrCat(kind, value));
}

Http::FilterHeadersStatus RateLimitFilter::decodeHeaders(Http::RequestHeaderMap& headers, bool) {
  const Router::RouteEntry* route = decoder_callbacks_->route();
  if (route == nullptr || route->rateLimitPolicy().empty()) {
    return Http::FilterHeadersStatus::Continue;
  }
  // Null only for a static route naming a policy the control plane has not sent yet.
  policy_ = config_->find(route->rateLimitPolicy());
  if (policy_ == nullptr) {
    return Http::FilterHeadersStatus::Continue;
  }
  const CompiledPolicy& p = *policy_->policy;
  const std::string id = identity(p, headers, *route, decoder_callbacks_->streamInfo(),
                                  decoder_callbacks_->downstreamAddress());
  if (!p.redis) {
    return apply(config_->local().consume(p, id, config_->nowMs()))
               ? Http::FilterHeadersStatus::Continue
               : Http::FilterHeadersStatus::StopIteration;
  }
  client_ = &RedisClient::get(decoder_callbacks_->dispatcher(), p.redis_settings);
  std::string error;
  request_ = client_->send(scriptArgs(p, id), *this, error);
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
    Decision d;
    std::string parse_error;
    if (parseScriptReply(*reply, *policy_->policy, d, parse_error)) {
      go = apply(d);
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

bool RateLimitFilter::apply(const Decision& decision) {
  decision_ = decision;
  decided_ = true;
  if (decision.allowed) {
    policy_->stats.allowed->inc();
    return true;
  }
  policy_->stats.limited->inc();
  const std::string retry = absl::StrCat(headerSeconds(decision.retry_after_ms));
  decoder_callbacks_->sendLocalReply(
      429, "API rate limit exceeded", "RL",
      [&retry](Http::ResponseHeaderMap& h) { h.set("retry-after", retry); });
  return false;
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
  decoder_callbacks_->sendLocalReply(503, "rate limit service unavailable", "RLSE");
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
  if (d.windows.size() != p.windows.size()) {
    return;
  }
  if (p.headers != PolicyProto::IETF) {
    // Kong: every window, then the most restrictive one (least remaining; ties: the longer).
    size_t tightest = 0;
    for (size_t i = 0; i < p.windows.size(); ++i) {
      headers.set(p.windows[i].kong_limit_header, p.windows[i].limit_text);
      headers.set(p.windows[i].kong_remaining_header, absl::StrCat(d.windows[i].remaining));
      if (d.windows[i].remaining <= d.windows[tightest].remaining) {
        tightest = i;
      }
    }
    headers.set("ratelimit-limit", p.windows[tightest].limit_text);
    headers.set("ratelimit-remaining", absl::StrCat(d.windows[tightest].remaining));
    headers.set("ratelimit-reset", absl::StrCat(headerSeconds(d.windows[tightest].reset_ms)));
  }
  if (p.headers != PolicyProto::KONG) {
    // draft-ietf-httpapi-ratelimit-headers (-07 and later): structured fields.
    headers.set("ratelimit-policy", p.ietf_policy_value);
    std::string value;
    for (size_t i = 0; i < p.windows.size(); ++i) {
      absl::StrAppend(&value, i == 0 ? "" : ", ", p.windows[i].ietf_name,
                      ";r=", d.windows[i].remaining, ";t=", headerSeconds(d.windows[i].reset_ms));
    }
    headers.set("ratelimit", value);
  }
}

}  // namespace RateLimit
}  // namespace Extensions
}  // namespace sluice
