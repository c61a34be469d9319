// A test tool: converts an OpenAPI spec as `sluicectl convert openapi` does, for the
// integration test (test/integration/openapi_import_test.py) to run the result through the real
// binaries without depending on the CLI's flags.
//   openapi_convert [--lenient] [--listen HOST:PORT] [--jwks-uri URL] FILE
// Prints the StaticResources as JSON on stdout and the diagnostics on stderr; exit 1 on errors.

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "source/common/config/utility.h"
#include "source/config_import/import.h"

int main(int argc, char** argv) {
  sluice::ConfigImport::Options options;
  std::string file;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--lenient") {
      options.lenient = true;
    } else if (arg == "--listen" && i + 1 < argc) {
      options.listen = argv[++i];
    } else if (arg == "--jwks-uri" && i + 1 < argc) {
      options.jwks_uri = argv[++i];
    } else {
      file = arg;
    }
  }
  std::ifstream in(file);
  if (file.empty() || !in) {
    std::cerr << "usage: openapi_convert [--lenient] [--listen HOST:PORT] [--jwks-uri URL] FILE\n";
    return 2;
  }
  std::stringstream text;
  text << in.rdbuf();
  sluice::ConfigImport::Result r =
      sluice::ConfigImport::convert(text.str(), sluice::ConfigImport::Format::OpenApi, options);
  std::cerr << sluice::ConfigImport::renderDiagnostics(r.diagnostics, file);
  if (!r.ok()) return 1;
  std::cout << sluice::Config::toJson(r.resources, true) << "\n";
  return 0;
}
