#pragma once

// Config importers: a Kong declarative file (`_format_version: "3.0"`) or an OpenAPI 3 spec
// (with AWS API Gateway's extensions) -> Sluice resources (docs/imports.md). Used by sluicectl
// (`convert`, and `validate` / `diff` / `apply`, which detect the format) and by sluice-cp's
// --config-dir (`<group>.kong.yml`, `<group>.openapi.yaml`).

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sluice/config/v1/bootstrap.pb.h"
#include "source/config_import/document.h"

namespace sluice {
namespace ConfigImport {

enum class Format { Sluice, Kong, OpenApi };

// "sluice", "kong", "openapi".
std::string formatName(Format format);

// What a text is: a map with `_format_version` at its top is Kong's; with `openapi` (or
// `swagger`, refused later with a clear error) an OpenAPI spec; anything else (including text
// that does not parse) is Sluice's own, whose loader reports its errors.
Format detectFormat(absl::string_view text);

struct Options {
  // Problems (unknown fields, unsupported plugins, dangling references) are warnings and the
  // thing is skipped, instead of errors (decK's strictness is the default).
  bool lenient = false;
  // The listener the imported routes are served on. Default 0.0.0.0:8000 (Kong's proxy port)
  // for Kong, 0.0.0.0:8080 for OpenAPI.
  std::string listen;
  // Kong's oauth2 plugin, imported as a resource server: the JWKS URL of the authorization
  // server whose tokens are accepted (Kong's plugin issues its own tokens; Sluice does not).
  std::string oauth2_jwks;
  // OpenAPI: the JWKS URL of every JWT provider, replacing the one derived from the spec
  // (Cognito's `<issuer>/.well-known/jwks.json`, an openIdConnectUrl's convention, a scheme's
  // `x-sluice-jwks-uri`). For a private copy of the keys, or tests. Empty: derived.
  std::string jwks_uri;
};

struct Result {
  // Valid only when !diagnostics.hasErrors().
  sluice::config::v1::StaticResources resources;
  Diagnostics diagnostics;
  explicit Result(bool lenient) : diagnostics(lenient) {}
  bool ok() const { return !diagnostics.hasErrors(); }
};

// Converts `text` in `format` (Kong or OpenApi).
Result convert(const std::string& text, Format format, const Options& options);

// A declared config in any format: Sluice's own YAML/JSON (Config::loadFromYaml), or a Kong /
// OpenAPI document (detectFormat()) converted with `options`. `shown` names the text in
// messages (a file name, "stdin"; empty: not named). Warnings of a conversion are appended to
// `*warnings` as renderDiagnostics() lines; errors are the returned status's message, the same
// lines.
absl::StatusOr<sluice::config::v1::StaticResources> loadDeclared(const std::string& text,
                                                                 absl::string_view shown,
                                                                 const Options& options,
                                                                 std::string* warnings);

// The diagnostics as lines for a terminal: "<source>:<line>: error: <path>: <message>" ("line
// <line>: error: ..." when `source` is empty), sorted by line.
std::string renderDiagnostics(const Diagnostics& diagnostics, absl::string_view source);

}  // namespace ConfigImport
}  // namespace sluice
