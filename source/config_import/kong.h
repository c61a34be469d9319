#pragma once

#include <string>

#include "source/config_import/import.h"

namespace sluice {
namespace ConfigImport {

// Kong 3.x declarative config (`_format_version: "3.0"`) -> Sluice resources (docs/imports.md).
Result convertKong(const std::string& text, const Options& options);

}  // namespace ConfigImport
}  // namespace sluice
