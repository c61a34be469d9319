#include "source/config_import/openapi.h"

namespace sluice {
namespace ConfigImport {

// Placeholder until the converter lands: every conversion is refused with an error.
Result convertOpenApi(const std::string& text, const Options& options) {
  (void)text;
  Result result(options.lenient);
  result.diagnostics.error("", 0, "the openapi importer is not built yet");
  return result;
}

}  // namespace ConfigImport
}  // namespace sluice
