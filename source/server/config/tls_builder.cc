#include "absl/strings/str_join.h"
#include "source/common/tls/context.h"
#include "source/server/config/builder.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace Server {
namespace {

namespace v1 = sluice::config::v1;

constexpr std::chrono::milliseconds kDefaultHandshakeTimeout{10000};
constexpr std::chrono::seconds kDefaultSessionTimeout{7200};

// ALPN protocol ids a listener may name, and the ones this build serves over TLS.
const std::vector<std::string>& knownAlpn() {
  static const auto* v = new std::vector<std::string>{"h2", "http/1.1", "http/1.0"};
  return *v;
}

// What a build needs of a file or secret: its text, and (unless validating only) the key that
// tells whether a context made from it can be kept.
struct Material {
  BuildState& s;
  std::string key;

  // Reads `file` (field `field`); false after an error. Without check_files nothing is read.
  bool readFile(const std::string& file, const std::string& field, std::string& out) {
    if (!s.o.check_files) return true;
    auto text = Config::readConfigFile(file);
    if (!text.ok()) {
      s.errors.add(field, std::string(text.status().message()));
      return false;
    }
    out = std::move(*text);
    absl::StrAppend(&key, "\n", file, "\n", out);
    return true;
  }
  // The secret `name` of the kind `kind` ("tls_certificate"); null after an error.
  const v1::Secret* secret(const std::string& name, v1::Secret::TypeCase kind,
                           const char* kind_name, const std::string& field) {
    auto it = s.secrets.find(name);
    if (it == s.secrets.end()) {
      if (!s.secret_names.contains(name)) {
        s.errors.add(field, absl::StrCat("unknown secret \"", name, "\""));
      }
      return nullptr;
    }
    if (it->second->type_case() != kind) {
      s.errors.add(field, absl::StrCat("secret \"", name, "\" has no ", kind_name));
      return nullptr;
    }
    absl::StrAppend(&key, "\nsecret:", it->second->SerializeAsString());
    return it->second;
  }

  bool certificate(const v1::TlsCertificate& c, const std::string& path, bool ocsp_allowed,
                   Tls::CertificateMaterial& out) {
    const bool files = !c.cert_chain_file().empty() || !c.private_key_file().empty();
    if (!c.ocsp_staple_file().empty() && !ocsp_allowed) {
      s.errors.add(path + ".ocsp_staple_file", "is for listener certificates only");
      return false;
    }
    if (!c.secret().empty()) {
      if (files) {
        s.errors.add(path, "set either secret or cert_chain_file and private_key_file, not both");
        return false;
      }
      const v1::Secret* sec =
          secret(c.secret(), v1::Secret::kTlsCertificate, "tls_certificate", path + ".secret");
      if (sec == nullptr) return false;
      out.chain_pem = sec->tls_certificate().certificate_chain();
      out.key_pem = sec->tls_certificate().private_key();
      out.origin = absl::StrCat("secret \"", c.secret(), "\"");
    } else {
      if (c.cert_chain_file().empty() || c.private_key_file().empty()) {
        s.errors.add(path, "needs cert_chain_file and private_key_file (or secret)");
        return false;
      }
      if (!readFile(c.cert_chain_file(), path + ".cert_chain_file", out.chain_pem) ||
          !readFile(c.private_key_file(), path + ".private_key_file", out.key_pem)) {
        return false;
      }
      out.origin = path;
    }
    if (!c.ocsp_staple_file().empty() &&
        !readFile(c.ocsp_staple_file(), path + ".ocsp_staple_file", out.ocsp_der)) {
      return false;
    }
    if (!s.o.check_files && c.secret().empty()) return true;
    auto checked = Tls::checkCertificate(out);
    if (!checked.ok()) {
      s.errors.add(path, std::string(checked.status().message()));
      return false;
    }
    return true;
  }

  // A CA bundle from a file or a validation_context secret; "" when neither is set.
  bool caBundle(const std::string& file, const std::string& file_field, const std::string& name,
                const std::string& secret_field, std::string& out) {
    if (!file.empty() && !name.empty()) {
      s.errors.add(secret_field,
                   absl::StrCat("set either ", file_field.substr(file_field.rfind('.') + 1),
                                " or this, not both"));
      return false;
    }
    if (!name.empty()) {
      const v1::Secret* sec =
          secret(name, v1::Secret::kValidationContext, "validation_context", secret_field);
      if (sec == nullptr) return false;
      out = sec->validation_context().trusted_ca();
    } else if (!file.empty()) {
      if (!readFile(file, file_field, out)) return false;
      if (!s.o.check_files) return true;
    } else {
      return true;
    }
    absl::Status checked = Tls::checkCaBundle(out, name.empty() ? file_field : secret_field);
    if (!checked.ok()) {
      s.errors.add(checked);
      return false;
    }
    return true;
  }
};

bool versions(BuildState& s, v1::TlsParameters::TlsProtocol min, v1::TlsParameters::TlsProtocol max,
              const std::string& path, Tls::VersionRange& out) {
  auto number = [](v1::TlsParameters::TlsProtocol v, int def) {
    switch (v) {
      case v1::TlsParameters::TLSv1_0:
        return TLS1_VERSION;
      case v1::TlsParameters::TLSv1_1:
        return TLS1_1_VERSION;
      case v1::TlsParameters::TLSv1_2:
        return TLS1_2_VERSION;
      case v1::TlsParameters::TLSv1_3:
        return TLS1_3_VERSION;
      default:
        return def;
    }
  };
  out.min = number(min, TLS1_2_VERSION);
  out.max = number(max, TLS1_3_VERSION);
  if (out.min > out.max) {
    s.errors.add(path + ".min_version", "is above max_version");
    return false;
  }
  return true;
}

}  // namespace

void buildSecrets(BuildState& s) {
  PathNamer secret_path(s.o.static_prefix, "secrets", "Secret", s.o.first_dynamic_secret);
  for (int i = 0; i < s.sr.secrets_size(); ++i) {
    const v1::Secret& sec = s.sr.secrets(i);
    const std::string path = secret_path(i, sec.name());
    if (sec.name().empty()) {
      s.errors.add(path + ".name", "is required");
      continue;
    }
    if (!s.secret_names.insert(sec.name()).second) {
      s.errors.add(path + ".name", absl::StrCat("duplicate secret \"", sec.name(), "\""));
      continue;
    }
    absl::Status checked;
    switch (sec.type_case()) {
      case v1::Secret::kTlsCertificate: {
        Tls::CertificateMaterial m{sec.tls_certificate().certificate_chain(),
                                   sec.tls_certificate().private_key(), "",
                                   path + ".tls_certificate"};
        checked = Tls::checkCertificate(m).status();
        break;
      }
      case v1::Secret::kValidationContext:
        checked = Tls::checkCaBundle(sec.validation_context().trusted_ca(),
                                     path + ".validation_context.trusted_ca");
        break;
      case v1::Secret::TYPE_NOT_SET:
        checked = absl::InvalidArgumentError(
            absl::StrCat(path, ": needs tls_certificate or validation_context"));
        break;
    }
    if (!checked.ok()) {
      s.errors.add(checked);
      continue;
    }
    s.secrets.emplace(sec.name(), &sec);
  }
}

void buildListenerTls(BuildState& s, const v1::Listener& lc, const std::string& listener_path,
                      ListenerInfo& li, Http::ConnectionManagerConfig& http) {
  if (!lc.has_tls()) return;
  const v1::DownstreamTls& tls = lc.tls();
  const std::string path = listener_path + ".tls";
  Material material{s, tls.SerializeAsString()};
  Tls::ServerContextConfig config;
  bool ok = true;
  if (tls.certificates_size() == 0) {
    s.errors.add(path + ".certificates", "at least one certificate is required");
    ok = false;
  }
  for (int i = 0; i < tls.certificates_size(); ++i) {
    Tls::CertificateMaterial m;
    ok = material.certificate(tls.certificates(i), absl::StrCat(path, ".certificates[", i, "]"),
                              true, m) &&
         ok;
    config.certificates.push_back(std::move(m));
  }
  const std::vector<std::string> alpn =
      tls.alpn().empty() ? std::vector<std::string>{"h2", "http/1.1"}
                         : std::vector<std::string>(tls.alpn().begin(), tls.alpn().end());
  for (const std::string& p : alpn) {
    if (std::find(knownAlpn().begin(), knownAlpn().end(), p) == knownAlpn().end()) {
      s.errors.add(path + ".alpn", absl::StrCat("unknown protocol \"", p, "\" (known: ",
                                                absl::StrJoin(knownAlpn(), ", "), ")"));
      ok = false;
    } else if (p != "h2" || http.codec.http2.enabled) {
      // h2 is offered only where the listener serves HTTP/2.
      config.alpn.push_back(p);
    }
  }
  ok = versions(s, tls.min_version(), tls.max_version(), path, config.versions) && ok;
  config.cipher_suites.assign(tls.cipher_suites().begin(), tls.cipher_suites().end());
  ok = material.caBundle(tls.client_ca_file(), path + ".client_ca_file", tls.client_ca_secret(),
                         path + ".client_ca_secret", config.client_ca_pem) &&
       ok;
  config.require_client_certificate = tls.require_client_certificate();
  if (tls.require_client_certificate() && tls.client_ca_file().empty() &&
      tls.client_ca_secret().empty()) {
    s.errors.add(path + ".require_client_certificate",
                 "needs client_ca_file or client_ca_secret to verify client certificates against");
    ok = false;
  }
  auto handshake = Config::durationMs(tls.handshake_timeout(), path + ".handshake_timeout");
  auto session = Config::durationMs(tls.session_timeout(), path + ".session_timeout");
  if (!handshake.ok() || !session.ok()) {
    s.errors.add(handshake.status());
    s.errors.add(session.status());
    ok = false;
  } else {
    li.handshake_timeout = tls.has_handshake_timeout() ? *handshake : kDefaultHandshakeTimeout;
    config.session_timeout = tls.has_session_timeout()
                                 ? std::chrono::duration_cast<std::chrono::seconds>(*session)
                                 : kDefaultSessionTimeout;
  }
  const auto& d = tls.set_current_client_cert_details();
  http.client_cert_details.set =
      tls.forward_client_cert_details() == v1::DownstreamTls::SANITIZE_SET;
  http.client_cert_details.subject = d.subject();
  http.client_cert_details.uri = d.uri();
  http.client_cert_details.dns = d.dns();
  http.client_cert_details.cert = d.cert();
  if (!ok || !s.o.check_files) return;
  config.session_id_context = lc.name();
  li.tls_key = std::move(material.key);
  if (s.o.previous != nullptr) {
    for (const ListenerInfo& prev : s.o.previous->listeners) {
      if (prev.name == li.name && prev.tls != nullptr && prev.tls_key == li.tls_key) {
        li.tls = prev.tls;
        return;
      }
    }
  }
  Tls::TlsStats stats{};
  if (s.stats != nullptr) stats = Tls::TlsStats::create(*s.stats, lc.name());
  auto ctx = Tls::ServerContext::create(config, s.stats != nullptr ? &stats : nullptr);
  if (!ctx.ok()) {
    s.errors.add(path, std::string(ctx.status().message()));
    return;
  }
  li.tls = *ctx;
}

Tls::ClientContextConstSharedPtr buildClusterTls(BuildState& s, const v1::Cluster& cluster,
                                                 const std::string& cluster_path,
                                                 std::string& key) {
  if (!cluster.has_tls()) return nullptr;
  const v1::UpstreamTls& tls = cluster.tls();
  const std::string path = cluster_path + ".tls";
  Material material{s, tls.SerializeAsString()};
  Tls::ClientContextConfig config;
  bool ok = true;
  config.sni = tls.sni();
  config.verify_names.assign(tls.verify_subject_alt_name().begin(),
                             tls.verify_subject_alt_name().end());
  config.verify = !tls.insecure_skip_verify();
  if (tls.has_certificate()) {
    config.has_certificate = true;
    ok =
        material.certificate(tls.certificate(), path + ".certificate", false, config.certificate) &&
        ok;
  }
  ok = material.caBundle(tls.ca_file(), path + ".ca_file", tls.ca_secret(), path + ".ca_secret",
                         config.ca_pem) &&
       ok;
  // The protocol is the cluster's: ALPN offers it (h2 for HTTP2), or what `alpn` names.
  const bool h2 = cluster.protocol() == v1::Cluster::HTTP2;
  for (const std::string& p : tls.alpn()) {
    if (h2 ? p != "h2" : (p != "http/1.1" && p != "http/1.0")) {
      s.errors.add(path + ".alpn",
                   absl::StrCat("protocol \"", p, "\" does not match the cluster's protocol (",
                                h2 ? "HTTP2: h2" : "HTTP1: http/1.1", ")"));
      ok = false;
    }
  }
  config.alpn.assign(tls.alpn().begin(), tls.alpn().end());
  if (config.alpn.empty() && h2) config.alpn.push_back("h2");
  ok = versions(s, tls.min_version(), tls.max_version(), path, config.versions) && ok;
  if (!ok || !s.o.check_files) return nullptr;
  key = std::move(material.key);
  if (s.o.previous != nullptr) {
    auto it = s.o.previous->clusters.find(cluster.name());
    if (it != s.o.previous->clusters.end() && it->second->tls() != nullptr &&
        it->second->tlsKey() == key) {
      return it->second->tls();
    }
  }
  if (!config.verify) {
    spdlog::warn(
        "{}: insecure_skip_verify: the certificates of cluster \"{}\"'s endpoints are "
        "not verified",
        path, cluster.name());
  }
  auto ctx = Tls::ClientContext::create(config);
  if (!ctx.ok()) {
    s.errors.add(path, std::string(ctx.status().message()));
    return nullptr;
  }
  return *ctx;
}

}  // namespace Server
}  // namespace sluice
