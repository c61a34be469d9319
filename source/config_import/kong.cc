#include "source/config_import/kong.h"

namespace sluice {
namespace ConfigImport {

// Placeholder until the converter lands: every conversion is refused with an error.
Result convertKong(const std::string& text, const Options& options) {
  (void)text;
  Result result(options.lenient);
  result.diagnostics.error("", 0, "the kong importer is not built yet");
  return result;
}

}  // namespace ConfigImport
}  // namespace sluice
