#pragma once

#include <cstdint>
#include <memory>

#include "source/common/buffer/buffer.h"
#include "source/common/http/filter.h"
#include "source/common/stats/stats.h"
#include "source/extensions/filters/http/response_transformer/config.h"

namespace sluice {
namespace Extensions {
namespace ResponseTransformer {

// Process-wide: `response_transformer.<name>` / `sluice_response_transformer_<name>_total`.
// Each JSON response the JSON rules apply to counts once: transformed, or passed unchanged for
// one of the reasons.
#define ALL_RESPONSE_TRANSFORMER_STATS(COUNTER) \
  COUNTER(json_transformed)                     \
  COUNTER(json_skipped_encoded)                 \
  COUNTER(json_skipped_too_large)               \
  COUNTER(json_skipped_invalid)                 \
  COUNTER(json_skipped_not_object)

#define RESPONSE_TRANSFORMER_DECLARE_COUNTER(name) Stats::Counter* name = nullptr;

struct ResponseTransformerStats {
  ALL_RESPONSE_TRANSFORMER_STATS(RESPONSE_TRANSFORMER_DECLARE_COUNTER)
  static ResponseTransformerStats create(Stats::Store& store);
  // Every counter pointing at one sink: for configs that are only validated.
  static ResponseTransformerStats discarded();
};

// What every stream of a listener's filter shares: the listener's rules (routes and virtual
// hosts may bring their own) and the counters.
struct FilterConfig {
  RulesConstSharedPtr rules;
  ResponseTransformerStats stats;
};
using FilterConfigConstSharedPtr = std::shared_ptr<const FilterConfig>;

// Kong's header rules, in Kong's order: remove; rename (a present header: every line of it,
// replacing the new name's); replace (a present header: one line with the value); add (an
// absent header); append (one more line). As in Kong, presence is tested (and a rename's value
// taken) on the headers as they arrived, not as earlier rules left them.
void applyHeaderRules(const Rules& rules, Http::HeaderMap& headers);

// `response_transformer`: Kong's response-transformer. Header rules apply to every response
// (local replies included) and never hold anything. The JSON rules apply to a JSON response
// (content-type application/json or +json, after the header rules) that has a body and no
// content coding: its headers are held (StopIteration) while the body is kept, up to the
// rules' max_body_bytes; at its end the body is rewritten and sent with a content-length
// (without one when trailers follow, so that HTTP/1.1 can carry them). A bigger body goes on
// unchanged (what was held, then the rest as it streams), and so does a body that is not a JSON
// object; both are counted. Without JSON rules the filter never stops iteration.
class ResponseTransformerFilter : public Http::StreamFilter {
 public:
  explicit ResponseTransformerFilter(FilterConfigConstSharedPtr config)
      : config_(std::move(config)) {}

  // StreamDecoderFilter: nothing to do on the request path (the callbacks give the request's
  // method to the response path).
  Http::FilterHeadersStatus decodeHeaders(Http::RequestHeaderMap&, bool) override {
    return Http::FilterHeadersStatus::Continue;
  }
  Http::FilterDataStatus decodeData(Buffer::Instance&, bool) override {
    return Http::FilterDataStatus::Continue;
  }
  Http::FilterTrailersStatus decodeTrailers(Http::HeaderMap&) override {
    return Http::FilterTrailersStatus::Continue;
  }
  void setDecoderFilterCallbacks(Http::StreamDecoderFilterCallbacks& cb) override {
    decoder_callbacks_ = &cb;
  }

  // StreamEncoderFilter
  Http::FilterHeadersStatus encodeHeaders(Http::ResponseHeaderMap& headers,
                                          bool end_stream) override;
  Http::FilterDataStatus encodeData(Buffer::Instance& data, bool end_stream) override;
  Http::FilterTrailersStatus encodeTrailers(Http::HeaderMap& trailers) override;
  void setEncoderFilterCallbacks(Http::StreamEncoderFilterCallbacks& cb) override {
    encoder_callbacks_ = &cb;
  }

 private:
  // Whether the JSON rules take this response (counting the ones they skip at the headers).
  bool wantsBody(const Http::ResponseHeaderMap& headers, bool end_stream);
  // The held body, transformed (or as it was), into `out`; fixes the held headers' framing.
  void finishBody(Buffer::Instance& out, bool trailers_follow);

  FilterConfigConstSharedPtr config_;
  Http::StreamDecoderFilterCallbacks* decoder_callbacks_ = nullptr;
  Http::StreamEncoderFilterCallbacks* encoder_callbacks_ = nullptr;
  // This response's rules: the route's (or its virtual host's), else the listener's.
  const Rules* rules_ = nullptr;
  // While buffering: the held headers and the body so far.
  Http::ResponseHeaderMap* headers_ = nullptr;
  Buffer::OwnedImpl body_;
  bool buffering_ = false;
  // Bumped by every encodeHeaders(): a local reply that replaces the response while this filter
  // resumes it is told apart from the response it was holding.
  uint32_t response_ = 0;
};

}  // namespace ResponseTransformer
}  // namespace Extensions
}  // namespace sluice
