#include "source/extensions/filters/http/cache/filter.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "source/common/http/policy_filter_type.h"
#include "source/common/router/config.h"
#include "source/extensions/filters/http/cache/key.h"

namespace sluice {
namespace Extensions {
namespace Cache {
namespace {

constexpr absl::string_view kStatusHeader = "x-cache-status";
constexpr absl::string_view kKeyHeader = "x-cache-key";
// Bytes counted per entry beyond its key, headers and body (the node, the maps, the struct).
constexpr uint64_t kEntryOverhead = 256;
// The auth filter's name (a route with its own auth config must have a consumer to be cached).
constexpr absl::string_view kAuthFilter = "auth";

absl::string_view statusName(CacheStatus s) {
  switch (s) {
    case CacheStatus::Miss:
      return "Miss";
    case CacheStatus::Hit:
      return "Hit";
    case CacheStatus::Refresh:
      return "Refresh";
    case CacheStatus::Bypass:
      return "Bypass";
    case CacheStatus::None:
      break;
  }
  return "";
}

// Response fields never stored: framing, hop-by-hop, what the cache computes (Age, X-Cache-*),
// what belongs to one client (Set-Cookie, X-Request-Id: each hit gets its own).
bool notStored(absl::string_view key) {
  return key == "content-length" || key == "transfer-encoding" || key == "age" ||
         key == "set-cookie" || key == "set-cookie2" || key == kStatusHeader || key == kKeyHeader ||
         key == "x-request-id" || Http::isHopByHop(key);
}

// Fields a 304 from the cache repeats from the stored 200 (RFC 9110 15.4.5).
bool inNotModified(absl::string_view key) {
  return key == "cache-control" || key == "content-location" || key == "date" || key == "etag" ||
         key == "expires" || key == "vary" || key == "last-modified";
}

// Fields a 304 does not update in the stored response (RFC 9111 3.2: what describes the stored
// content itself).
bool keptOnUpdate(absl::string_view key) {
  return notStored(key) || key == "content-encoding" || key == "content-range" ||
         key == "content-type";
}

int64_t epochNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t toSeconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// Freshness of a response (RFC 9111 4.2) into `e`: lifetime, corrected initial age, stale
// windows, the directives that forbid serving it stale or to an Authorization request. False
// when it is not storable for its Cache-Control (with `cache_control` on) or it is not fresh on
// arrival.
bool computeFreshness(const CacheConfig& cfg, const Http::HeaderMap& h,
                      std::chrono::system_clock::time_point request_time, bool authorization,
                      CachedResponse& e) {
  e.stale_while_revalidate = cfg.stale_while_revalidate;
  e.stale_if_error = cfg.stale_if_error;
  if (!cfg.cache_control) {
    // Kong: cache_ttl, whatever the response says; the age counts from now.
    e.lifetime = cfg.cache_ttl;
    e.initial_age = Millis(0);
    return true;
  }
  std::string scratch;
  const ResponseCacheControl cc =
      parseResponseCacheControl(joinedHeader(h, "cache-control", scratch));
  if (cc.no_store || cc.is_private || cc.no_cache) return false;
  if (h.has("set-cookie") && !cc.is_public) return false;
  e.authorized_reuse = cc.is_public || cc.must_revalidate || cc.s_maxage.has_value();
  if (authorization && !e.authorized_reuse) return false;  // RFC 9111 3.5
  e.no_stale = cc.must_revalidate || cc.proxy_revalidate || cc.s_maxage.has_value();
  if (cc.stale_while_revalidate)
    e.stale_while_revalidate = std::chrono::seconds(*cc.stale_while_revalidate);
  if (cc.stale_if_error) e.stale_if_error = std::chrono::seconds(*cc.stale_if_error);

  const int64_t response_time = epochNow();
  const absl::optional<int64_t> date = parseHttpDate(h.get("date"));
  const int64_t date_value = date.value_or(response_time);
  int64_t lifetime = 0;
  if (cc.s_maxage) {
    lifetime = *cc.s_maxage;
  } else if (cc.max_age) {
    lifetime = *cc.max_age;
  } else if (h.has("expires")) {
    // The last Expires line counts (as Kong); one that is not a date means already expired.
    absl::string_view expires;
    for (const Http::HeaderEntry& x : h.entries()) {
      if (x.key == "expires") expires = x.value;
    }
    const absl::optional<int64_t> at = parseHttpDate(expires);
    lifetime = at ? *at - date_value : 0;
  }
  // No explicit lifetime: not stored (as Kong; no heuristic freshness).
  if (lifetime <= 0) return false;
  int64_t age_value = 0;
  if (const Http::HeaderEntry* age = h.find("age"); age != nullptr) {
    if (!absl::SimpleAtoi(age->value, &age_value) || age_value < 0) age_value = 0;
  }
  // RFC 9111 4.2.3.
  const int64_t apparent_age = std::max<int64_t>(0, response_time - date_value);
  const int64_t response_delay = std::max<int64_t>(0, response_time - toSeconds(request_time));
  const int64_t corrected_age_value = age_value + response_delay;
  const int64_t corrected_initial_age = std::max(apparent_age, corrected_age_value);
  e.lifetime = std::chrono::seconds(std::min(lifetime, kMaxDeltaSeconds));
  e.initial_age = std::chrono::seconds(std::min(corrected_initial_age, kMaxDeltaSeconds));
  return e.initial_age < e.lifetime;
}

// Validators and the headers to store, from a response's header map.
void takeHeaders(const Http::HeaderMap& h, CachedResponse& e) {
  e.headers.clear();
  bool has_date = false;
  for (const Http::HeaderEntry& x : h.entries()) {
    if (notStored(x.key)) continue;
    has_date |= x.key == "date";
    e.headers.push_back(x);
  }
  if (!has_date) e.headers.push_back(Http::HeaderEntry{"date", formatHttpDate(epochNow())});
  e.etag = std::string(h.get("etag"));
  e.last_modified = std::string(h.get("last-modified"));
  const absl::optional<int64_t> lm = parseHttpDate(e.last_modified);
  e.last_modified_epoch = lm.value_or(-1);
}

uint64_t chargeOf(const CachedResponse& e, size_t key_size) {
  uint64_t n = kEntryOverhead + 2 * key_size + e.body_size + e.key_digest.size();
  for (const Http::HeaderEntry& h : e.headers) n += h.key.size() + h.value.size() + 32;
  for (const std::string& v : e.vary) n += v.size() + 32;
  return n;
}

// The key buffers of a lookup (a hit allocates none): the base key, and a variant's.
thread_local std::string t_key;
thread_local std::string t_variant;

}  // namespace

CacheFilter::~CacheFilter() = default;

// ---- request path ------------------------------------------------------------------------

Http::FilterHeadersStatus CacheFilter::decodeHeaders(Http::RequestHeaderMap& headers,
                                                     bool end_stream) {
  const Router::RouteEntry* route = decoder_callbacks_->route();
  if (route == nullptr) {
    return Http::FilterHeadersStatus::Continue;  // nothing to cache: no upstream
  }
  const CacheConfig* route_config = route->perFilterConfig<CacheConfig>(kFilterName);
  const CacheConfig* cfg = route_config != nullptr ? route_config : config_->config.get();
  if (cfg->disabled) {
    return Http::FilterHeadersStatus::Continue;
  }
  cfg_ = cfg;
  store_ = config_->store.get();
  head_ = headers.method == "HEAD";
  const bool method = head_ ? cfg_->head : (cfg_->get && headers.method == "GET");
  // One pass over the request's headers for the ones the cache reads.
  bool range = false;
  const Http::HeaderEntry* cc = nullptr;
  const Http::HeaderEntry* pragma = nullptr;
  const Http::HeaderEntry* inm = nullptr;
  const Http::HeaderEntry* ims = nullptr;
  int cc_lines = 0;
  int inm_lines = 0;
  for (const Http::HeaderEntry& e : headers.entries()) {
    const absl::string_view k = e.key;
    if (k.size() == 5) {
      range |= k == "range";
    } else if (k.size() == 13) {
      if (k == "cache-control") {
        cc = cc == nullptr ? &e : cc;
        ++cc_lines;
      } else if (k == "if-none-match") {
        inm = inm == nullptr ? &e : inm;
        ++inm_lines;
      } else if (k == "authorization") {
        authorization_ = true;
      }
    } else if (k.size() == 6 && k == "pragma") {
      pragma = &e;
    } else if (k.size() == 17 && k == "if-modified-since") {
      ims = &e;
    }
  }
  // A request with a body or a Range is not answered from (nor stored into) the cache.
  if (!method || !end_stream || range) {
    status_ = CacheStatus::Bypass;
    return Http::FilterHeadersStatus::Continue;
  }
  std::string scratch;
  if (cfg_->cache_control) {
    if (cc != nullptr) {
      request_cc_ =
          parseRequestCacheControl(cc_lines == 1 ? absl::string_view(cc->value)
                                                 : joinedHeader(headers, "cache-control", scratch));
    } else if (pragma != nullptr &&
               absl::AsciiStrToLower(pragma->value).find("no-cache") != std::string::npos) {
      request_cc_.no_cache = true;  // RFC 9111 5.4: Pragma without Cache-Control
    }
    if (request_cc_.no_store) {
      status_ = CacheStatus::Bypass;
      return Http::FilterHeadersStatus::Continue;
    }
  } else {
    authorization_ = false;  // RFC 9111 3.5 applies with cache_control only (Kong)
  }
  const absl::string_view consumer =
      decoder_callbacks_->streamInfo().filter_state.getString(Http::FilterStateNames::kConsumer);
  if (consumer.empty()) {
    // A route that authenticates but whose consumer is unknown here (auth after cache in the
    // chain): one consumer's response could reach another. Never cached.
    const auto* auth = route->perFilterConfig<Http::PolicyRouteConfig>(kAuthFilter);
    if (auth != nullptr && !auth->disabled) {
      status_ = CacheStatus::Bypass;
      return Http::FilterHeadersStatus::Continue;
    }
  }
  // The client's conditionals, answered here on a hit, removed upstream otherwise.
  if (inm != nullptr) {
    client_inm_ =
        inm_lines == 1 ? inm->value : std::string(joinedHeader(headers, "if-none-match", scratch));
    has_client_inm_ = true;
  }
  if (ims != nullptr) client_ims_ = parseHttpDate(ims->value).value_or(-1);
  t_key.clear();
  appendBaseKey(*cfg_, headers, route->name(), consumer, t_key);
  shard_ = CacheStore::shardOf(t_key);
  switch (lookupAndDecide(true)) {
    case Next::Served:
    case Next::Wait:
      return Http::FilterHeadersStatus::StopIteration;
    case Next::Upstream:
      break;
  }
  return Http::FilterHeadersStatus::Continue;
}

CacheFilter::Next CacheFilter::lookupAndDecide(bool may_wait) {
  // The first call reads the base key from t_key (a hit copies nothing); later ones (after a
  // wait, on another event) from base_key_.
  const bool first = base_key_.empty();
  const SteadyTime t = now();
  for (int attempt = 0; attempt < 4; ++attempt) {
    const std::string& base = first ? t_key : base_key_;
    CachedResponseConstSharedPtr e = store_->lookup(shard_, base, t);
    bool variant = false;
    if (e != nullptr && e->vary_marker) {
      // The key's responses vary on request headers: look up this request's variant.
      marker_ = e.get();
      marker_vary_ = e->vary;
      t_variant = base;
      appendVariantKey(decoder_callbacks_->requestHeaders(), e->vary, t_variant);
      variant = true;
      e = store_->lookup(shard_, t_variant, t);
    }
    const Usability u = e != nullptr ? usability(*e, t) : Usability::Unusable;
    if (u == Usability::Fresh) {
      serve(*e, CacheStatus::Hit);
      return Next::Served;
    }
    // Not a hit: the keys go with the stream from here.
    if (first) base_key_ = t_key;
    key_ = variant ? t_variant : base_key_;
    entry_ = u == Usability::Unusable ? nullptr : e;
    status_ = entry_ != nullptr ? CacheStatus::Refresh : CacheStatus::Miss;
    if (u == Usability::StaleWhileRevalidate) {
      // One request refreshes it; the others get it stale meanwhile.
      switch (store_->joinFetch(shard_, key_, e.get(), nullptr, 0, &fetch_id_)) {
        case CacheStore::Join::Retry:
          continue;
        case CacheStore::Join::Lead:
          leader_ = true;
          fetch_key_ = key_;
          prepareUpstreamRequest();
          return Next::Upstream;
        case CacheStore::Join::Wait:
        case CacheStore::Join::Alone:
          store_->stats().stale_served->inc();
          serve(*e, CacheStatus::Hit);
          return Next::Served;
      }
    }
    if (cfg_->cache_control && request_cc_.only_if_cached) {
      serving_ = true;
      count(CacheStatus::Miss);
      decoder_callbacks_->sendLocalReply(
          504, "the response is not in the cache (only-if-cached)", absl::nullopt,
          [](Http::ResponseHeaderMap& h) { h.set(kStatusHeader, "Miss"); },
          Http::GatewayResponseType::IntegrationTimeout);
      return Next::Served;
    }
    if (head_) {
      // A HEAD never stores: it neither leads nor waits for a fetch.
      prepareUpstreamRequest();
      return Next::Upstream;
    }
    // A client that demands a response validated for it (no-cache) does not wait for a fetch
    // that may have started before it asked.
    const bool may_collapse =
        may_wait && cfg_->collapse_timeout.count() > 0 && !request_cc_.no_cache;
    WaiterSharedPtr waiter;
    if (may_collapse) {
      waiter = std::make_shared<Waiter>();
      waiter->dispatcher = &decoder_callbacks_->dispatcher();
      waiter->wake = [this]() { onWaitDone(false); };
    }
    const CacheStore::Join join =
        store_->joinFetch(shard_, key_, e.get(), waiter, cfg_->collapse_max_waiters, &fetch_id_);
    switch (join) {
      case CacheStore::Join::Retry:
        continue;
      case CacheStore::Join::Lead:
        leader_ = true;
        fetch_key_ = key_;
        break;
      case CacheStore::Join::Wait:
        waiter_ = std::move(waiter);
        fetch_key_ = key_;
        store_->stats().collapsed_waits->inc();
        wait_timer_ = decoder_callbacks_->dispatcher().createTimer([this]() { onWaitDone(true); });
        wait_timer_->enableTimer(cfg_->collapse_timeout);
        return Next::Wait;
      case CacheStore::Join::Alone:
        break;
    }
    prepareUpstreamRequest();
    return Next::Upstream;
  }
  // The entry kept changing under us: go upstream without collapsing.
  prepareUpstreamRequest();
  return Next::Upstream;
}

CacheFilter::Usability CacheFilter::usability(const CachedResponse& entry, SteadyTime t) const {
  if (authorization_ && !entry.authorized_reuse) return Usability::Unusable;  // RFC 9111 3.5
  const Millis age = entry.age(t);
  const Millis stale = age - entry.lifetime;
  if (cfg_->cache_control) {
    const RequestCacheControl& cc = request_cc_;
    if (cc.no_cache) return Usability::Stale;
    if (cc.max_age && age > std::chrono::seconds(*cc.max_age)) return Usability::Stale;
    if (cc.min_fresh && entry.lifetime - age < std::chrono::seconds(*cc.min_fresh)) {
      return Usability::Stale;
    }
    if (stale.count() > 0 && !entry.no_stale &&
        (cc.max_stale_any || (cc.max_stale && stale <= std::chrono::seconds(*cc.max_stale)))) {
      return Usability::Fresh;  // the client takes it stale
    }
  }
  if (stale.count() <= 0) return Usability::Fresh;
  if (!entry.no_stale && stale <= entry.stale_while_revalidate) {
    return Usability::StaleWhileRevalidate;
  }
  return Usability::Stale;
}

void CacheFilter::prepareUpstreamRequest() {
  request_time_ = std::chrono::system_clock::now();
  if (head_) return;  // a HEAD goes as it came (nothing of it is stored)
  Http::RequestHeaderMap& h = decoder_callbacks_->requestHeaders();
  // The response is fetched whole to be stored; the client's conditionals are evaluated here
  // against it.
  h.remove("if-none-match");
  h.remove("if-modified-since");
  conditionals_stripped_ = has_client_inm_ || client_ims_ >= 0;
  if (entry_ != nullptr && (!entry_->etag.empty() || !entry_->last_modified.empty())) {
    // Revalidation with the stored validators: a 304 refreshes the entry.
    if (!entry_->etag.empty()) h.set("if-none-match", entry_->etag);
    if (!entry_->last_modified.empty()) h.set("if-modified-since", entry_->last_modified);
    revalidating_ = true;
  }
}

void CacheFilter::onWaitDone(bool timed_out) {
  if (destroyed_ || waiter_ == nullptr) return;
  if (wait_timer_ != nullptr) wait_timer_->disableTimer();
  waiter_->wake = nullptr;
  if (timed_out) store_->leaveFetch(shard_, fetch_key_, waiter_.get());
  waiter_.reset();
  Next next;
  if (timed_out) {
    // Waited long enough: fetch it without collapsing (the stored entry, if any, still serves
    // as a validator).
    prepareUpstreamRequest();
    next = Next::Upstream;
  } else {
    next = lookupAndDecide(false);
  }
  if (next == Next::Upstream) decoder_callbacks_->continueDecoding();
}

// ---- answering from the cache ------------------------------------------------------------

bool CacheFilter::clientConditionMatches(uint32_t status, absl::string_view etag,
                                         int64_t last_modified) const {
  if (status != 200) return false;
  if (has_client_inm_) return ifNoneMatchMatches(client_inm_, etag);  // IMS ignored then
  return client_ims_ >= 0 && last_modified >= 0 && last_modified <= client_ims_;
}

void CacheFilter::serve(const CachedResponse& entry, CacheStatus status) {
  serving_ = true;
  status_ = status;
  count(status);
  auto h = std::make_unique<Http::ResponseHeaderMap>();
  const bool not_modified =
      clientConditionMatches(entry.status, entry.etag, entry.last_modified_epoch);
  if (not_modified) {
    h->status = 304;
    for (const Http::HeaderEntry& e : entry.headers) {
      if (inNotModified(e.key)) h->entries().push_back(e);
    }
  } else {
    h->status = entry.status;
    h->entries().reserve(entry.headers.size() + 4);
    h->entries() = entry.headers;
    if (entry.status >= 200 && entry.status != 204) {
      h->add("content-length", entry.content_length);
    }
  }
  const int64_t age_s = std::chrono::duration_cast<std::chrono::seconds>(entry.age(now())).count();
  h->add("age", absl::StrCat(std::max<int64_t>(0, age_s)));
  // A fresh map without them (never stored): added, not set.
  h->add(kStatusHeader, statusName(status));
  if (cfg_->expose_cache_key) h->add(kKeyHeader, entry.key_digest);
  if (head_ || not_modified || entry.body == nullptr) {
    decoder_callbacks_->encodeHeaders(std::move(h), true);
    return;
  }
  decoder_callbacks_->encodeHeaders(std::move(h), false);
  if (destroyed_) return;
  Buffer::OwnedImpl body;
  body.addShared(*entry.body);  // a reference to the stored bytes, not a copy
  decoder_callbacks_->encodeData(body, true);
}

void CacheFilter::setStatusHeaders(Http::ResponseHeaderMap& headers, CacheStatus status,
                                   absl::string_view digest) {
  headers.set(kStatusHeader, statusName(status));
  if (cfg_->expose_cache_key && !digest.empty()) headers.set(kKeyHeader, digest);
}

void CacheFilter::count(CacheStatus status) {
  const CacheStats& s = store_->stats();
  switch (status) {
    case CacheStatus::Hit:
      s.hits->inc();
      break;
    case CacheStatus::Miss:
      s.misses->inc();
      break;
    case CacheStatus::Refresh:
      s.refreshes->inc();
      break;
    case CacheStatus::Bypass:
      s.bypasses->inc();
      break;
    case CacheStatus::None:
      break;
  }
}

const std::string& CacheFilter::baseDigest() {
  if (digest_.empty() && !base_key_.empty()) digest_ = keyDigest(base_key_);
  return digest_;
}

void CacheFilter::replaceWith(CachedResponseConstSharedPtr entry, CacheStatus status) {
  replacing_ = true;
  replacement_ = std::move(entry);
  replacement_status_ = status;
  abandonStore();
  if (replace_timer_ == nullptr) {
    replace_timer_ = decoder_callbacks_->dispatcher().createTimer([this]() {
      if (destroyed_ || !replacing_) return;
      replacing_ = false;
      CachedResponseConstSharedPtr r = std::move(replacement_);
      serve(*r, replacement_status_);
    });
  }
  replace_timer_->enableTimer(std::chrono::milliseconds(0));
}

// ---- response path -----------------------------------------------------------------------

Http::FilterHeadersStatus CacheFilter::encodeHeaders(Http::ResponseHeaderMap& headers,
                                                     bool end_stream) {
  if (cfg_ == nullptr || serving_ || status_ == CacheStatus::None) {
    return Http::FilterHeadersStatus::Continue;  // not ours to look at, or our own answer
  }
  if (replacing_) {
    // A later response (a local reply) while a replacement waits: the replacement wins.
    return Http::FilterHeadersStatus::StopIteration;
  }
  abandonStore();  // a response that replaces one being stored
  if (status_ == CacheStatus::Bypass) {
    setStatusHeaders(headers, CacheStatus::Bypass, {});
    count(CacheStatus::Bypass);
    return Http::FilterHeadersStatus::Continue;
  }
  const Http::StreamInfo& info = decoder_callbacks_->streamInfo();
  const uint32_t code = headers.status;
  const bool failed =
      !info.response_flags.empty() || code == 500 || code == 502 || code == 503 || code == 504;
  if (failed && entry_ != nullptr && !entry_->no_stale &&
      entry_->staleness(now()) <= entry_->stale_if_error) {
    // stale-if-error: the stored response instead of the failure.
    store_->stats().stale_served->inc();
    endFetch();
    replaceWith(entry_, CacheStatus::Hit);
    return Http::FilterHeadersStatus::StopIteration;
  }
  if (revalidating_ && code == 304 && entry_ != nullptr && info.response_flags.empty()) {
    // The stored response is still good: refreshed with the 304's headers, stored again, and
    // sent whole (or as this client's own 304).
    CachedResponseConstSharedPtr fresh = refreshedEntry(*entry_, headers);
    if (fresh->lifetime.count() > 0) {
      store_->insert(shard_, key_, fresh, now());
    } else {
      store_->eraseIf(shard_, key_, entry_.get());  // the 304 made it unstorable
    }
    store_->stats().revalidated->inc();
    endFetch();
    replaceWith(std::move(fresh), CacheStatus::Refresh);
    return Http::FilterHeadersStatus::StopIteration;
  }
  const CacheStatus shown = [&]() {
    pending_ = storableEntry(headers, end_stream, pending_vary_);
    return pending_ != nullptr ? status_ : CacheStatus::Bypass;
  }();
  setStatusHeaders(headers, shown, cfg_->expose_cache_key ? baseDigest() : absl::string_view());
  count(shown);
  if (pending_ == nullptr || head_) {
    pending_.reset();
    endFetch();
  } else {
    storing_ = true;
  }
  if (conditionals_stripped_ && code == 200) {
    const absl::optional<int64_t> lm = parseHttpDate(headers.get("last-modified"));
    if (clientConditionMatches(200, headers.get("etag"), lm.value_or(-1))) {
      // The client has it: a 304 for it, while the body still fills the store.
      client_not_modified_ = true;
      holding_not_modified_ = storing_ && !end_stream;
      headers.status = 304;
      headers.removeIf([](const Http::HeaderEntry& e) {
        return !inNotModified(e.key) && !absl::StartsWith(e.key, "x-") && e.key != "age";
      });
    }
  }
  if (storing_ && end_stream) finishStore();
  return holding_not_modified_ ? Http::FilterHeadersStatus::StopIteration
                               : Http::FilterHeadersStatus::Continue;
}

Http::FilterDataStatus CacheFilter::encodeData(Buffer::Instance& data, bool end_stream) {
  if (cfg_ == nullptr || serving_) return Http::FilterDataStatus::Continue;
  if (replacing_) {
    data.drain(data.length());  // the failure's or the 304's body: replaced
    return Http::FilterDataStatus::StopIterationNoBuffer;
  }
  if (storing_) {
    if (copy_.length() + data.length() > cfg_->max_object_bytes) {
      // Too big to store: the copy goes, the response streams on untouched.
      abandonStore();
    } else {
      data.forEachSlice([this](absl::string_view s) { copy_.add(s); });
      if (end_stream) finishStore();
    }
  }
  if (client_not_modified_) {
    data.drain(data.length());  // the client has it
    if (holding_not_modified_) {
      if (!end_stream && storing_) return Http::FilterDataStatus::StopIterationNoBuffer;
      // Stored (or given up): the 304 goes now, this call's end follows it.
      holding_not_modified_ = false;
      encoder_callbacks_->continueEncoding();
      if (destroyed_) return Http::FilterDataStatus::StopIterationNoBuffer;
    }
  }
  return Http::FilterDataStatus::Continue;
}

Http::FilterTrailersStatus CacheFilter::encodeTrailers(Http::HeaderMap&) {
  if (cfg_ == nullptr || serving_) return Http::FilterTrailersStatus::Continue;
  if (replacing_) return Http::FilterTrailersStatus::StopIteration;
  // Responses with trailers are not stored (a hit could not give them back to HTTP/1.1
  // clients of a content-length body).
  abandonStore();
  if (holding_not_modified_) {
    holding_not_modified_ = false;
    encoder_callbacks_->continueEncoding();  // the 304 (the codecs drop what follows it)
  }
  return Http::FilterTrailersStatus::Continue;
}

std::unique_ptr<CachedResponse> CacheFilter::storableEntry(const Http::ResponseHeaderMap& h,
                                                           bool end_stream,
                                                           std::vector<std::string>& vary) {
  if (!decoder_callbacks_->streamInfo().response_flags.empty()) return nullptr;  // a failure
  if (!cfg_->cacheableStatus(h.status)) return nullptr;
  // Kong: exactly one Content-Type, of a configured type.
  if (h.count("content-type") != 1 ||
      !contentTypeMatches(cfg_->content_types, h.get("content-type"))) {
    return nullptr;
  }
  if (!parseVary(h, vary)) return nullptr;  // Vary: * is never stored
  uint64_t length = 0;
  const absl::string_view cl = h.get("content-length");
  if (!cl.empty() && absl::SimpleAtoi(cl, &length) && length > cfg_->max_object_bytes) {
    return nullptr;  // known up front: nothing is copied
  }
  auto e = std::make_unique<CachedResponse>();
  if (!computeFreshness(*cfg_, h, request_time_, authorization_, *e)) return nullptr;
  e->status = h.status;
  takeHeaders(h, *e);
  e->stored_at = now();
  e->key_digest = baseDigest();
  (void)end_stream;
  return e;
}

CachedResponseConstSharedPtr CacheFilter::refreshedEntry(const CachedResponse& stored,
                                                         const Http::ResponseHeaderMap& h304) {
  // The stored headers, each field the 304 carries replacing the stored lines of that name.
  Http::HeaderMap merged;
  for (const Http::HeaderEntry& e : stored.headers) {
    if (keptOnUpdate(e.key) || !h304.has(e.key)) merged.add(e.key, e.value);
  }
  for (const Http::HeaderEntry& e : h304.entries()) {
    if (!keptOnUpdate(e.key)) merged.add(e.key, e.value);
  }
  auto e = std::make_shared<CachedResponse>();
  if (!computeFreshness(*cfg_, merged, request_time_, authorization_, *e)) {
    // Not storable any more (the 304 says no-store, say): this client still gets the stored
    // response, refreshed, but it is not stored again.
    e->lifetime = Millis(0);
  }
  e->status = stored.status;
  takeHeaders(merged, *e);
  if (e->etag.empty()) e->etag = stored.etag;
  e->body =
      stored.body != nullptr ? stored.body->share() : Buffer::SharedSlicePtr(nullptr, nullptr);
  e->body_size = stored.body_size;
  e->content_length = stored.content_length;
  e->stored_at = now();
  e->key_digest = stored.key_digest;
  e->charge = chargeOf(*e, key_.size());
  return e;
}

void CacheFilter::finishStore() {
  storing_ = false;
  std::unique_ptr<CachedResponse> e = std::move(pending_);
  const size_t size = copy_.length();
  if (size > 0) {
    e->body =
        Buffer::SharedSlice::make(size, [this, size](char* dst) { copy_.copyOut(size, dst); });
  }
  copy_.clear();
  e->body_size = size;
  e->content_length = absl::StrCat(size);
  const SteadyTime t = now();
  std::string key = base_key_;
  if (!pending_vary_.empty()) {
    appendVariantKey(decoder_callbacks_->requestHeaders(), pending_vary_, key);
    if (marker_ == nullptr || marker_vary_ != pending_vary_) {
      // The base key now says which request headers its responses vary on.
      auto marker = std::make_shared<CachedResponse>();
      marker->vary_marker = true;
      marker->vary = pending_vary_;
      marker->key_digest = e->key_digest;
      marker->charge = chargeOf(*marker, base_key_.size());
      store_->insert(shard_, base_key_, std::move(marker), t);
    }
  }
  e->charge = chargeOf(*e, key.size());
  if (store_->insert(shard_, key, std::move(e), t)) store_->stats().stored->inc();
  endFetch();
}

void CacheFilter::abandonStore() {
  if (!storing_ && pending_ == nullptr) return;
  storing_ = false;
  pending_.reset();
  copy_.clear();
  endFetch();
}

void CacheFilter::endFetch() {
  if (!leader_) return;
  leader_ = false;
  store_->endFetch(shard_, fetch_key_, fetch_id_);
}

void CacheFilter::onDestroy() {
  if (destroyed_) return;
  destroyed_ = true;
  if (wait_timer_ != nullptr) wait_timer_->disableTimer();
  if (replace_timer_ != nullptr) replace_timer_->disableTimer();
  if (waiter_ != nullptr) {
    waiter_->wake = nullptr;
    store_->leaveFetch(shard_, fetch_key_, waiter_.get());
    waiter_.reset();
  }
  storing_ = false;
  pending_.reset();
  copy_.clear();
  endFetch();
}

}  // namespace Cache
}  // namespace Extensions
}  // namespace sluice
