#pragma once

#include <sys/uio.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace sluice {
namespace Buffer {

class SharedSlice;
using SharedSlicePtr = std::unique_ptr<const SharedSlice, void (*)(const SharedSlice*)>;

// Immutable bytes that buffers on any thread can refer to instead of copying them (a cached
// response body, served to many clients at once). One allocation holds the count and the bytes;
// each buffer that refers to them holds one reference (an atomic increment) and drops it once
// the bytes are drained or the buffer is destroyed. The bytes are freed with the last reference.
class SharedSlice {
 public:
  // A new slice holding a copy of `data`, with the returned pointer's reference.
  static SharedSlicePtr copyOf(absl::string_view data);
  // The same, filled by `fill(char* dst)` with exactly `size` bytes (no intermediate copy).
  template <class F>
  static SharedSlicePtr make(size_t size, F&& fill) {
    SharedSlice* s = allocate(size);
    fill(s->bytes());
    return SharedSlicePtr(s, &unrefDeleter);
  }
  SharedSlice(const SharedSlice&) = delete;
  SharedSlice& operator=(const SharedSlice&) = delete;

  const char* data() const { return const_cast<SharedSlice*>(this)->bytes(); }
  size_t size() const { return size_; }
  absl::string_view view() const { return absl::string_view(data(), size_); }
  void ref() const { refs_.fetch_add(1, std::memory_order_relaxed); }
  void unref() const;
  // Another owning pointer (one more reference).
  SharedSlicePtr share() const {
    ref();
    return SharedSlicePtr(this, &unrefDeleter);
  }

 private:
  explicit SharedSlice(size_t size) : size_(size) {}
  static SharedSlice* allocate(size_t size);
  static void unrefDeleter(const SharedSlice* s) { s->unref(); }
  char* bytes() { return reinterpret_cast<char*>(this + 1); }

  mutable std::atomic<uint32_t> refs_{1};
  uint32_t pad_ = 0;
  size_t size_;
};

// A chain of heap slices. An empty buffer owns no memory (idle connections stay small); slices
// of the standard size are recycled through a small per-thread cache so the steady state does
// not call malloc. Not thread-safe: a buffer belongs to one worker.
class OwnedImpl {
 public:
  static constexpr uint32_t kSliceSize = 16 * 1024;

  OwnedImpl() = default;
  explicit OwnedImpl(absl::string_view data) { add(data); }
  ~OwnedImpl() { clear(); }  // the vector frees its own storage
  OwnedImpl(const OwnedImpl&) = delete;
  OwnedImpl& operator=(const OwnedImpl&) = delete;
  OwnedImpl(OwnedImpl&& other) noexcept
      : slices_(std::move(other.slices_)), length_(other.length_) {
    other.slices_.clear();
    other.length_ = 0;
  }

  size_t length() const { return length_; }
  bool empty() const { return length_ == 0; }

  void add(const void* data, size_t size);
  void add(absl::string_view data) { add(data.data(), data.size()); }
  // Refers to `slice`'s bytes (one reference, no copy): they go out like any others and are
  // never written to. Small slices (under 1 KiB) are copied instead, as move() does.
  void addShared(const SharedSlice& slice);
  // Moves all of `other` to the end of this buffer (no copy of full slices).
  void move(OwnedImpl& other);
  // Moves the first `size` bytes of `other`.
  void move(OwnedImpl& other, size_t size);
  void drain(size_t size);
  // Empties the buffer (slice storage returned; the small slice index kept for reuse).
  void clear();
  // Empties the buffer and frees everything, for idle connections.
  void releaseMemory();

  // Copies the first `size` bytes into `out` (size <= length()).
  void copyOut(size_t size, void* out) const;
  std::string toString() const;
  // Contiguous view of the first slice's data.
  absl::string_view frontSlice() const;
  size_t sliceCount() const { return slices_.size(); }
  template <class F>
  void forEachSlice(F&& f) const {
    for (const Slice& s : slices_) {
      if (s.len > 0) f(absl::string_view(s.mem + s.off, s.len));
    }
  }

  // Reads from a non-blocking socket, at most `max` bytes. Returns bytes read, 0 on EOF, -errno.
  ssize_t readFrom(int fd, size_t max);
  // Appends what `produce(char* dst, size_t room)` writes into the tail's free space (or a fresh
  // slice), for readers that are not a plain socket (TLS). `produce` returns the bytes it wrote
  // (> 0) or anything <= 0 for none; that value is returned. room <= max.
  template <class F>
  ssize_t appendWith(size_t max, F&& produce) {
    const bool use_tail = !slices_.empty() && slices_.back().freeSpace() >= 1024;
    Slice fresh{nullptr, 0, 0, 0, nullptr};
    if (!use_tail) fresh = newSlice(kSliceSize);
    Slice& s = use_tail ? slices_.back() : fresh;
    const size_t room = std::min<size_t>(s.freeSpace(), max);
    const ssize_t n = produce(s.mem + s.off + s.len, room);
    if (n > 0) {
      s.len += n;
      length_ += n;
      if (!use_tail) slices_.push_back(fresh);
    } else if (!use_tail) {
      releaseSlice(fresh);
    }
    return n;
  }
  // Writes as much as possible to a socket with one send/sendmsg. Returns bytes written or
  // -errno.
  ssize_t writeTo(int fd);

 private:
  // Owned heap memory (`shared` null), or a view of a SharedSlice's bytes that this buffer
  // holds one reference to (cap == off + len: never written to).
  struct Slice {
    char* mem;
    uint32_t cap;
    uint32_t off;
    uint32_t len;
    const SharedSlice* shared;
    uint32_t freeSpace() const { return cap - off - len; }
  };
  static Slice newSlice(size_t min_size);
  static void releaseSlice(Slice& s);

  std::vector<Slice> slices_;
  size_t length_ = 0;
};

using Instance = OwnedImpl;

}  // namespace Buffer
}  // namespace sluice
