#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "source/common/buffer/buffer.h"
#include "source/common/event/dispatcher.h"
#include "source/common/http/filter.h"
#include "source/extensions/filters/http/cache/cache_control.h"
#include "source/extensions/filters/http/cache/config.h"
#include "source/extensions/filters/http/cache/store.h"

namespace sluice {
namespace Extensions {
namespace Cache {

// What every stream of a listener's cache filter shares: the listener's config (routes and
// virtual hosts may bring their own), the process's store, and the listener's claim on the
// store's capacity (its max_bytes, released with the config).
struct FilterConfig {
  CacheConfigConstSharedPtr config;
  CacheStoreSharedPtr store;
  std::shared_ptr<CapacityClaim> claim;
};
using FilterConfigConstSharedPtr = std::shared_ptr<const FilterConfig>;

// X-Cache-Status values (Kong's meanings).
enum class CacheStatus : uint8_t {
  None,     // the filter does not take part (disabled, no route, a reply before it ran)
  Miss,     // cacheable, not in the cache: fetched upstream
  Hit,      // answered from the cache (fresh, or stale within a stale window)
  Refresh,  // in the cache but had to go upstream (stale, or the request asked for it)
  Bypass,   // the request or the response is not cacheable by the config
};

// `cache`: Kong's proxy-cache on the process's shared store, with RFC 9111 when cache_control
// is on (docs/configuration.md, "cache"). On the request path it answers hits itself
// (decodeHeaders: the stored headers and the shared body, no upstream), makes concurrent misses
// of one key wait for one fetch (the waiters resume on their own worker), and prepares what
// goes upstream (validators of a stale entry; the client's own conditionals are evaluated here).
// On the response path it copies a cacheable body as it passes (never holding the response),
// gives the copy up past max_object_bytes or at trailers, stores it at the end, and replaces
// an upstream 304 (revalidation) or failure (stale-if-error) by the stored response.
// Worker-local, one per stream.
class CacheFilter : public Http::StreamFilter {
 public:
  explicit CacheFilter(FilterConfigConstSharedPtr config) : config_(std::move(config)) {}
  ~CacheFilter() override;

  // StreamDecoderFilter
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

  // StreamEncoderFilter
  Http::FilterHeadersStatus encodeHeaders(Http::ResponseHeaderMap& headers,
                                          bool end_stream) override;
  Http::FilterDataStatus encodeData(Buffer::Instance& data, bool end_stream) override;
  Http::FilterTrailersStatus encodeTrailers(Http::HeaderMap& trailers) override;
  void setEncoderFilterCallbacks(Http::StreamEncoderFilterCallbacks& cb) override {
    encoder_callbacks_ = &cb;
  }

  void onDestroy() override;

 private:
  // What a stored entry is good for, for this request.
  enum class Usability { Fresh, StaleWhileRevalidate, Stale, Unusable };
  // Where the request goes after the lookup.
  enum class Next { Served, Upstream, Wait };

  // Looks the key up and answers, waits or prepares the upstream request. `may_wait`: false
  // once the request waited already.
  Next lookupAndDecide(bool may_wait);
  Usability usability(const CachedResponse& entry, SteadyTime now) const;
  // Removes the client's conditionals (kept to be evaluated here) and adds the validators of
  // entry_ when it has some.
  void prepareUpstreamRequest();
  // Answers with `entry` (a 304 when the client's conditionals match it).
  void serve(const CachedResponse& entry, CacheStatus status);
  // The client's If-None-Match / If-Modified-Since against a stored (or received) 200.
  bool clientConditionMatches(uint32_t status, absl::string_view etag, int64_t last_modified) const;
  void onWaitDone(bool timed_out);
  // The response replaces the one held (the stored entry for a revalidation's 304 or an
  // upstream failure), sent from the event loop (not from inside the upstream's callbacks).
  void replaceWith(CachedResponseConstSharedPtr entry, CacheStatus status);
  // Builds the entry to store from the upstream response's headers; null when it is not
  // storable (the reason is the response's X-Cache-Status: Bypass).
  std::unique_ptr<CachedResponse> storableEntry(const Http::ResponseHeaderMap& headers,
                                                bool end_stream, std::vector<std::string>& vary);
  // A stored entry refreshed by the headers of a 304 (RFC 9111 4.3.4).
  CachedResponseConstSharedPtr refreshedEntry(const CachedResponse& stored,
                                              const Http::ResponseHeaderMap& not_modified);
  void finishStore();
  void abandonStore();
  // The leader's fetch ended: the requests waiting for it resume.
  void endFetch();
  void setStatusHeaders(Http::ResponseHeaderMap& headers, CacheStatus status,
                        absl::string_view digest);
  void count(CacheStatus status);
  const std::string& baseDigest();
  SteadyTime now() { return decoder_callbacks_->dispatcher().now(); }

  FilterConfigConstSharedPtr config_;
  Http::StreamDecoderFilterCallbacks* decoder_callbacks_ = nullptr;
  Http::StreamEncoderFilterCallbacks* encoder_callbacks_ = nullptr;
  // This stream's config: the route's (or its virtual host's), else the listener's.
  const CacheConfig* cfg_ = nullptr;
  CacheStore* store_ = nullptr;
  CacheStatus status_ = CacheStatus::None;
  bool head_ = false;
  bool destroyed_ = false;
  // A response of the filter's own (hit, 304, replacement) is on its way through the encoders.
  bool serving_ = false;
  // Request: Cache-Control (cache_control on), Authorization present (RFC 9111 3.5).
  RequestCacheControl request_cc_;
  bool authorization_ = false;
  // The client's conditionals, removed from the upstream request (evaluated here).
  std::string client_inm_;
  int64_t client_ims_ = -1;
  bool has_client_inm_ = false;
  bool conditionals_stripped_ = false;
  // The key: base (route, consumer, host, path, query, vary_headers) and the one looked up
  // (the base, or a variant under a Vary marker); its shard.
  std::string base_key_;
  std::string key_;
  std::string digest_;
  size_t shard_ = 0;
  const CachedResponse* marker_ = nullptr;
  std::vector<std::string> marker_vary_;
  // The entry found (stale, or not usable), kept for revalidation and stale-if-error.
  CachedResponseConstSharedPtr entry_;
  bool revalidating_ = false;
  std::chrono::system_clock::time_point request_time_;
  // Collapsing: this request fetches the key for others (fetch_id_), or waits for a fetch.
  bool leader_ = false;
  uint64_t fetch_id_ = 0;
  std::string fetch_key_;
  WaiterSharedPtr waiter_;
  Event::TimerPtr wait_timer_;
  // Response: the entry being filled as the body passes.
  std::unique_ptr<CachedResponse> pending_;
  std::vector<std::string> pending_vary_;
  Buffer::OwnedImpl copy_;
  bool storing_ = false;
  // The upstream's 200 turned into a 304 for this client (its stripped conditionals matched):
  // the body is still copied for the store, not sent.
  bool client_not_modified_ = false;
  // ... and its 304 is held until the body is stored (the client, done with a 304, may ask
  // again at once, or close the connection, which would abort the store).
  bool holding_not_modified_ = false;
  // A replacement waiting for the event loop.
  bool replacing_ = false;
  CachedResponseConstSharedPtr replacement_;
  CacheStatus replacement_status_ = CacheStatus::None;
  Event::TimerPtr replace_timer_;
};

}  // namespace Cache
}  // namespace Extensions
}  // namespace sluice
