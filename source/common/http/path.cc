#include "source/common/http/path.h"

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_split.h"

namespace sluice {
namespace Http {
namespace Path {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool isUnreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

void appendPercentEncoded(std::string& out, unsigned char c) {
  static const char kHex[] = "0123456789ABCDEF";
  out += '%';
  out += kHex[c >> 4];
  out += kHex[c & 0xf];
}

namespace {

// Does the path need the slow path at all?
bool needsWork(absl::string_view path, const NormalizeOptions& o) {
  for (size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c == '%' || c == '\\') {
      return true;
    }
    if (c == '/' && i + 1 < path.size()) {
      const char n = path[i + 1];
      if ((n == '/' && (o.merge_slashes || o.normalize)) || (n == '.' && o.normalize)) {
        return true;
      }
    }
  }
  return false;
}

void mergeSlashes(std::string& path) {
  size_t w = 0;
  for (size_t r = 0; r < path.size(); ++r) {
    if (path[r] == '/' && w > 0 && path[w - 1] == '/') {
      continue;
    }
    path[w++] = path[r];
  }
  path.resize(w);
}

}  // namespace

std::string removeDotSegments(absl::string_view path) {
  absl::InlinedVector<absl::string_view, 16> segments;
  bool trailing_slash = false;
  // The path starts with '/': every segment follows a '/'.
  for (absl::string_view seg : absl::StrSplit(path.substr(1), '/')) {
    trailing_slash = false;
    if (seg == ".") {
      trailing_slash = true;
    } else if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
      trailing_slash = true;
    } else {
      segments.push_back(seg);
    }
  }
  std::string out;
  out.reserve(path.size());
  for (absl::string_view seg : segments) {
    out += '/';
    out.append(seg.data(), seg.size());
  }
  if (out.empty() || trailing_slash) {
    out += '/';
  }
  return out;
}

Result normalize(std::string& target, const NormalizeOptions& o, absl::string_view& error) {
  if (target.empty() || target[0] != '/') {
    return Result::Unchanged;  // "*" (OPTIONS) or refused by the codec
  }
  const size_t fragment = target.find('#');
  const size_t query_pos = target.find('?');
  // The fragment starts at the first '#' (a client should never send one); it is dropped.
  const size_t path_end = std::min(query_pos, fragment);
  const absl::string_view path = absl::string_view(target).substr(0, path_end);
  if (fragment == std::string::npos && !needsWork(path, o)) {
    return Result::Unchanged;
  }

  std::string out;
  out.reserve(path.size());
  bool unescaped_slash = false;
  for (size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c == '\\') {
      error = "backslash in path";
      return Result::Reject;
    }
    if (c != '%') {
      out += c;
      continue;
    }
    if (i + 2 >= path.size()) {
      error = "invalid percent-encoding in path";
      return Result::Reject;
    }
    const int hi = hexValue(path[i + 1]);
    const int lo = hexValue(path[i + 2]);
    if (hi < 0 || lo < 0) {
      error = "invalid percent-encoding in path";
      return Result::Reject;
    }
    const unsigned char v = static_cast<unsigned char>(hi * 16 + lo);
    i += 2;
    if (v == 0) {
      error = "%00 in path";
      return Result::Reject;
    }
    if (v == '/' || v == '\\') {
      switch (o.escaped_slashes) {
        case EscapedSlashesAction::RejectRequest:
          error = "escaped slash (%2F or %5C) in path";
          return Result::Reject;
        case EscapedSlashesAction::KeepUnchanged:
          out += '%';
          out += v == '/' ? "2F" : "5C";
          continue;
        case EscapedSlashesAction::UnescapeAndForward:
        case EscapedSlashesAction::UnescapeAndRedirect:
          out += '/';  // an encoded backslash means a slash, as browsers and Envoy read it
          unescaped_slash = true;
          continue;
      }
    }
    if (o.normalize && isUnreserved(v)) {
      out += static_cast<char>(v);
    } else if (o.normalize) {
      appendPercentEncoded(out, v);
    } else {
      out.append(path.data() + i - 2, 3);
    }
  }
  if (o.merge_slashes) {
    mergeSlashes(out);
  }
  if (o.normalize) {
    out = removeDotSegments(out);
  }
  // Keep the query (without any fragment).
  if (query_pos != std::string::npos && query_pos < fragment) {
    out.append(target, query_pos,
               fragment == std::string::npos ? std::string::npos : fragment - query_pos);
  }
  const bool changed = out != target;
  target = std::move(out);
  if (unescaped_slash && o.escaped_slashes == EscapedSlashesAction::UnescapeAndRedirect) {
    return Result::Redirect;
  }
  return changed ? Result::Changed : Result::Unchanged;
}

}  // namespace Path
}  // namespace Http
}  // namespace sluice
