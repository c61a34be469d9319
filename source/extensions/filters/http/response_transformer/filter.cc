#include "source/extensions/filters/http/response_transformer/filter.h"

#include <string>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "source/common/router/config.h"

namespace sluice {
namespace Extensions {
namespace ResponseTransformer {

ResponseTransformerStats ResponseTransformerStats::create(Stats::Store& store) {
  ResponseTransformerStats s;
#define RESPONSE_TRANSFORMER_MAKE_COUNTER(name) \
  s.name = &store.counter("response_transformer." #name, "response_transformer_" #name);
  ALL_RESPONSE_TRANSFORMER_STATS(RESPONSE_TRANSFORMER_MAKE_COUNTER)
#undef RESPONSE_TRANSFORMER_MAKE_COUNTER
  return s;
}

ResponseTransformerStats ResponseTransformerStats::discarded() {
  // Enough writer slots for any worker count (at most 256, plus the main thread).
  static Stats::Counter sink(Stats::StatName{}, 257);
  ResponseTransformerStats s;
#define RESPONSE_TRANSFORMER_SINK(name) s.name = &sink;
  ALL_RESPONSE_TRANSFORMER_STATS(RESPONSE_TRANSFORMER_SINK)
#undef RESPONSE_TRANSFORMER_SINK
  return s;
}

void applyHeaderRules(const Rules& rules, Http::HeaderMap& headers) {
  // Kong's header_filter reads the response headers once and tests every rule against that
  // reading, while its changes go to the response: a rule never sees what an earlier rule did
  // (remove x then add x:v leaves no x; an add after a rename that made the name overwrites it).
  // So presence (and a rename's value) is taken from the headers as they arrived.
  absl::InlinedVector<bool, 8> replace_present;
  for (const HeaderValue& h : rules.replace_headers) replace_present.push_back(headers.has(h.name));
  absl::InlinedVector<bool, 8> add_present;
  for (const HeaderValue& h : rules.add_headers) add_present.push_back(headers.has(h.name));
  std::vector<std::vector<std::string>> rename_values(rules.rename_headers.size());
  for (size_t i = 0; i < rules.rename_headers.size(); ++i) {
    for (const Http::HeaderEntry& e : headers.entries()) {
      if (e.key == rules.rename_headers[i].from) rename_values[i].push_back(e.value);
    }
  }

  for (const std::string& name : rules.remove_headers) {
    headers.remove(name);
  }
  for (size_t i = 0; i < rules.rename_headers.size(); ++i) {
    if (rename_values[i].empty()) continue;
    const HeaderRename& r = rules.rename_headers[i];
    headers.remove(r.to);
    for (const std::string& v : rename_values[i]) headers.add(r.to, v);  // every line moves
    headers.remove(r.from);
  }
  for (size_t i = 0; i < rules.replace_headers.size(); ++i) {
    if (replace_present[i])
      headers.set(rules.replace_headers[i].name, rules.replace_headers[i].value);
  }
  for (size_t i = 0; i < rules.add_headers.size(); ++i) {
    if (!add_present[i]) headers.set(rules.add_headers[i].name, rules.add_headers[i].value);
  }
  for (const HeaderValue& h : rules.append_headers) {
    headers.add(h.name, h.value);
  }
}

bool ResponseTransformerFilter::wantsBody(const Http::ResponseHeaderMap& headers, bool end_stream) {
  if (rules_->json.empty() || end_stream) {
    return false;  // no JSON rules, or no body (a HEAD, 204 or 304 response ends here)
  }
  if (headers.status < 200 || headers.status == 204 || headers.status == 304 ||
      decoder_callbacks_->requestHeaders().method == "HEAD") {
    return false;  // no body, whatever the headers say
  }
  if (!Transform::isJsonContentType(headers.get("content-type"))) {
    return false;
  }
  if (Transform::hasContentCoding(headers)) {
    config_->stats.json_skipped_encoded->inc();  // never decompressed
    return false;
  }
  const absl::string_view length = headers.get("content-length");
  uint64_t n = 0;
  if (!length.empty() && absl::SimpleAtoi(length, &n) && n > rules_->max_body_bytes) {
    config_->stats.json_skipped_too_large->inc();  // known up front: nothing is held
    return false;
  }
  return true;
}

Http::FilterHeadersStatus ResponseTransformerFilter::encodeHeaders(Http::ResponseHeaderMap& headers,
                                                                   bool end_stream) {
  // A new response (a local reply may replace one this filter was holding): start over.
  ++response_;
  buffering_ = false;
  headers_ = nullptr;
  body_.drain(body_.length());

  const sluice::Router::RouteEntry* route = encoder_callbacks_->route();
  const Rules* route_rules =
      route == nullptr ? nullptr : route->perFilterConfig<Rules>(kFilterName);
  rules_ = route_rules != nullptr ? route_rules : config_->rules.get();

  applyHeaderRules(*rules_, headers);
  if (!wantsBody(headers, end_stream)) {
    return Http::FilterHeadersStatus::Continue;
  }
  headers_ = &headers;
  buffering_ = true;
  return Http::FilterHeadersStatus::StopIteration;
}

Http::FilterDataStatus ResponseTransformerFilter::encodeData(Buffer::Instance& data,
                                                             bool end_stream) {
  if (!buffering_) {
    return Http::FilterDataStatus::Continue;
  }
  const uint32_t response = response_;
  if (body_.length() + data.length() > rules_->max_body_bytes) {
    // Too big to transform: what was held goes on, then this and the rest as they come.
    config_->stats.json_skipped_too_large->inc();
    buffering_ = false;
    headers_ = nullptr;
    body_.move(data);
    data.move(body_);
  } else {
    body_.move(data);
    if (!end_stream) {
      return Http::FilterDataStatus::StopIterationNoBuffer;
    }
    finishBody(data, false);
  }
  encoder_callbacks_->continueEncoding();  // the headers go on; `data` follows them
  if (response != response_) {
    // Resuming replaced the response (a local reply went out instead): this data is stale.
    data.drain(data.length());
    return Http::FilterDataStatus::StopIterationNoBuffer;
  }
  return Http::FilterDataStatus::Continue;
}

Http::FilterTrailersStatus ResponseTransformerFilter::encodeTrailers(Http::HeaderMap&) {
  if (!buffering_) {
    return Http::FilterTrailersStatus::Continue;
  }
  // The body is complete: it goes ahead of the trailers.
  Buffer::OwnedImpl out;
  finishBody(out, true);
  encoder_callbacks_->addEncodedData(out);
  encoder_callbacks_->continueEncoding();
  return Http::FilterTrailersStatus::Continue;
}

void ResponseTransformerFilter::finishBody(Buffer::Instance& out, bool trailers_follow) {
  buffering_ = false;
  const std::string text = body_.toString();
  absl::StatusOr<Json::Value> root = Transform::parseBody(text);
  if (!root.ok()) {
    config_->stats.json_skipped_invalid->inc();  // as Kong: logged there, passed unchanged
    out.move(body_);
  } else if (!Transform::applyJsonRules(*root, rules_->json, Transform::RenameMissing::Skip)) {
    config_->stats.json_skipped_not_object->inc();
    out.move(body_);
  } else {
    config_->stats.json_transformed->inc();
    body_.drain(body_.length());
    std::string json;
    json.reserve(text.size() + 64);
    root->appendJson(json);
    out.add(json);
  }
  // The body is complete here: its length is known, whatever the upstream's framing was.
  if (trailers_follow) {
    headers_->remove("content-length");
  } else {
    headers_->set("content-length", absl::StrCat(out.length()));
  }
  headers_->remove("transfer-encoding");
  headers_ = nullptr;
}

}  // namespace ResponseTransformer
}  // namespace Extensions
}  // namespace sluice
