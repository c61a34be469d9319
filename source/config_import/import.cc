#include "source/config_import/import.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "source/common/config/utility.h"
#include "source/config_import/kong.h"
#include "source/config_import/openapi.h"
#include "yaml-cpp/yaml.h"

namespace sluice {
namespace ConfigImport {

std::string formatName(Format format) {
  switch (format) {
    case Format::Kong:
      return "kong";
    case Format::OpenApi:
      return "openapi";
    case Format::Sluice:
      break;
  }
  return "sluice";
}

namespace {

// The top-level keys of a YAML/JSON map, read cheaply: only lines that start at column 0 (a
// JSON text is parsed). Enough to tell the formats apart: each has a marker key at its top.
bool hasTopKey(absl::string_view text, absl::string_view key) {
  size_t pos = 0;
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != absl::string_view::npos && text[first] == '{') {
    // JSON: a real parse (a key nested deeper must not count).
    try {
      YAML::Node root = YAML::Load(std::string(text));
      return root.IsMap() && root[std::string(key)].IsDefined();
    } catch (const std::exception&) {
      return false;
    }
  }
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == absl::string_view::npos) end = text.size();
    absl::string_view line = text.substr(pos, end - pos);
    for (absl::string_view quote : {"", "\"", "'"}) {
      const std::string want = absl::StrCat(quote, key, quote);
      if (absl::StartsWith(line, want)) {
        absl::string_view rest = line.substr(want.size());
        while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) {
          rest.remove_prefix(1);
        }
        if (!rest.empty() && rest.front() == ':') return true;
      }
    }
    pos = end + 1;
  }
  return false;
}

}  // namespace

Format detectFormat(absl::string_view text) {
  if (hasTopKey(text, "_format_version")) return Format::Kong;
  if (hasTopKey(text, "openapi") || hasTopKey(text, "swagger")) return Format::OpenApi;
  return Format::Sluice;
}

Result convert(const std::string& text, Format format, const Options& options) {
  // Text that is not YAML fails the same way whatever the format (the converters parse again;
  // their own diagnostics include what parsing warns about).
  if (format != Format::Sluice) {
    Result parsed(options.lenient);
    if (!parseDocument(text, parsed.diagnostics).has_value() || parsed.diagnostics.hasErrors()) {
      return parsed;
    }
  }
  switch (format) {
    case Format::Kong:
      return convertKong(text, options);
    case Format::OpenApi:
      return convertOpenApi(text, options);
    case Format::Sluice:
      break;
  }
  Result result(options.lenient);
  result.diagnostics.error("", 0, "not a Kong or OpenAPI document");
  return result;
}

absl::StatusOr<sluice::config::v1::StaticResources> loadDeclared(const std::string& text,
                                                                 absl::string_view shown,
                                                                 const Options& options,
                                                                 std::string* warnings) {
  // Empty, or only comments: refused, so a missing file piped in (or a config-dir file caught
  // between truncate and write) never wipes a group. `{}` says "no resources" on purpose. (A
  // JSON object is never empty, and skips the slow YAML reader here.)
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || text[first] != '{') {
    auto json = Config::yamlToJson(text);
    if (json.ok() && *json == "null") {
      return absl::InvalidArgumentError(
          absl::StrCat(shown, shown.empty() ? "" : ": ",
                       "no config in it (to remove every resource, write {})"));
    }
  }
  const Format format = detectFormat(text);
  if (format == Format::Sluice) {
    sluice::config::v1::StaticResources resources;
    absl::Status status = Config::loadFromYaml(text, resources);
    if (!status.ok()) {
      return absl::InvalidArgumentError(shown.empty()
                                            ? std::string(status.message())
                                            : absl::StrCat(shown, ": ", status.message()));
    }
    return resources;
  }
  Result result = convert(text, format, options);
  if (!result.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        shown, shown.empty() ? "" : ": ", "not a valid ",
        format == Format::Kong ? "Kong declarative config" : "OpenAPI spec", " (",
        result.diagnostics.errorCount(), " error(s)",
        options.lenient ? ""
                        : "; --lenient skips unknown fields, unsupported plugins and dangling "
                          "references with a warning",
        "):\n", absl::StripTrailingAsciiWhitespace(renderDiagnostics(result.diagnostics, shown))));
  }
  if (warnings != nullptr) absl::StrAppend(warnings, renderDiagnostics(result.diagnostics, shown));
  return std::move(result.resources);
}

std::string renderDiagnostics(const Diagnostics& diagnostics, absl::string_view source) {
  std::string out;
  for (const Diagnostic& d : diagnostics.sorted()) {
    if (source.empty()) {
      absl::StrAppend(&out, d.line > 0 ? absl::StrCat("line ", d.line, ": ") : "");
    } else {
      absl::StrAppend(&out, source, d.line > 0 ? absl::StrCat(":", d.line) : "", ": ");
    }
    absl::StrAppend(&out, d.severity == Diagnostic::Severity::Error ? "error" : "warning", ": ",
                    d.path.empty() ? "" : absl::StrCat(d.path, ": "), d.message, "\n");
  }
  return out;
}

}  // namespace ConfigImport
}  // namespace sluice
