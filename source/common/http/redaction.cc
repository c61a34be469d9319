#include "source/common/http/redaction.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "source/common/http/path.h"

namespace sluice {
namespace Http {

CredentialNames::CredentialNames() {
  for (const char* h :
       {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}) {
    addHeader(h);
  }
  query_params_.emplace_back("access_token");
}

void CredentialNames::addPolicies(const Config::PolicySet& policies) {
  std::vector<std::string> headers;
  std::vector<std::string> params;
  for (const Config::PolicyType* type : Config::PolicyTypeRegistry::all()) {
    for (const auto& [name, policy] : policies.of(Config::PolicyTypeRegistry::typeName(*type))) {
      type->credentialHeaders(*policy, headers);
      type->credentialQueryParams(*policy, params);
    }
  }
  for (const std::string& h : headers) addHeader(h);
  for (const std::string& p : params) addQueryParam(p);
}

void CredentialNames::addHeader(absl::string_view name) {
  if (name.empty()) return;
  std::string lower = absl::AsciiStrToLower(name);
  if (isSecretHeader(lower)) return;
  header_lengths_ |= lower.size() < 64 ? uint64_t{1} << lower.size() : 0;
  headers_.push_back(std::move(lower));
}

void CredentialNames::addQueryParam(absl::string_view name) {
  if (name.empty() || isSecretQueryParam(name)) return;
  query_params_.emplace_back(name);
}

bool CredentialNames::isSecretHeader(absl::string_view name) const {
  // Most headers are ruled out by their length alone.
  if (name.size() < 64 && (header_lengths_ & (uint64_t{1} << name.size())) == 0) return false;
  return std::find(headers_.begin(), headers_.end(), name) != headers_.end();
}

bool CredentialNames::isSecretQueryParam(absl::string_view name) const {
  return std::find(query_params_.begin(), query_params_.end(), name) != query_params_.end();
}

namespace {

// `name` percent-decoded ('+' a space), for names written with escapes.
std::string decodeName(absl::string_view name) {
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '+') {
      out += ' ';
    } else if (name[i] == '%' && i + 2 < name.size() && Path::hexValue(name[i + 1]) >= 0 &&
               Path::hexValue(name[i + 2]) >= 0) {
      out += static_cast<char>(Path::hexValue(name[i + 1]) * 16 + Path::hexValue(name[i + 2]));
      i += 2;
    } else {
      out += name[i];
    }
  }
  return out;
}

bool listed(const std::vector<std::string>& names, absl::string_view key) {
  if (std::find(names.begin(), names.end(), key) != names.end()) return true;
  if (key.find_first_of("%+") == absl::string_view::npos) return false;
  const std::string decoded = decodeName(key);
  return std::find(names.begin(), names.end(), decoded) != names.end();
}

}  // namespace

std::string redactQuery(absl::string_view target, const std::vector<std::string>& names) {
  const size_t q = target.find('?');
  if (q == absl::string_view::npos) return std::string(target);
  std::string out(target.substr(0, q + 1));
  bool first = true;
  for (absl::string_view pair : absl::StrSplit(target.substr(q + 1), '&')) {
    if (!first) out += '&';
    first = false;
    const size_t eq = pair.find('=');
    const absl::string_view key = pair.substr(0, eq);
    if (eq != absl::string_view::npos && listed(names, key)) {
      out.append(key.data(), key.size());
      out += "=REDACTED";
    } else {
      out.append(pair.data(), pair.size());
    }
  }
  return out;
}

}  // namespace Http
}  // namespace sluice
