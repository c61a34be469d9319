#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "source/common/http/filter.h"
#include "source/common/stats/stats.h"
#include "source/extensions/filters/http/cache/config.h"
#include "source/extensions/filters/http/cache/filter.h"
#include "source/extensions/filters/http/cache/store.h"

namespace sluice {
namespace Extensions {
namespace Cache {
namespace {

Admin::Response json(uint32_t status, std::string body) {
  Admin::Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  r.body += "\n";
  return r;
}

bool isDigest(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!absl::ascii_isxdigit(c)) return false;
  }
  return true;
}

// The admin endpoint of the process's store: GET /cache (its figures), DELETE /cache (purge
// everything), DELETE /cache?key=<X-Cache-Key> (purge one key: its response, or every variant
// of a key whose responses vary).
Admin::Response handleAdmin(CacheStore& store, const std::string& method,
                            const std::string& query) {
  if (method == "GET" || method == "HEAD") {
    return json(200, absl::StrCat("{\"entries\":", store.entries(), ",\"bytes\":", store.bytes(),
                                  ",\"capacity\":", store.capacity(), "}"));
  }
  if (method != "DELETE") {
    Admin::Response r;
    r.status = 405;
    r.body = "use GET or DELETE\n";
    return r;
  }
  absl::string_view key;
  bool has_key = false;
  for (absl::string_view p : absl::StrSplit(query, '&')) {
    if (p.substr(0, 4) == "key=") {
      key = p.substr(4);
      has_key = true;
    } else if (p == "key") {
      has_key = true;
    }
  }
  if (!has_key) {
    return json(200, absl::StrCat("{\"purged\":", store.purgeAll(), "}"));
  }
  if (!isDigest(key)) {
    return json(400, "{\"message\":\"key: expected the 64 hex digits of an X-Cache-Key\"}");
  }
  const size_t n = store.purgeDigest(absl::AsciiStrToLower(key));
  if (n == 0) return json(404, "{\"message\":\"no entry for this key\"}");
  return json(200, absl::StrCat("{\"purged\":", n, "}"));
}

// `cache`: Kong's proxy-cache on one in-memory store per process.
class CacheFactory : public Http::NamedHttpFilterConfigFactory {
 public:
  std::string name() const override { return kFilterName; }

  absl::StatusOr<Http::FilterFactoryCb> createFilterFactory(const google::protobuf::Message& config,
                                                            const std::string& path,
                                                            Http::FactoryContext& ctx) override {
    // Validated already (validateConfig); compiled again for this listener's streams.
    Config::ErrorList errors;
    CacheConfigConstSharedPtr compiled = compileConfig(
        static_cast<const ConfigProto&>(config),
        [&path](absl::string_view f) { return absl::StrCat(path, ".config.", f); }, errors);
    RETURN_IF_ERRORS(errors);
    // The store belongs to the process, not to a config version: a push keeps what it holds.
    CacheStoreSharedPtr store;
    if (ctx.singletons != nullptr) {
      Stats::Store* stats = ctx.stats;
      Admin::HandlerRegistry* admin = ctx.admin_handlers;
      store = ctx.singletons->getOrCreate<CacheStore>("cache.store", [stats, admin]() {
        auto s = std::make_shared<CacheStore>(stats != nullptr ? CacheStats::create(*stats)
                                                               : CacheStats::discarded());
        if (admin != nullptr) {
          std::weak_ptr<CacheStore> weak = s;
          admin->add(
              "/cache",
              "GET|DELETE /cache         the response cache: its size (GET), purge it "
              "all (DELETE) or one key (DELETE ?key=<X-Cache-Key>)",
              [weak](const std::string& method, const std::string&, const std::string& query) {
                CacheStoreSharedPtr live = weak.lock();
                if (live == nullptr) {
                  Admin::Response r;
                  r.status = 404;
                  r.body = "no cache\n";
                  return r;
                }
                return handleAdmin(*live, method, query);
              });
        }
        return s;
      });
    } else {
      store = std::make_shared<CacheStore>(CacheStats::discarded());
    }
    auto fc = std::make_shared<FilterConfig>();
    fc->config = std::move(compiled);
    fc->claim = store->claimCapacity(fc->config->max_bytes);
    fc->store = std::move(store);
    FilterConfigConstSharedPtr shared = std::move(fc);
    return Http::FilterFactoryCb([shared](Http::FilterChainFactoryCallbacks& cb) {
      cb.addStreamFilter(std::make_shared<CacheFilter>(shared));
    });
  }
};

REGISTER_HTTP_FILTER(CacheFactory);

}  // namespace
}  // namespace Cache
}  // namespace Extensions
}  // namespace sluice
