#include "source/extensions/filters/http/cache/key.h"

#include <openssl/sha.h>

#include <algorithm>

#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace sluice {
namespace Extensions {
namespace Cache {
namespace {

void appendField(char tag, absl::string_view value, std::string& out) {
  // tag, length, ':', bytes: no value can run into the next field.
  out.push_back(tag);
  absl::StrAppend(&out, value.size());
  out.push_back(':');
  out.append(value.data(), value.size());
}

void appendLower(absl::string_view s, std::string& out) {
  const size_t at = out.size();
  out.append(s.data(), s.size());
  for (size_t i = at; i < out.size(); ++i) out[i] = absl::ascii_tolower(out[i]);
}

}  // namespace

void appendQueryKey(absl::string_view query, const std::vector<std::string>& params,
                    std::string& out) {
  absl::InlinedVector<absl::string_view, 8> pairs;
  for (absl::string_view p : absl::StrSplit(query, '&')) {
    if (!p.empty()) pairs.push_back(p);
  }
  std::sort(pairs.begin(), pairs.end());
  bool first = true;
  auto add = [&](absl::string_view p) {
    if (!first) out.push_back('&');
    first = false;
    out.append(p.data(), p.size());
  };
  if (params.empty()) {
    for (absl::string_view p : pairs) add(p);
    return;
  }
  for (const std::string& name : params) {
    for (absl::string_view p : pairs) {
      if (p.substr(0, p.find('=')) == name) add(p);
    }
  }
}

void appendHeadersKey(const Http::HeaderMap& request, const std::vector<std::string>& names,
                      std::string& out) {
  absl::InlinedVector<absl::string_view, 4> values;
  for (const std::string& name : names) {
    values.clear();
    for (const Http::HeaderEntry& e : request.entries()) {
      if (e.key == name) values.push_back(e.value);
    }
    out.push_back('\n');  // a header value never holds '\n' or '\r'
    if (values.empty()) continue;
    std::sort(values.begin(), values.end());
    out.append(name);
    out.push_back(':');
    for (size_t i = 0; i < values.size(); ++i) {
      if (i > 0) out.push_back('\r');
      out.append(values[i].data(), values[i].size());
    }
  }
}

void appendBaseKey(const CacheConfig& config, const Http::RequestHeaderMap& request,
                   absl::string_view route_name, absl::string_view consumer, std::string& out) {
  appendField('r', route_name, out);
  appendField('c', consumer, out);
  out.push_back('h');
  appendLower(request.host(), out);
  out.push_back('\n');  // a valid host never holds '\n'
  const absl::string_view path = request.pathOnly();
  out.push_back('p');
  if (config.ignore_uri_case) {
    appendLower(path, out);
  } else {
    out.append(path.data(), path.size());
  }
  out.push_back('\n');  // nor does a path or a query
  out.push_back('q');
  appendQueryKey(request.query(), config.vary_query_params, out);
  out.push_back('\n');
  out.push_back('v');
  appendHeadersKey(request, config.vary_headers, out);
}

void appendVariantKey(const Http::HeaderMap& request, const std::vector<std::string>& vary,
                      std::string& out) {
  out.push_back('\0');  // never in a base key
  appendHeadersKey(request, vary, out);
}

std::string keyDigest(absl::string_view key) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), SHA256_DIGEST_LENGTH));
}

bool parseVary(const Http::HeaderMap& response, std::vector<std::string>& names) {
  names.clear();
  for (const Http::HeaderEntry& e : response.entries()) {
    if (e.key != "vary") continue;
    for (absl::string_view n : absl::StrSplit(e.value, ',')) {
      n = absl::StripAsciiWhitespace(n);
      if (n.empty()) continue;
      if (n == "*") return false;
      names.push_back(absl::AsciiStrToLower(n));
    }
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return true;
}

}  // namespace Cache
}  // namespace Extensions
}  // namespace sluice
