#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/base/call_once.h"
#include "absl/strings/string_view.h"
#include "source/common/config/utility.h"
#include "source/common/http/batch_sink.h"
#include "source/common/router/config.h"
#include "source/extensions/filters/http/http_log/config.pb.h"

namespace sluice {
namespace Extensions {
namespace HttpLog {

// The filter's name in http_filters and filter_config.
inline constexpr char kFilterName[] = "http_log";
// Stats of its sinks: http_log.<host:port/path>.entries_sent, ...
inline constexpr char kStatPrefix[] = "http_log";

using ConfigProto = sluice::extensions::filters::http::http_log::v1::HttpLog;

// One compiled config: the listener's, or a route's / virtual host's, which replaces it for its
// routes. Immutable but for the sink, found once.
struct LogConfig : public Router::RouteSpecificFilterConfig {
  bool disabled = false;
  Http::BatchSinkSettings settings;
  // Equal for configs that may share a process-wide sink (the settings, the CA bundle).
  std::string sink_key;
  // The sink, found (or made) on first use through the process's SingletonManager: the
  // listener's by the factory on the main thread, a route's by the first request that logs
  // for it.
  mutable absl::once_flag sink_once;
  mutable Http::BatchSinkSharedPtr sink;
};
using LogConfigConstSharedPtr = std::shared_ptr<const LogConfig>;

// Compiles `config`; errors go to `errors` at `field(<field of the config>)`, all of them. With
// `read_files`, reads ca_file and builds the TLS of an https:// endpoint. Null on error.
LogConfigConstSharedPtr compileConfig(const ConfigProto& config,
                                      const std::function<std::string(absl::string_view)>& field,
                                      bool read_files, Config::ErrorList& errors);

}  // namespace HttpLog
}  // namespace Extensions
}  // namespace sluice
