#pragma once

// Output formatting of sluicectl: pure functions of the server's answers, so they are tested
// without a server.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sluice/service/control/v1/control.pb.h"

namespace sluice {
namespace Cli {

// The resource types sluice-cp serves, by message name, in the order sluicectl shows them:
// Listener, RouteTable, Cluster, ClusterEndpoints, then the others (the filters' policy types)
// sorted. Read from StaticResources: each of its lists is a type.
const std::vector<std::string>& typeNames();
// That order, for any type name (names of no known type sort after the known ones, by name).
bool typeLess(const std::string& a, const std::string& b);

// Re-indents JSON text (2 spaces, keys in their original order; empty {} and [] stay compact).
// The input is assumed to be valid JSON; only whitespace outside strings changes.
std::string prettyJson(absl::string_view json);

// A unified line diff ("@@ -l,n +l,n @@" hunks, `context` unchanged lines around changes) of two
// texts; "" when they are equal.
std::string unifiedDiff(absl::string_view before, absl::string_view after, int context = 3);

// The output of `diff`: "+ Type name", "- Type name", "~ Type name" followed by the indented line
// diff of the pretty JSON, then a summary line ("no changes" / "N changes: ...").
std::string renderChanges(const sluice::service::control::v1::DiffResponse& diff);

// JSON texts -> YAML (yaml-cpp's emitter): a sequence of them, or with `single` the one mapping.
// Strings that would read back as another type (true, 5, "", null, ...) are quoted, so the
// output loads again into the same message.
absl::StatusOr<std::string> jsonToYaml(const std::vector<std::string>& jsons, bool single);

// JSON texts -> a pretty JSON array, or with `single` the one object.
std::string jsonArray(const std::vector<std::string>& jsons, bool single);

// `status` as text: a groups table (non-zero resource counts), a nodes table (a column per
// type with the ACKed version) and the NACKs.
std::string renderStatus(const sluice::service::control::v1::StatusResponse& status);

// `status -o json`: the protobuf JSON mapping with the proto field names, defaults included.
std::string statusJson(const sluice::service::control::v1::StatusResponse& status);

// Left-aligned columns separated by two spaces; the first row is the header.
std::string renderTable(const std::vector<std::vector<std::string>>& rows);

}  // namespace Cli
}  // namespace sluice
