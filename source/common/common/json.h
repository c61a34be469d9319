#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace sluice {
namespace Json {

// Appends `s` to `out` as a JSON string literal (quotes included).
void appendString(std::string& out, absl::string_view s);
// Appends `s` escaped as the inside of a JSON string literal (no quotes).
void appendEscaped(std::string& out, absl::string_view s);
// As appendString, for text a peer sent (header values, query strings): bytes that are not
// part of a well-formed UTF-8 sequence are written as U+FFFD, so the output is valid JSON for
// a strict parser whatever the input.
void appendStringUtf8Safe(std::string& out, absl::string_view s);
// The same without the quotes (a string written in pieces).
void appendEscapedUtf8Safe(std::string& out, absl::string_view s);
// The same into a buffer with room for kMaxEscapedBytesPerByte * s.size() bytes at `out`
// (a writer of its own that grows once): returns the end of what was written.
constexpr size_t kMaxEscapedBytesPerByte = 6;  // "\u00XX", or "\ufffd" for a bad byte
char* escapeUtf8Safe(char* out, absl::string_view s);
// `s` as a JSON string literal (quotes included).
inline std::string quote(absl::string_view s) {
  std::string out;
  appendString(out, s);
  return out;
}

// Minimal streaming JSON writer for admin output and access logs (no DOM, no allocation beyond
// the output string).
class Writer {
 public:
  void beginObject() {
    sep();
    out_ += '{';
    first_.push_back(true);
  }
  void endObject() {
    out_ += '}';
    first_.pop_back();
  }
  void beginArray() {
    sep();
    out_ += '[';
    first_.push_back(true);
  }
  void endArray() {
    out_ += ']';
    first_.pop_back();
  }
  void key(absl::string_view k) {
    sep();
    appendString(out_, k);
    out_ += ':';
    after_key_ = true;
  }
  void value(absl::string_view v) {
    sep();
    appendString(out_, v);
  }
  void value(const char* v) { value(absl::string_view(v)); }
  void value(const std::string& v) { value(absl::string_view(v)); }
  void value(uint64_t v);
  void value(int64_t v);
  void value(uint32_t v) { value(static_cast<uint64_t>(v)); }
  void value(int v) { value(static_cast<int64_t>(v)); }
  void value(double v);
  void value(bool v) {
    sep();
    out_ += v ? "true" : "false";
  }
  void raw(absl::string_view json) {
    sep();
    out_.append(json.data(), json.size());
  }
  template <class T>
  void field(absl::string_view k, const T& v) {
    key(k);
    value(v);
  }
  std::string take() { return std::move(out_); }
  const std::string& str() const { return out_; }

 private:
  void sep() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_.empty()) {
      if (!first_.back()) out_ += ',';
      first_.back() = false;
    }
  }
  std::string out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

}  // namespace Json
}  // namespace sluice
