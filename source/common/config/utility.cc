#include "source/common/config/utility.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <istream>
#include <iterator>
#include <limits>
#include <streambuf>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/type_resolver_util.h"
#include "re2/re2.h"
#include "source/common/common/json.h"
#include "yaml-cpp/eventhandler.h"
#include "yaml-cpp/yaml.h"

namespace sluice {
namespace Config {

namespace {
// Milliseconds, rounded up so a positive sub-millisecond value never becomes 0 ("disabled").
std::chrono::milliseconds roundUpMs(const google::protobuf::Duration& d) {
  return std::chrono::milliseconds(d.seconds() * 1000 + (d.nanos() + 999999) / 1000000);
}
}  // namespace

absl::StatusOr<std::chrono::milliseconds> durationMs(const google::protobuf::Duration& d,
                                                     const std::string& field) {
  if (d.seconds() < 0 || d.nanos() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": must not be negative"));
  }
  if (d.seconds() > 315576000000LL / 1000) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": too large"));
  }
  return roundUpMs(d);
}

std::chrono::milliseconds durationOr(bool has, const google::protobuf::Duration& d,
                                     std::chrono::milliseconds def) {
  if (!has) {
    return def;
  }
  return roundUpMs(d);
}

namespace {

// "250ms", "1.5s", "2m", "1h", "100us" -> the protobuf JSON form "0.250s". Anything else is
// left as is (the JSON parser then reports it against the field). absl::ParseDuration does the
// arithmetic; the form is checked first because it also takes what config does not: signs,
// "inf", a unit-less "0" and sums like "1h30m".
std::string normalizeDuration(const std::string& v) {
  // An unsigned decimal number (at most one '.', a digit on one side of it), then one unit.
  static constexpr absl::string_view kUnits[] = {"ns", "us", "ms", "s", "m", "h"};
  const size_t unit_at = v.find_first_not_of("0123456789.");
  if (unit_at == 0 || unit_at == std::string::npos) return v;
  const absl::string_view number(v.data(), unit_at);
  const absl::string_view unit = absl::string_view(v).substr(unit_at);
  if (std::find(std::begin(kUnits), std::end(kUnits), unit) == std::end(kUnits)) return v;
  const size_t dot = number.find('.');
  if (dot != absl::string_view::npos && number.find('.', dot + 1) != absl::string_view::npos) {
    return v;
  }
  // At most 315576000000 whole units (the protobuf range, in seconds), and nanosecond
  // precision: fraction digits past the ninth are dropped, so no unit overflows.
  const absl::string_view whole = number.substr(0, dot);
  uint64_t w = 0;
  if (!whole.empty() && (!absl::SimpleAtoi(whole, &w) || w > 315576000000ULL)) return v;
  const absl::string_view fraction =
      dot == absl::string_view::npos ? absl::string_view() : number.substr(dot + 1, 9);
  absl::Duration d;
  if (!absl::ParseDuration(
          absl::StrCat(whole, dot == absl::string_view::npos ? "" : ".", fraction, unit), &d)) {
    return v;
  }
  absl::Duration nanos;
  const int64_t secs = absl::IDivDuration(d, absl::Seconds(1), &nanos);
  const int64_t ns = absl::ToInt64Nanoseconds(nanos);
  return ns == 0 ? absl::StrCat(secs, "s")
                 : absl::StrCat(secs, ".", absl::StrFormat("%09d", ns), "s");
}

// The field `key` names in `type` (nullptr: no type, or not a field of it).
const google::protobuf::FieldDescriptor* findField(const google::protobuf::Descriptor* type,
                                                   const std::string& key) {
  if (type == nullptr) return nullptr;
  const google::protobuf::FieldDescriptor* f = type->FindFieldByName(key);
  if (f == nullptr) f = type->FindFieldByCamelcaseName(key);
  return f;
}

bool isDuration(const google::protobuf::FieldDescriptor* f) {
  return f != nullptr && f->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE &&
         f->message_type()->full_name() == "google.protobuf.Duration";
}

// The message type whose fields the keys of a map under `f` name (nullptr: not a message field,
// or a Struct, whose keys are free).
const google::protobuf::Descriptor* messageTypeOf(const google::protobuf::FieldDescriptor* f) {
  return f != nullptr && f->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE &&
                 f->message_type()->full_name() != "google.protobuf.Struct"
             ? f->message_type()
             : nullptr;
}

// "ROUND_ROBIN, LEAST_REQUEST, ..." for error messages.
std::string enumValueNames(const google::protobuf::EnumDescriptor* e) {
  constexpr int kShown = 12;
  std::string out;
  for (int i = 0; i < e->value_count() && i < kShown; ++i) {
    absl::StrAppend(&out, i == 0 ? "" : ", ", e->value(i)->name());
  }
  if (e->value_count() > kShown) out += ", ...";
  return out;
}

std::string tooBig(size_t bytes) {
  return absl::StrCat("config is ", bytes, " bytes, more than the ", kMaxConfigBytes >> 20,
                      " MiB a config may have");
}

// Whether plain scalar `v` is a JSON integer (no sign '+', no leading zero).
bool isJsonInteger(const std::string& v, int64_t& i) {
  return absl::SimpleAtoi(v, &i) && v.find('+') == std::string::npos &&
         !(v.size() > 1 && v[0] == '0') && !(v.size() > 2 && v[0] == '-' && v[1] == '0');
}

// One YAML parser event, as kept for the nodes an anchor (`&name`) names so that an alias
// (`*name`) can replay them.
struct Event {
  enum class Kind : uint8_t { kNull, kAlias, kScalar, kSeqStart, kSeqEnd, kMapStart, kMapEnd };
  Kind kind;
  bool string_tag = false;   // kScalar: quoted or tagged !!str, so always a string
  int line = 0;              // 1-based
  YAML::anchor_t alias = 0;  // kAlias: the anchor it names
  std::string value;         // kScalar
};

// Streams the events of yaml-cpp's parser into JSON text, without building a node tree (which
// costs ~80 bytes of memory per byte of input). Aliases are replayed from the events recorded
// for their anchor, within kMaxAliasNodes and kMaxAliasBytes, so an alias bomb costs what its
// text costs plus at most those limits. The first error stops all output; the parser still reads
// to the end of its document (bounded by kMaxConfigBytes).
class JsonBuilder : public YAML::EventHandler {
 public:
  JsonBuilder(const std::string& text, const google::protobuf::Descriptor* type)
      : text_(text), type_(type) {}

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents_ > 1) {
      extra_document_line_ = mark.line + 1;
      extra_document_explicit_ = mark.pos >= 0 && static_cast<size_t>(mark.pos) < text_.size() &&
                                 text_.compare(mark.pos, 3, "---") == 0;
    }
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    parsed(Event{Event::Kind::kNull, false, mark.line + 1}, anchor);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    parsed(Event{Event::Kind::kAlias, false, mark.line + 1, anchor}, 0);
  }
  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    parsed(Event{Event::Kind::kScalar, tag == "!" || tag == "tag:yaml.org,2002:str", mark.line + 1,
                 0, value},
           anchor);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    parsed(Event{Event::Kind::kSeqStart, false, mark.line + 1}, anchor);
  }
  void OnSequenceEnd() override { parsed(Event{Event::Kind::kSeqEnd}, 0); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    parsed(Event{Event::Kind::kMapStart, false, mark.line + 1}, anchor);
  }
  void OnMapEnd() override { parsed(Event{Event::Kind::kMapEnd}, 0); }
  void OnAnchor(const YAML::Mark&, const std::string& name) override { anchor_name_ = name; }

  const absl::Status& status() const { return status_; }
  // The JSON text: "null" when the text has no document (empty, or only comments).
  std::string take() { return out_.empty() ? "null" : std::move(out_); }

 private:
  static constexpr size_t kOpen = std::numeric_limits<size_t>::max();

  // An open map or list.
  struct Frame {
    bool map = false;
    bool want_key = true;  // map: the next node is a key
    int64_t index = -1;    // the current item (list) or key (map); -1 before the first
    const google::protobuf::Descriptor* type = nullptr;        // map: what its keys name
    const google::protobuf::FieldDescriptor* field = nullptr;  // list: its field; map: the key's
    std::string key;  // map: the current key (for error paths)
    // map: key (the field's name when it names one) -> line, and the key as written when that
    // differs ("connectTimeout" for connect_timeout).
    absl::flat_hash_map<std::string, std::pair<int, std::string>> keys;
  };
  struct Anchor {
    size_t begin = 0;
    size_t end = kOpen;  // log_ index past its last event; kOpen until the node is complete
    std::string name;
  };
  struct OpenAnchor {
    YAML::anchor_t id;
    int depth;  // parse depth of its map or list; -1 for a scalar
  };

  // An event from the parser.
  void parsed(Event e, YAML::anchor_t anchor) {
    if (!status_.ok()) return;
    if (documents_ > 1) {
      // A document after the first: only an empty one (a trailing "---") is harmless.
      if (e.kind != Event::Kind::kNull) {
        fail(extra_document_explicit_
                 ? absl::StrCat("more than one YAML document: a second one starts at line ",
                                extra_document_line_, " (a config file holds one)")
                 : absl::StrCat("unexpected content after the end of the config at line ",
                                e.line ? e.line : extra_document_line_));
      }
      return;
    }
    const bool starts = e.kind == Event::Kind::kSeqStart || e.kind == Event::Kind::kMapStart;
    const bool ends = e.kind == Event::Kind::kSeqEnd || e.kind == Event::Kind::kMapEnd;
    if (starts) ++parse_depth_;
    if (anchor != 0) {
      anchors_[anchor] = Anchor{log_.size(), kOpen, std::move(anchor_name_)};
      anchor_name_.clear();
      open_anchors_.push_back({anchor, starts ? parse_depth_ : -1});
    }
    if (!open_anchors_.empty()) log_.push_back(e);
    process(e);
    if (!open_anchors_.empty()) {
      const OpenAnchor& top = open_anchors_.back();
      if ((anchor != 0 && !starts) || (ends && top.depth == parse_depth_)) {
        anchors_[top.id].end = log_.size();
        open_anchors_.pop_back();
      }
    }
    if (ends) --parse_depth_;
  }

  // An event from the parser or replayed for an alias: appends its JSON.
  void process(const Event& e) {
    if (!status_.ok()) return;
    if (replaying_ > 0 && e.kind != Event::Kind::kSeqEnd && e.kind != Event::Kind::kMapEnd) {
      if (++alias_nodes_ > kMaxAliasNodes) {
        return failAlias(absl::StrCat("more than ", kMaxAliasNodes, " nodes"));
      }
      if (alias_bytes_ + (out_.size() - replay_start_) > kMaxAliasBytes) {
        return failAlias(absl::StrCat("more than ", kMaxAliasBytes >> 20, " MiB of JSON"));
      }
    }
    switch (e.kind) {
      case Event::Kind::kAlias:
        return replay(e);
      case Event::Kind::kSeqEnd:
      case Event::Kind::kMapEnd:
        return close();
      default:
        break;
    }
    if (depth_ > 0 && frames_[depth_ - 1].map && frames_[depth_ - 1].want_key) {
      return key(e);
    }
    // A value: the root, an item of a list, or the value of a map's current key.
    const google::protobuf::FieldDescriptor* field = nullptr;
    const google::protobuf::Descriptor* type = type_;
    if (depth_ > 0) {
      Frame& f = frames_[depth_ - 1];
      field = f.field;
      if (f.map) {
        type = messageTypeOf(f.field);
      } else {
        if (++f.index > 0) out_ += ',';
        type = f.type;
      }
    }
    switch (e.kind) {
      case Event::Kind::kNull:
        out_ += "null";
        return valueDone();
      case Event::Kind::kScalar:
        scalar(e, field);
        return valueDone();
      case Event::Kind::kSeqStart:
      case Event::Kind::kMapStart:
        return open(e, type, field);
      default:
        return;
    }
  }

  void open(const Event& e, const google::protobuf::Descriptor* type,
            const google::protobuf::FieldDescriptor* field) {
    if (depth_ >= static_cast<size_t>(kMaxConfigDepth)) {
      return fail(
          absl::StrCat("config nested deeper than ", kMaxConfigDepth, " levels at line ", e.line));
    }
    if (depth_ == frames_.size()) frames_.emplace_back();
    Frame& f = frames_[depth_++];  // reused: its key map keeps its memory
    f.map = e.kind == Event::Kind::kMapStart;
    f.want_key = true;
    f.index = -1;
    f.type = type;
    f.field = f.map ? nullptr : field;
    f.keys.clear();
    out_ += f.map ? '{' : '[';
  }

  void close() {
    out_ += frames_[depth_ - 1].map ? '}' : ']';
    --depth_;
    valueDone();
  }

  void valueDone() {
    if (depth_ > 0 && frames_[depth_ - 1].map) frames_[depth_ - 1].want_key = true;
  }

  void key(const Event& e) {
    Frame& f = frames_[depth_ - 1];
    if (e.kind != Event::Kind::kScalar) {
      return fail(absl::StrCat(where(), "map keys must be strings, at line ", e.line));
    }
    const google::protobuf::FieldDescriptor* field = findField(f.type, e.value);
    const std::string& id = field != nullptr ? field->name() : e.value;
    auto [it, inserted] = f.keys.try_emplace(
        id, e.line, field != nullptr && field->name() != e.value ? e.value : std::string());
    if (!inserted) {
      const std::string& first = it->second.second.empty() ? id : it->second.second;
      return fail(absl::StrCat(where(), "duplicate key \"", e.value, "\" at line ", e.line,
                               first == e.value
                                   ? " (first at line "
                                   : absl::StrCat(": the same field as \"", first, "\" at line "),
                               it->second.first, first == e.value ? ")" : ""));
    }
    if (++f.index > 0) out_ += ',';
    Json::appendString(out_, e.value);
    out_ += ':';
    f.field = field;
    f.key = e.value;
    f.want_key = false;
  }

  void scalar(const Event& e, const google::protobuf::FieldDescriptor* field) {
    const std::string& v = e.value;
    if (isDuration(field)) {
      Json::appendString(out_, normalizeDuration(v));
      return;
    }
    if (e.string_tag) {
      Json::appendString(out_, v);  // quoted in the source: always a string
      return;
    }
    if (v == "true" || v == "false") {
      out_ += v;
      return;
    }
    if (v == "null" || v == "~") {
      out_ += "null";
      return;
    }
    int64_t i;
    double d;
    static const LazyRE2 kFloat = {
        R"(-?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][-+]?\d+|\.\d+[eE][-+]?\d+))"};
    if (isJsonInteger(v, i)) {
      if (field != nullptr && field->type() == google::protobuf::FieldDescriptor::TYPE_ENUM &&
          (i < std::numeric_limits<int32_t>::min() || i > std::numeric_limits<int32_t>::max() ||
           field->enum_type()->FindValueByNumber(static_cast<int>(i)) == nullptr)) {
        return fail(absl::StrCat(where(), v, " is not a ", field->enum_type()->name(),
                                 " value, at line ", e.line, " (one of ",
                                 enumValueNames(field->enum_type()), ")"));
      }
      out_ += v;
    } else if (RE2::FullMatch(v, *kFloat) && absl::SimpleAtod(v, &d) && std::isfinite(d)) {
      // YAML floats such as ".5" or "5." are not JSON numbers: re-print them.
      out_ += absl::StrFormat("%.17g", d);
    } else {
      Json::appendString(out_, v);
    }
  }

  void replay(const Event& e) {
    auto it = anchors_.find(e.alias);
    if (it == anchors_.end()) {
      return fail(absl::StrCat("unknown YAML alias at line ", e.line));
    }
    if (it->second.end == kOpen) {
      return fail(absl::StrCat("the YAML alias *", it->second.name, " at line ", e.line,
                               " is inside the node it names"));
    }
    if (replaying_ >= static_cast<size_t>(kMaxConfigDepth)) {
      return fail(absl::StrCat("config nested deeper than ", kMaxConfigDepth,
                               " levels through YAML aliases at line ", e.line));
    }
    if (replaying_ == 0) {
      replay_start_ = out_.size();
      replay_line_ = e.line;
      replay_name_ = it->second.name;
    }
    ++replaying_;
    const size_t begin = it->second.begin, end = it->second.end;
    for (size_t i = begin; i < end && status_.ok(); ++i) {
      process(log_[i]);  // no events are logged while replaying: log_ does not move
    }
    --replaying_;
    if (replaying_ == 0) alias_bytes_ += out_.size() - replay_start_;
  }

  // "a.b[2].c: " for the node being converted ("" at the root).
  std::string where() const {
    std::string p;
    for (size_t i = 0; i < depth_; ++i) {
      const Frame& f = frames_[i];
      if (f.map && !f.want_key) {
        absl::StrAppend(&p, p.empty() ? "" : ".", f.key);
      } else if (!f.map && f.index >= 0) {
        absl::StrAppend(&p, "[", f.index, "]");
      }
    }
    return p.empty() ? p : p + ": ";
  }

  void fail(std::string message) {
    if (status_.ok()) status_ = absl::InvalidArgumentError(std::move(message));
  }
  void failAlias(const std::string& what) {
    fail(absl::StrCat("config expands to ", what, " through YAML aliases (the alias *",
                      replay_name_, " at line ", replay_line_, "); aliases may add at most ",
                      kMaxAliasNodes, " nodes and ", kMaxAliasBytes >> 20, " MiB"));
  }

  const std::string& text_;
  const google::protobuf::Descriptor* const type_;
  absl::Status status_;
  std::string out_;
  int documents_ = 0;
  int extra_document_line_ = 0;
  bool extra_document_explicit_ = false;

  std::vector<Frame> frames_;  // [0, depth_) are open
  size_t depth_ = 0;

  // Anchors: the events of every node inside an anchored one are logged (only those: a config
  // without anchors logs nothing).
  std::vector<Event> log_;
  absl::flat_hash_map<YAML::anchor_t, Anchor> anchors_;
  std::vector<OpenAnchor> open_anchors_;
  std::string anchor_name_;
  int parse_depth_ = 0;

  // Alias expansion.
  size_t replaying_ = 0;  // nested replays
  size_t replay_start_ = 0;
  int replay_line_ = 0;
  std::string replay_name_;
  size_t alias_nodes_ = 0;
  size_t alias_bytes_ = 0;
};

// A read-only streambuf over a string: the YAML parser reads the text in place.
class StringBuf : public std::streambuf {
 public:
  explicit StringBuf(const std::string& s) {
    char* p = const_cast<char*>(s.data());
    setg(p, p, p + s.size());
  }
};

// FNV-1a over a JSON key without '_' and case: "connect_timeout" and "connectTimeout" collide.
struct LooseKeyHash {
  size_t operator()(absl::string_view k) const {
    uint64_t h = 1469598103934665603ULL;
    for (char c : k) {
      if (c == '_') continue;
      h = (h ^ static_cast<unsigned char>(absl::ascii_tolower(c))) * 1099511628211ULL;
    }
    return h;
  }
};
struct LooseKeyEq {
  bool operator()(absl::string_view a, absl::string_view b) const {
    size_t i = 0, j = 0;
    for (;;) {
      while (i < a.size() && a[i] == '_') ++i;
      while (j < b.size() && b[j] == '_') ++j;
      if (i == a.size() || j == b.size()) return i == a.size() && j == b.size();
      if (absl::ascii_tolower(a[i++]) != absl::ascii_tolower(b[j++])) return false;
    }
  }
};

// Whether `text` may take protobuf's JSON parser: one JSON object with nothing after it but
// white space, no key twice in an object (compared without '_' and case: protobuf takes
// "connect_timeout" and "connectTimeout" for the same field, and keeps the last of two equal
// keys), no escapes in keys, at most kMaxConfigDepth deep. Anything else goes the YAML way,
// which reports it with its line. Not a validator: protobuf's parser checks the rest.
bool jsonFastPathOk(absl::string_view s) {
  size_t i = s.find_first_not_of(" \t\r\n");
  if (i == absl::string_view::npos || s[i] != '{') return false;
  struct Level {
    bool object = false;
    bool want_key = false;
    absl::flat_hash_set<absl::string_view, LooseKeyHash, LooseKeyEq> keys;
  };
  std::vector<Level> levels(kMaxConfigDepth);
  size_t depth = 0;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    switch (c) {
      case ' ':
      case '\t':
      case '\r':
      case '\n':
        // Indentation comes in runs.
        while (i + 1 < s.size() && (s[i + 1] == ' ' || s[i + 1] == '\n')) ++i;
        break;
      case ',':
      case ':':
        if (depth == 0) return false;
        if (levels[depth - 1].object) levels[depth - 1].want_key = c == ',';
        break;
      case '{':
      case '[': {
        if (depth == levels.size()) return false;
        Level& l = levels[depth++];
        l.object = c == '{';
        l.want_key = l.object;
        l.keys.clear();
        break;
      }
      case '}':
      case ']':
        if (depth == 0 || levels[depth - 1].object != (c == '}')) return false;
        if (--depth == 0) {
          return s.find_first_not_of(" \t\r\n", i + 1) == absl::string_view::npos;
        }
        break;
      case '"': {
        if (depth == 0) return false;
        // The closing quote: the next '"' not escaped (after an even run of backslashes).
        size_t j = i + 1;
        for (;;) {
          const void* q = memchr(s.data() + j, '"', s.size() - j);
          if (q == nullptr) return false;
          const size_t quote = static_cast<const char*>(q) - s.data();
          size_t b = quote;
          while (b > j && s[b - 1] == '\\') --b;
          j = quote;
          if ((quote - b) % 2 == 0) break;
          ++j;
        }
        Level& l = levels[depth - 1];
        if (l.object && l.want_key) {
          const absl::string_view key = s.substr(i + 1, j - i - 1);
          if (key.find('\\') != absl::string_view::npos || !l.keys.insert(key).second) {
            return false;
          }
        }
        i = j;
        break;
      }
      default: {
        // Numbers, true, false, null: skipped (protobuf's parser checks them).
        auto literal = [](char ch) {
          return absl::ascii_isalnum(ch) || ch == '-' || ch == '+' || ch == '.';
        };
        if (!literal(c)) return false;
        while (i + 1 < s.size() && literal(s[i + 1])) ++i;
        break;
      }
    }
  }
  return false;
}

// For each message type: its fields that are enums or messages that can hold one, at any
// depth; the others need no look. Memoized per call (node map: references stay valid).
using EnumFieldMemo = absl::node_hash_map<const google::protobuf::Descriptor*,
                                          std::vector<const google::protobuf::FieldDescriptor*>>;

const std::vector<const google::protobuf::FieldDescriptor*>& enumFields(
    const google::protobuf::Descriptor* type, EnumFieldMemo& memo,
    absl::flat_hash_set<const google::protobuf::Descriptor*>& in_progress) {
  auto it = memo.find(type);
  if (it != memo.end()) return it->second;
  in_progress.insert(type);
  std::vector<const google::protobuf::FieldDescriptor*> out;
  for (int i = 0; i < type->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* f = type->field(i);
    if (f->type() == google::protobuf::FieldDescriptor::TYPE_ENUM ||
        (f->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE &&
         // A type being looked at counts as holding one: safe for recursive types.
         (in_progress.contains(f->message_type()) ||
          !enumFields(f->message_type(), memo, in_progress).empty()))) {
      out.push_back(f);
    }
  }
  in_progress.erase(type);
  return memo.emplace(type, std::move(out)).first->second;
}

// The field path of an error: fields and their indexes (-1: not repeated), built into text
// only when there is an error (10,000-route configs have ~100,000 fields).
using FieldPath = std::vector<std::pair<const google::protobuf::FieldDescriptor*, int>>;

std::string pathText(const FieldPath& path) {
  std::string out;
  for (const auto& [f, i] : path) {
    absl::StrAppend(&out, out.empty() ? "" : ".", f->name());
    if (i >= 0) absl::StrAppend(&out, "[", i, "]");
  }
  return out;
}

absl::Status checkEnums(const google::protobuf::Message& m, FieldPath& path, EnumFieldMemo& memo,
                        absl::flat_hash_set<const google::protobuf::Descriptor*>& in_progress) {
  const google::protobuf::Reflection* r = m.GetReflection();
  for (const google::protobuf::FieldDescriptor* f :
       enumFields(m.GetDescriptor(), memo, in_progress)) {
    const int n = f->is_repeated() ? r->FieldSize(m, f) : (r->HasField(m, f) ? 1 : 0);
    if (f->type() == google::protobuf::FieldDescriptor::TYPE_ENUM) {
      for (int i = 0; i < n; ++i) {
        const int v = f->is_repeated() ? r->GetRepeatedEnumValue(m, f, i) : r->GetEnumValue(m, f);
        if (f->enum_type()->FindValueByNumber(v) == nullptr) {
          path.emplace_back(f, f->is_repeated() ? i : -1);
          return absl::InvalidArgumentError(absl::StrCat(pathText(path), ": ", v, " is not a ",
                                                         f->enum_type()->name(), " value (one of ",
                                                         enumValueNames(f->enum_type()), ")"));
        }
      }
    } else {
      for (int i = 0; i < n; ++i) {
        path.emplace_back(f, f->is_repeated() ? i : -1);
        auto s = checkEnums(f->is_repeated() ? r->GetRepeatedMessage(m, f, i) : r->GetMessage(m, f),
                            path, memo, in_progress);
        if (!s.ok()) return s;
        path.pop_back();
      }
    }
  }
  return absl::OkStatus();
}

const char* fileKind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

absl::StatusOr<std::string> yamlToJson(const std::string& text,
                                       const google::protobuf::Descriptor* type) {
  if (text.size() > kMaxConfigBytes) {
    return absl::InvalidArgumentError(tooBig(text.size()));
  }
  JsonBuilder builder(text, type);
  try {
    StringBuf buf(text);
    std::istream in(&buf);
    YAML::Parser parser(in);
    while (builder.status().ok() && parser.HandleNextDocument(builder)) {
    }
  } catch (const YAML::Exception& e) {
    // Our error came first (the parser's own depth limit, 2000, is past ours).
    if (!builder.status().ok()) return builder.status();
    return absl::InvalidArgumentError(absl::StrCat("invalid YAML: ", e.what()));
  }
  if (!builder.status().ok()) return builder.status();
  return builder.take();
}

absl::Status checkEnumValues(const google::protobuf::Message& message) {
  FieldPath path;
  EnumFieldMemo memo;
  absl::flat_hash_set<const google::protobuf::Descriptor*> in_progress;
  return checkEnums(message, path, memo, in_progress);
}

absl::Status loadFromYaml(const std::string& text, google::protobuf::Message& message) {
  if (text.size() > kMaxConfigBytes) {
    return absl::InvalidArgumentError(tooBig(text.size()));
  }
  // Fast path for JSON (what tools and the control plane write): protobuf's own parser is
  // ~30x faster than going through yaml-cpp, which matters for 10,000-route configs. Anything it
  // refuses ("250ms" durations, YAML, duplicate keys) takes the YAML path below, whose errors
  // name the field and the line.
  if (jsonFastPathOk(text)) {
    std::unique_ptr<google::protobuf::Message> scratch(message.New());
    google::protobuf::util::JsonParseOptions fast;
    fast.ignore_unknown_fields = false;
    if (google::protobuf::util::JsonStringToMessage(text, scratch.get(), fast).ok() &&
        checkEnumValues(*scratch).ok()) {
      message.GetReflection()->Swap(&message, scratch.get());
      return absl::OkStatus();
    }
  }
  auto json = yamlToJson(text, message.GetDescriptor());
  if (!json.ok()) {
    return json.status();
  }
  if (*json == "null") {
    *json = "{}";
  }
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(*json, &message, opts);
  if (!status.ok()) {
    return absl::InvalidArgumentError(std::string(status.message()));
  }
  return checkEnumValues(message);
}

absl::StatusOr<std::string> readConfigFile(const std::string& path) {
  // stat() first: a device is refused without being opened.
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  auto check = [&path](const struct stat& st) -> absl::Status {
    if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) {
      return absl::InvalidArgumentError(
          absl::StrCat("config file ", path, " is ", fileKind(st.st_mode)));
    }
    if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > kMaxConfigBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("config file ", path, " is ", st.st_size, " bytes, more than the ",
                       kMaxConfigBytes >> 20, " MiB a config may have"));
    }
    return absl::OkStatus();
  };
  absl::Status s = check(st);
  if (!s.ok()) return s;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  // Again on what was opened: the path may have been replaced in between.
  if (::fstat(fd, &st) != 0) {
    return absl::InternalError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  s = check(st);
  if (!s.ok()) return s;
  std::string text;
  if (S_ISREG(st.st_mode)) text.reserve(st.st_size);
  char buf[64 * 1024];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
    }
    if (n == 0) break;
    if (text.size() + n > kMaxConfigBytes) {
      return absl::InvalidArgumentError(absl::StrCat("config file ", path, " is more than the ",
                                                     kMaxConfigBytes >> 20,
                                                     " MiB a config may have"));
    }
    text.append(buf, n);
  }
  return text;
}

absl::Status loadFromFile(const std::string& path, google::protobuf::Message& message) {
  auto text = readConfigFile(path);
  if (!text.ok()) {
    return text.status();
  }
  return loadFromYaml(*text, message);
}

std::string toJson(const google::protobuf::Message& message, bool pretty) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.add_whitespace = pretty;
  std::string out;
  const google::protobuf::Descriptor* type = message.GetDescriptor();
  if (type->file()->pool() != google::protobuf::DescriptorPool::generated_pool()) {
    (void)google::protobuf::util::MessageToJsonString(message, &out, opts);
    return out;
  }
  // Through a deterministic serialization: map entries come out sorted by key, so the same
  // config prints the same text every time (diffs, state files, `sluicectl convert`).
  static constexpr char kUrlPrefix[] = "type.googleapis.com";
  static google::protobuf::util::TypeResolver* resolver =
      google::protobuf::util::NewTypeResolverForDescriptorPool(
          kUrlPrefix, google::protobuf::DescriptorPool::generated_pool());
  std::string binary;
  {
    google::protobuf::io::StringOutputStream stream(&binary);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  if (!google::protobuf::util::BinaryToJsonString(
           resolver, absl::StrCat(kUrlPrefix, "/", type->full_name()), binary, &out, opts)
           .ok()) {
    out.clear();
    (void)google::protobuf::util::MessageToJsonString(message, &out, opts);
  }
  return out;
}

}  // namespace Config
}  // namespace sluice
