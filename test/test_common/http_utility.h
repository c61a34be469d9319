#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace sluice {
namespace Testing {

// One HTTP/1 response as a client received it.
struct Response {
  uint32_t status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;

  // Value of the first header `name`, or "".
  std::string get(absl::string_view name) const;
  bool has(absl::string_view name) const;
};

// Parses the complete responses at the start of `raw`: bodies framed by content-length or
// chunked transfer-encoding (trailers skipped), else empty. `head[i]` marks the i-th response
// as the answer to a HEAD request (no body whatever its headers say). An incomplete response at
// the end is left out.
std::vector<Response> parseResponses(absl::string_view raw, const std::vector<bool>& head = {});

}  // namespace Testing
}  // namespace sluice
