#pragma once

#include <string>

#include "source/common/http/filter.h"
#include "source/extensions/filters/http/cors/policy.h"

namespace sluice {
namespace Extensions {
namespace Cors {

// `cors`: Kong's cors plugin. The policy is the route's filter_config.cors (or its virtual
// host's), else the listener's. A request without Origin passes untouched. A preflight (OPTIONS
// with Origin and Access-Control-Request-Method) is answered here with 200 and the preflight
// headers, or passed to the upstream untouched with preflight_continue. Any other request with
// an Origin goes on, and its response (the upstream's, or a local reply of a later filter: 401,
// 404, 502, ...) gets Access-Control-Allow-Origin, -Credentials and -Expose-Headers, replacing
// the upstream's own. A disallowed origin gets no CORS headers at all (the upstream's are
// removed); `Vary: Origin` whenever the answer depends on the Origin.
// Per stream; runs on its worker only.
class CorsFilter : public Http::StreamFilter {
 public:
  explicit CorsFilter(CorsPolicyConstSharedPtr listener_policy)
      : listener_policy_(std::move(listener_policy)) {}

  // Http::StreamDecoderFilter
  Http::FilterHeadersStatus decodeHeaders(Http::RequestHeaderMap& headers,
                                          bool end_stream) override;
  Http::FilterDataStatus decodeData(Buffer::Instance&, bool) override {
    return Http::FilterDataStatus::Continue;
  }
  Http::FilterTrailersStatus decodeTrailers(Http::HeaderMap&) override {
    return Http::FilterTrailersStatus::Continue;
  }
  void setDecoderFilterCallbacks(Http::StreamDecoderFilterCallbacks& cb) override {
    decoder_callbacks_ = &cb;
  }

  // Http::StreamEncoderFilter
  Http::FilterHeadersStatus encodeHeaders(Http::ResponseHeaderMap& headers,
                                          bool end_stream) override;
  Http::FilterDataStatus encodeData(Buffer::Instance&, bool) override {
    return Http::FilterDataStatus::Continue;
  }
  Http::FilterTrailersStatus encodeTrailers(Http::HeaderMap&) override {
    return Http::FilterTrailersStatus::Continue;
  }
  void setEncoderFilterCallbacks(Http::StreamEncoderFilterCallbacks&) override {}

  // The gateway's answer to a preflight from `origin` under `policy`: status 200, no body.
  static Http::ResponseHeaderMapPtr preflightResponse(const CorsPolicy& policy,
                                                      absl::string_view origin,
                                                      const Http::RequestHeaderMap& request);
  // Sets the CORS headers of an actual response for `decision` (removing the upstream's own
  // when the origin is not allowed).
  static void applyToResponse(const CorsPolicy& policy, const OriginDecision& decision,
                              Http::ResponseHeaderMap& headers);

 private:
  enum class State {
    Unseen,     // decodeHeaders never ran (an earlier filter answered): decided at the response
    Untouched,  // filter disabled, a preflight left to the upstream, or no Origin and a
                // policy whose answer does not depend on one
    Answered,   // a preflight this filter answered
    Actual,     // a request with an Origin: decision_ goes on its response
    NoOrigin,   // no Origin, but the policy's answer depends on it: `Vary: Origin` goes on
  };

  // The policy for this stream's route (null: disabled there).
  const CorsPolicy* policyFor() const;

  CorsPolicyConstSharedPtr listener_policy_;
  Http::StreamDecoderFilterCallbacks* decoder_callbacks_ = nullptr;
  State state_ = State::Unseen;
  const CorsPolicy* policy_ = nullptr;  // owned by the listener config or the pinned route
  OriginDecision decision_;
};

}  // namespace Cors
}  // namespace Extensions
}  // namespace sluice
