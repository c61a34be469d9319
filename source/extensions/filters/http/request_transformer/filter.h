#pragma once

#include <string>
#include <vector>

#include "source/common/buffer/buffer.h"
#include "source/common/http/filter.h"
#include "source/extensions/filters/http/common/transform.h"
#include "source/extensions/filters/http/request_transformer/config.h"

namespace sluice {
namespace Extensions {
namespace RequestTransformer {

// An application/x-www-form-urlencoded string (a query string or a form body) as its pairs, for
// Kong's edits by name. Untouched pairs are written back exactly as they came; names compare
// decoded ('+' and %XX); new values are percent-encoded.
class FormPairs {
 public:
  explicit FormPairs(absl::string_view text);
  bool has(absl::string_view name) const;
  // The first value of `name`, decoded; nullopt when absent.
  absl::optional<std::string> first(absl::string_view name) const;
  void remove(absl::string_view name);
  // Kong's rename: the pairs of `from` take the name `to` (whose own pairs go); when `from` is
  // absent, `to` is removed all the same.
  void rename(absl::string_view from, absl::string_view to);
  // One pair `name=value` where the first pair of `name` stood; false when absent.
  bool replace(absl::string_view name, absl::string_view value);
  void add(absl::string_view name, absl::string_view value);
  // Kong's append: another pair; a name present only without a value ("?flag") is replaced.
  void append(absl::string_view name, absl::string_view value);
  // Appends the raw pairs of `other`.
  void appendAll(const FormPairs& other);
  std::string toString() const;
  bool empty() const { return pairs_.empty(); }

 private:
  struct Pair {
    std::string raw;   // "k=v", "k" or "k=" as received or encoded
    std::string name;  // decoded
  };
  std::vector<Pair> pairs_;
};

using Transform::decodeFormComponent;
using Transform::encodeFormComponent;
// `uri` as a path to send upstream: characters a path can't carry are percent-encoded. False
// when it does not start with "/" or has a "." or ".." segment (also %2E-encoded): a template
// filled from the request must not climb out of the path the route allows.
bool safePath(absl::string_view uri, std::string& out);

// Kong's request-transformer (docs/configuration.md, "request_transformer"): rewrites the
// method, path, headers, query string and a JSON or form body before the request goes on.
// Templates render from the request as it arrived. Headers and query string are changed at
// header time; a body rule holds the headers until the whole body is in (at most
// max_body_bytes, else 413), rewrites it and fixes content-length. No body rule: the body
// streams untouched.
class RequestTransformerFilter : public Http::StreamDecoderFilter {
 public:
  explicit RequestTransformerFilter(TransformConfigConstSharedPtr config)
      : listener_config_(std::move(config)) {}

  Http::FilterHeadersStatus decodeHeaders(Http::RequestHeaderMap& headers,
                                          bool end_stream) override;
  Http::FilterDataStatus decodeData(Buffer::Instance& data, bool end_stream) override;
  Http::FilterTrailersStatus decodeTrailers(Http::HeaderMap& trailers) override;
  void setDecoderFilterCallbacks(Http::StreamDecoderFilterCallbacks& cb) override {
    callbacks_ = &cb;
  }

 private:
  enum class BodyKind { None, Json, Form };
  // Values of the rules, rendered from the request before anything changes.
  struct Rendered {
    std::vector<std::string> header_replace, header_add, header_append;
    std::vector<std::string> query_replace, query_add, query_append;
    std::vector<std::string> body_replace, body_add, body_append;
  };
  bool render(const Http::RequestHeaderMap& headers);
  void transformHeaders(Http::RequestHeaderMap& headers);
  void transformQuery(Http::RequestHeaderMap& headers, const FormPairs* moved_form);
  // Rewrites the buffered body into `out`; false when a local reply was sent.
  bool finishBody(Buffer::Instance& out);

  TransformConfigConstSharedPtr listener_config_;
  const TransformConfig* config_ = nullptr;
  Http::StreamDecoderFilterCallbacks* callbacks_ = nullptr;
  Http::RequestHeaderMap* headers_ = nullptr;
  Rendered rendered_;
  std::string rendered_uri_;  // path and query, when replace.uri is set
  BodyKind body_kind_ = BodyKind::None;
  bool buffering_ = false;
  Buffer::OwnedImpl body_;
};

}  // namespace RequestTransformer
}  // namespace Extensions
}  // namespace sluice
