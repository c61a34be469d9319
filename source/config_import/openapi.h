#pragma once

#include <string>

#include "source/config_import/import.h"

namespace sluice {
namespace ConfigImport {

// OpenAPI 3.x with AWS API Gateway extensions -> Sluice resources (docs/imports.md).
Result convertOpenApi(const std::string& text, const Options& options);

}  // namespace ConfigImport
}  // namespace sluice
