#include "source/cli/format.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"
#include "re2/re2.h"
#include "sluice/config/v1/bootstrap.pb.h"
#include "yaml-cpp/yaml.h"

namespace sluice {
namespace Cli {

namespace {

using sluice::service::control::v1::DiffResponse;
using sluice::service::control::v1::NodeStatus;
using sluice::service::control::v1::ResourceChange;
using sluice::service::control::v1::StatusResponse;
using sluice::service::control::v1::TypeStatus;

// The types shown first, in this order; the others follow, sorted.
const char* const kTypeOrder[] = {"Listener", "RouteTable", "Cluster", "ClusterEndpoints"};

int typeRank(const std::string& type) {
  for (size_t i = 0; i < std::size(kTypeOrder); ++i) {
    if (type == kTypeOrder[i]) {
      return static_cast<int>(i);
    }
  }
  return static_cast<int>(std::size(kTypeOrder));
}

void newline(std::string& out, int depth) {
  out += '\n';
  out.append(2 * depth, ' ');
}

// ---- line diff ----

std::vector<absl::string_view> splitLines(absl::string_view text) {
  if (text.empty()) {
    return {};
  }
  if (text.back() == '\n') {
    text.remove_suffix(1);
  }
  return absl::StrSplit(text, '\n');
}

struct DiffOp {
  char kind;  // ' ', '-' or '+'
  absl::string_view line;
};

// Longest common subsequence of lines; past ~16M cells everything is shown as replaced.
std::vector<DiffOp> diffLines(const std::vector<absl::string_view>& a,
                              const std::vector<absl::string_view>& b) {
  const size_t n = a.size(), m = b.size();
  std::vector<DiffOp> ops;
  if (n * m > (16u << 20)) {
    for (auto l : a) ops.push_back({'-', l});
    for (auto l : b) ops.push_back({'+', l});
    return ops;
  }
  // lcs[i][j]: LCS length of a[i..] and b[j..].
  std::vector<uint32_t> lcs((n + 1) * (m + 1), 0);
  auto at = [&](size_t i, size_t j) -> uint32_t& { return lcs[i * (m + 1) + j]; };
  for (size_t i = n; i-- > 0;) {
    for (size_t j = m; j-- > 0;) {
      at(i, j) = a[i] == b[j] ? at(i + 1, j + 1) + 1 : std::max(at(i + 1, j), at(i, j + 1));
    }
  }
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] == b[j]) {
      ops.push_back({' ', a[i++]});
      ++j;
    } else if (j < m && (i == n || at(i, j + 1) > at(i + 1, j))) {
      ops.push_back({'+', b[j++]});
    } else {
      ops.push_back({'-', a[i++]});
    }
  }
  return ops;
}

std::string hunkRange(size_t start, size_t count) {
  // Like diff -u: a hunk with no lines on a side names the line before it.
  return absl::StrCat(count == 0 ? start : start + 1, ",", count);
}

// ---- YAML ----

// True when `s`, written as a plain YAML scalar, would read back as something other than this
// string (by Sluice's loader, YAML 1.2 or YAML 1.1 readers).
bool readsAsNonString(const std::string& s) {
  if (s.empty()) {
    return true;
  }
  static const std::set<std::string> kWords = {"true", "false", "yes", "no",   "on",
                                               "off",  "y",     "n",   "null", "~"};
  if (kWords.count(absl::AsciiStrToLower(s)) > 0) {
    return true;
  }
  double d;
  if (absl::SimpleAtod(s, &d)) {
    return true;
  }
  static const LazyRE2 kYaml11Number = {
      R"([-+]?(0[xob][0-9a-fA-F_]+|[0-9][0-9_]*(:[0-5]?[0-9])*(\.[0-9_]*)?([eE][-+]?[0-9]+)?|)"
      R"(\.[0-9_]+([eE][-+]?[0-9]+)?|\.(inf|Inf|INF|nan|NaN|NAN)))"};
  static const LazyRE2 kYaml11Timestamp = {R"([0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ].*)?)"};
  return RE2::FullMatch(s, *kYaml11Number) || RE2::FullMatch(s, *kYaml11Timestamp);
}

// Emits a node loaded from JSON: quoted JSON strings (tag "!") stay strings, plain scalars
// (numbers, booleans) stay as written.
void emitYaml(const YAML::Node& node, YAML::Emitter& out) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      if (node.size() == 0) {
        out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
        return;
      }
      out << YAML::BeginMap;
      for (const auto& kv : node) {
        out << YAML::Key;
        emitYaml(kv.first, out);
        out << YAML::Value;
        emitYaml(kv.second, out);
      }
      out << YAML::EndMap;
      return;
    case YAML::NodeType::Sequence:
      if (node.size() == 0) {
        out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
        return;
      }
      out << YAML::BeginSeq;
      for (const auto& item : node) {
        emitYaml(item, out);
      }
      out << YAML::EndSeq;
      return;
    case YAML::NodeType::Scalar:
      if (node.Tag() == "!" && readsAsNonString(node.Scalar())) {
        out << YAML::DoubleQuoted;
      }
      out << node.Scalar();
      return;
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      out << YAML::Null;
      return;
  }
}

// ---- status ----

std::string formatTime(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) {
    return "-";
  }
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(t.seconds()),
                          absl::UTCTimeZone());
}

std::string orDash(const std::string& s) { return s.empty() ? "-" : s; }

std::string oneLine(const std::string& s) {
  return absl::StrReplaceAll(absl::StripTrailingAsciiWhitespace(s), {{"\n", "; "}});
}

// A node's cell for one type: the ACKed version, and what is pending or refused.
std::string typeCell(const TypeStatus& t) {
  std::string cell = orDash(t.acked_version());
  if (!t.nacked_version().empty()) {
    absl::StrAppend(&cell, " (nack ", t.nacked_version(), ")");
  } else if (!t.sent_version().empty() && t.sent_version() != t.acked_version()) {
    absl::StrAppend(&cell, " (sent ", t.sent_version(), ")");
  }
  return cell;
}

}  // namespace

const std::vector<std::string>& typeNames() {
  static const auto* names = [] {
    auto* out = new std::vector<std::string>();
    const auto* d = sluice::config::v1::StaticResources::descriptor();
    for (int i = 0; i < d->field_count(); ++i) {
      const auto* f = d->field(i);
      if (f->is_repeated() && f->message_type() != nullptr) {
        out->push_back(f->message_type()->name());
      }
    }
    std::sort(out->begin(), out->end(), typeLess);
    return out;
  }();
  return *names;
}

bool typeLess(const std::string& a, const std::string& b) {
  return std::make_pair(typeRank(a), a) < std::make_pair(typeRank(b), b);
}

std::string prettyJson(absl::string_view json) {
  std::string out;
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      out += c;
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case ' ':
      case '\t':
      case '\n':
      case '\r':
        break;
      case '"':
        in_string = true;
        out += c;
        break;
      case '{':
      case '[': {
        size_t next = json.find_first_not_of(" \t\r\n", i + 1);
        if (next != absl::string_view::npos && json[next] == (c == '{' ? '}' : ']')) {
          out += c;
          out += json[next];
          i = next;
          break;
        }
        out += c;
        newline(out, ++depth);
        break;
      }
      case '}':
      case ']':
        newline(out, --depth);
        out += c;
        break;
      case ',':
        out += c;
        newline(out, depth);
        break;
      case ':':
        out += ": ";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string unifiedDiff(absl::string_view before, absl::string_view after, int context) {
  const std::vector<DiffOp> ops = diffLines(splitLines(before), splitLines(after));
  std::vector<size_t> changes;
  for (size_t k = 0; k < ops.size(); ++k) {
    if (ops[k].kind != ' ') {
      changes.push_back(k);
    }
  }
  std::string out;
  const size_t ctx = std::max(context, 0);
  size_t a_line = 0, b_line = 0, pos = 0;  // lines of each side before ops[pos]
  for (size_t c = 0; c < changes.size();) {
    // A hunk: changes closer than 2*context lines apart share one.
    size_t last = c;
    while (last + 1 < changes.size() && changes[last + 1] - changes[last] <= 2 * ctx + 1) {
      ++last;
    }
    const size_t begin = changes[c] > ctx ? changes[c] - ctx : 0;
    const size_t end = std::min(ops.size(), changes[last] + ctx + 1);
    for (; pos < begin; ++pos) {
      ++a_line;
      ++b_line;
    }
    size_t a_count = 0, b_count = 0;
    for (size_t k = begin; k < end; ++k) {
      a_count += ops[k].kind != '+';
      b_count += ops[k].kind != '-';
    }
    absl::StrAppend(&out, "@@ -", hunkRange(a_line, a_count), " +", hunkRange(b_line, b_count),
                    " @@\n");
    for (size_t k = begin; k < end; ++k) {
      absl::StrAppend(&out, std::string(1, ops[k].kind), ops[k].line, "\n");
    }
    a_line += a_count;
    b_line += b_count;
    pos = end;
    c = last + 1;
  }
  return out;
}

std::string renderChanges(const DiffResponse& diff) {
  std::string out;
  int added = 0, removed = 0, changed = 0;
  for (const ResourceChange& change : diff.changes()) {
    char mark = '~';
    switch (change.kind()) {
      case ResourceChange::ADDED:
        mark = '+';
        ++added;
        break;
      case ResourceChange::REMOVED:
        mark = '-';
        ++removed;
        break;
      default:
        ++changed;
        break;
    }
    absl::StrAppend(&out, std::string(1, mark), " ", change.type(), " ", change.name(), "\n");
    if (mark == '~') {
      const std::string lines =
          unifiedDiff(prettyJson(change.before_json()), prettyJson(change.after_json()));
      for (absl::string_view line : splitLines(lines)) {
        absl::StrAppend(&out, "    ", line, "\n");
      }
    }
  }
  if (diff.changes_size() == 0) {
    out += "no changes\n";
  } else {
    absl::StrAppend(&out, diff.changes_size(), diff.changes_size() == 1 ? " change" : " changes",
                    ": ", added, " added, ", removed, " removed, ", changed, " changed\n");
  }
  return out;
}

absl::StatusOr<std::string> jsonToYaml(const std::vector<std::string>& jsons, bool single) {
  YAML::Emitter out;
  out.SetIndent(2);
  try {
    if (single) {
      if (jsons.size() != 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("expected one resource, got ", jsons.size()));
      }
      emitYaml(YAML::Load(jsons[0]), out);
    } else if (jsons.empty()) {
      out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
    } else {
      out << YAML::BeginSeq;
      for (const std::string& json : jsons) {
        emitYaml(YAML::Load(json), out);
      }
      out << YAML::EndSeq;
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read the server's JSON: ", e.what()));
  }
  if (!out.good()) {
    return absl::InternalError(absl::StrCat("YAML emitter: ", out.GetLastError()));
  }
  return absl::StrCat(out.c_str(), "\n");
}

std::string jsonArray(const std::vector<std::string>& jsons, bool single) {
  if (single && jsons.size() == 1) {
    return prettyJson(jsons[0]) + "\n";
  }
  return prettyJson(absl::StrCat("[", absl::StrJoin(jsons, ","), "]")) + "\n";
}

std::string renderTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size()) {
        line.append(widths[i] - row[i].size() + 2, ' ');
      }
    }
    absl::StrAppend(&out, absl::StripTrailingAsciiWhitespace(line), "\n");
  }
  return out;
}

std::string renderStatus(const StatusResponse& status) {
  std::string out = "GROUPS\n";
  if (status.groups_size() == 0) {
    out += "(none)\n";
  } else {
    std::vector<std::vector<std::string>> rows = {
        {"NAME", "VERSION", "SOURCE", "APPLIED_AT", "RESOURCES"}};
    for (const auto& g : status.groups()) {
      std::vector<std::string> types;
      for (const auto& [type, count] : g.resources()) {
        if (count > 0) {  // types a group does not use would only widen the table
          types.push_back(type);
        }
      }
      std::sort(types.begin(), types.end(), typeLess);
      std::vector<std::string> counts;
      for (const std::string& type : types) {
        counts.push_back(absl::StrCat(type, "=", g.resources().at(type)));
      }
      rows.push_back({g.name(), orDash(g.version()), orDash(g.source()), formatTime(g.applied_at()),
                      counts.empty() ? "-" : absl::StrJoin(counts, " ")});
    }
    out += renderTable(rows);
  }

  // Groups whose config serves proxyless gRPC targets, and what their translation left out.
  std::vector<std::vector<std::string>> mesh_rows = {{"GROUP", "TARGETS", "NOTES"}};
  std::string mesh_notes;
  for (const auto& g : status.groups()) {
    if (g.mesh_targets().empty() && g.mesh_notes().empty()) {
      continue;
    }
    mesh_rows.push_back({g.name(),
                         g.mesh_targets().empty() ? "-" : absl::StrJoin(g.mesh_targets(), " "),
                         std::to_string(g.mesh_notes_size())});
    for (const std::string& note : g.mesh_notes()) {
      absl::StrAppend(&mesh_notes, "  ", g.name(), ": ", oneLine(note), "\n");
    }
  }
  if (mesh_rows.size() > 1) {
    out += "\nMESH (proxyless gRPC, docs/mesh.md)\n" + renderTable(mesh_rows);
    if (!mesh_notes.empty()) {
      out += "not served as declared:\n" + mesh_notes;
    }
  }

  out += "\nNODES\n";
  if (status.nodes_size() == 0) {
    out += "(none)\n";
    return out;
  }
  std::vector<std::vector<std::string>> nacks = {
      {"NODE", "TYPE", "VERSION", "NACKED_AT", "REASON"}};
  // One table per kind: Sluice data planes, then proxyless gRPC clients (Envoy's types).
  auto nodeTable = [&](bool proxyless) {
    std::vector<std::string> types;  // one column per type any node has, in the usual order
    for (const NodeStatus& n : status.nodes()) {
      if ((n.kind() == "grpc") != proxyless) {
        continue;
      }
      for (const TypeStatus& t : n.types()) {
        if (std::find(types.begin(), types.end(), t.type()) == types.end()) {
          types.push_back(t.type());
        }
      }
    }
    if (!proxyless) {
      std::sort(types.begin(), types.end(), typeLess);
    } else {
      const std::vector<std::string> order = {"Cluster", "ClusterLoadAssignment", "Listener",
                                              "RouteConfiguration"};
      std::sort(types.begin(), types.end(), [&](const std::string& a, const std::string& b) {
        return std::find(order.begin(), order.end(), a) < std::find(order.begin(), order.end(), b);
      });
    }
    std::vector<std::vector<std::string>> rows = {{"ID", "GROUP", "CONNECTED", "API"}};
    if (proxyless) {
      rows[0].push_back("CLIENT");
    }
    rows[0].push_back("IN_SYNC");
    rows[0].insert(rows[0].end(), types.begin(), types.end());
    for (const NodeStatus& n : status.nodes()) {
      if ((n.kind() == "grpc") != proxyless) {
        continue;
      }
      std::vector<std::string> row = {n.id(), orDash(n.group()), n.connected() ? "yes" : "no",
                                      orDash(n.api())};
      if (proxyless) {
        row.push_back(orDash(n.client()));
      }
      row.push_back(n.in_sync() ? "yes" : "no");
      for (const std::string& type : types) {
        auto it = std::find_if(n.types().begin(), n.types().end(),
                               [&](const TypeStatus& t) { return t.type() == type; });
        row.push_back(it == n.types().end() ? "-" : typeCell(*it));
      }
      rows.push_back(std::move(row));
      std::vector<const TypeStatus*> nacked;
      for (const TypeStatus& t : n.types()) {
        if (!t.nacked_version().empty()) {
          nacked.push_back(&t);
        }
      }
      std::sort(nacked.begin(), nacked.end(), [](const TypeStatus* a, const TypeStatus* b) {
        return typeLess(a->type(), b->type());
      });
      for (const TypeStatus* t : nacked) {
        nacks.push_back({n.id(), t->type(), t->nacked_version(), formatTime(t->nack_time()),
                         orDash(oneLine(t->nack_reason()))});
      }
    }
    return rows;
  };
  auto sluice_rows = nodeTable(false);
  auto proxyless_rows = nodeTable(true);
  out += sluice_rows.size() > 1 ? renderTable(sluice_rows) : "(none)\n";
  if (proxyless_rows.size() > 1) {
    out += "\nPROXYLESS NODES (gRPC xDS clients)\n" + renderTable(proxyless_rows);
  }
  if (nacks.size() > 1) {
    out += "\nNACKS\n" + renderTable(nacks);
  }
  return out;
}

std::string statusJson(const StatusResponse& status) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(status, &json, opts);
  return prettyJson(json) + "\n";
}

}  // namespace Cli
}  // namespace sluice
