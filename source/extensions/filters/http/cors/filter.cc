#include "source/extensions/filters/http/cors/filter.h"

#include "absl/strings/str_cat.h"
#include "source/common/router/config.h"
#include "source/extensions/filters/http/cors/config.h"

namespace sluice {
namespace Extensions {
namespace Cors {
namespace {

constexpr absl::string_view kAllowOrigin = "access-control-allow-origin";
constexpr absl::string_view kAllowCredentials = "access-control-allow-credentials";
constexpr absl::string_view kExposeHeaders = "access-control-expose-headers";

bool isPreflight(const Http::RequestHeaderMap& headers) {
  return headers.method == "OPTIONS" && headers.has("access-control-request-method");
}

// Every Access-Control-Request-Headers value, joined (a client may split the list).
std::string requestedHeaders(const Http::RequestHeaderMap& headers) {
  std::string out;
  for (const Http::HeaderEntry& e : headers.entries()) {
    if (e.key != "access-control-request-headers" || e.value.empty()) continue;
    absl::StrAppend(&out, out.empty() ? "" : ",", e.value);
  }
  return out;
}

}  // namespace

const CorsPolicy* CorsFilter::policyFor() const {
  const Router::RouteEntry* route = decoder_callbacks_->route();
  if (route != nullptr) {
    // The most specific config wins: route, virtual host, then the listener's.
    const RouteConfig* per_route = route->perFilterConfig<RouteConfig>(kFilterName);
    if (per_route != nullptr) return per_route->policy.get();
  }
  return listener_policy_.get();
}

Http::FilterHeadersStatus CorsFilter::decodeHeaders(Http::RequestHeaderMap& headers, bool) {
  state_ = State::Untouched;
  const Http::HeaderEntry* origin = headers.find("origin");
  policy_ = policyFor();
  if (policy_ == nullptr) return Http::FilterHeadersStatus::Continue;
  if (origin == nullptr) {
    if (policy_->variesByOrigin()) state_ = State::NoOrigin;
    return Http::FilterHeadersStatus::Continue;
  }
  if (!isPreflight(headers)) {
    state_ = State::Actual;
    decision_ = policy_->decide(origin->value);
    return Http::FilterHeadersStatus::Continue;
  }
  if (policy_->preflightContinue()) {
    // The upstream answers the preflight; its answer is its own.
    return Http::FilterHeadersStatus::Continue;
  }
  state_ = State::Answered;
  decoder_callbacks_->encodeHeaders(preflightResponse(*policy_, origin->value, headers), true);
  return Http::FilterHeadersStatus::StopIteration;
}

Http::FilterHeadersStatus CorsFilter::encodeHeaders(Http::ResponseHeaderMap& headers, bool) {
  if (state_ == State::Unseen) {
    // A filter before this one answered (the chain put cors after auth, say): the answer is
    // still readable by an allowed origin.
    state_ = State::Untouched;
    const Http::RequestHeaderMap& request = decoder_callbacks_->requestHeaders();
    const Http::HeaderEntry* origin = request.find("origin");
    policy_ = policyFor();
    if (policy_ != nullptr && origin != nullptr) {
      state_ = State::Actual;
      decision_ = policy_->decide(origin->value);
    } else if (policy_ != nullptr && policy_->variesByOrigin()) {
      state_ = State::NoOrigin;
    }
  }
  if (state_ == State::Actual) {
    applyToResponse(*policy_, decision_, headers);
  } else if (state_ == State::NoOrigin) {
    addVaryOrigin(headers);
  }
  return Http::FilterHeadersStatus::Continue;
}

Http::ResponseHeaderMapPtr CorsFilter::preflightResponse(const CorsPolicy& policy,
                                                         absl::string_view origin,
                                                         const Http::RequestHeaderMap& request) {
  auto h = std::make_unique<Http::ResponseHeaderMap>();
  h->status = 200;
  const OriginDecision d = policy.decide(origin);
  if (d.allowed) {
    h->add(kAllowOrigin, d.allow_origin);
  }
  if (d.vary) {
    addVaryOrigin(*h);
  }
  if (d.allowed) {
    if (policy.credentials()) {
      h->add(kAllowCredentials, "true");
    }
    if (!policy.allowHeaders().empty()) {
      h->add("access-control-allow-headers", policy.allowHeaders());
    } else {
      std::string requested = requestedHeaders(request);
      if (!requested.empty()) h->add("access-control-allow-headers", requested);
    }
    h->add("access-control-allow-methods", policy.allowMethods());
    if (!policy.maxAge().empty()) {
      h->add("access-control-max-age", policy.maxAge());
    }
    if (policy.privateNetwork() &&
        request.get("access-control-request-private-network") == "true") {
      h->add("access-control-allow-private-network", "true");
    }
  }
  h->add("content-length", "0");
  return h;
}

void CorsFilter::applyToResponse(const CorsPolicy& policy, const OriginDecision& d,
                                 Http::ResponseHeaderMap& headers) {
  if (d.vary) {
    addVaryOrigin(headers);
  }
  if (!d.allowed) {
    // The gateway's policy refuses this origin: nothing may let it read the response.
    headers.remove(kAllowOrigin);
    headers.remove(kAllowCredentials);
    headers.remove(kExposeHeaders);
    return;
  }
  headers.set(kAllowOrigin, d.allow_origin);
  if (policy.credentials()) {
    headers.set(kAllowCredentials, "true");
  } else if (d.allow_origin == "*") {
    // Never "*" with credentials, whoever sent them.
    headers.remove(kAllowCredentials);
  }
  if (!policy.exposeHeaders().empty()) {
    headers.set(kExposeHeaders, policy.exposeHeaders());
  }
}

}  // namespace Cors
}  // namespace Extensions
}  // namespace sluice
