#include "test/test_common/http_utility.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace sluice {
namespace Testing {

std::string Response::get(absl::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

bool Response::has(absl::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return true;
  }
  return false;
}

namespace {

// Decodes a chunked body at the start of `rest`. Returns false if it is incomplete.
bool readChunked(absl::string_view& rest, std::string& body) {
  while (true) {
    const size_t eol = rest.find("\r\n");
    if (eol == absl::string_view::npos) return false;
    absl::string_view size_text = rest.substr(0, eol);
    size_text = size_text.substr(0, size_text.find(';'));
    size_t size = 0;
    if (!absl::SimpleHexAtoi(size_text, &size)) return false;
    if (size == 0) {
      // Trailers (if any) end with an empty line.
      const size_t end = rest.find("\r\n\r\n", eol);
      if (end == absl::string_view::npos) return false;
      rest.remove_prefix(end + 4);
      return true;
    }
    if (rest.size() < eol + 2 + size + 2) return false;
    body.append(rest.data() + eol + 2, size);
    rest.remove_prefix(eol + 2 + size + 2);
  }
}

}  // namespace

std::vector<Response> parseResponses(absl::string_view raw, const std::vector<bool>& head) {
  std::vector<Response> out;
  while (true) {
    const size_t end = raw.find("\r\n\r\n");
    if (end == absl::string_view::npos) break;
    std::vector<absl::string_view> lines = absl::StrSplit(raw.substr(0, end), "\r\n");
    Response r;
    std::vector<absl::string_view> status_line = absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
    if (status_line.size() < 2 || !absl::SimpleAtoi(status_line[1], &r.status)) break;
    for (size_t i = 1; i < lines.size(); ++i) {
      const size_t colon = lines[i].find(':');
      if (colon == absl::string_view::npos) continue;
      r.headers.emplace_back(absl::AsciiStrToLower(lines[i].substr(0, colon)),
                             std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1))));
    }
    const bool is_head = out.size() < head.size() && head[out.size()];
    absl::string_view rest = raw.substr(end + 4);
    if (!is_head && absl::EqualsIgnoreCase(r.get("transfer-encoding"), "chunked")) {
      if (!readChunked(rest, r.body)) break;
    } else {
      size_t length = 0;
      if (!is_head && r.has("content-length") &&
          !absl::SimpleAtoi(r.get("content-length"), &length)) {
        break;
      }
      if (rest.size() < length) break;
      r.body = std::string(rest.substr(0, length));
      rest.remove_prefix(length);
    }
    raw = rest;
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace Testing
}  // namespace sluice
