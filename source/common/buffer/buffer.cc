#include "source/common/buffer/buffer.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <new>

namespace sluice {
namespace Buffer {
namespace {

// Per-thread cache of standard-size slices: a worker's steady state recycles the same few.
struct SliceCache {
  std::vector<char*> free;
  ~SliceCache() {
    for (char* p : free) {
      delete[] p;
    }
  }
};
thread_local SliceCache t_cache;
constexpr size_t kMaxCachedSlices = 32;

}  // namespace

OwnedImpl::Slice OwnedImpl::newSlice(size_t min_size) {
  if (min_size <= kSliceSize) {
    char* mem;
    if (!t_cache.free.empty()) {
      mem = t_cache.free.back();
      t_cache.free.pop_back();
    } else {
      mem = new char[kSliceSize];
    }
    return Slice{mem, kSliceSize, 0, 0, nullptr};
  }
  return Slice{new char[min_size], static_cast<uint32_t>(min_size), 0, 0, nullptr};
}

void OwnedImpl::releaseSlice(Slice& s) {
  if (s.shared != nullptr) {
    s.shared->unref();
    s.shared = nullptr;
  } else if (s.cap == kSliceSize && t_cache.free.size() < kMaxCachedSlices) {
    t_cache.free.push_back(s.mem);
  } else {
    delete[] s.mem;
  }
  s.mem = nullptr;
}

void OwnedImpl::add(const void* data, size_t size) {
  const char* src = static_cast<const char*>(data);
  while (size > 0) {
    if (slices_.empty() || slices_.back().freeSpace() == 0) {
      slices_.push_back(newSlice(std::min<size_t>(size, kSliceSize)));
    }
    Slice& s = slices_.back();
    size_t n = std::min<size_t>(size, s.freeSpace());
    memcpy(s.mem + s.off + s.len, src, n);
    s.len += n;
    src += n;
    size -= n;
    length_ += n;
  }
}

SharedSlicePtr SharedSlice::copyOf(absl::string_view data) {
  return make(data.size(), [data](char* dst) {
    if (!data.empty()) memcpy(dst, data.data(), data.size());
  });
}

SharedSlice* SharedSlice::allocate(size_t size) {
  void* mem = ::operator new(sizeof(SharedSlice) + size);
  return new (mem) SharedSlice(size);
}

void SharedSlice::unref() const {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    this->~SharedSlice();
    ::operator delete(const_cast<SharedSlice*>(this));
  }
}

void OwnedImpl::addShared(const SharedSlice& slice) {
  if (slice.size() < 1024) {
    add(slice.view());
    return;
  }
  // A view per 1 GiB (the slice index counts in 32 bits), each holding its reference.
  constexpr size_t kMaxView = size_t{1} << 30;
  char* mem = const_cast<char*>(slice.data());
  for (size_t off = 0; off < slice.size(); off += kMaxView) {
    const uint32_t n = static_cast<uint32_t>(std::min(kMaxView, slice.size() - off));
    slice.ref();
    slices_.push_back(Slice{mem + off, n, 0, n, &slice});
    length_ += n;
  }
}

void OwnedImpl::move(OwnedImpl& other) {
  if (other.slices_.empty()) {
    return;
  }
  if (other.length_ < 1024 || (!slices_.empty() && other.length_ <= slices_.back().freeSpace())) {
    // Small moves are cheaper as a copy than as extra slices.
    other.forEachSlice([this](absl::string_view d) { add(d); });
    other.clear();
    return;
  }
  for (Slice& s : other.slices_) {
    if (s.len == 0) {
      releaseSlice(s);
      continue;
    }
    slices_.push_back(s);
  }
  length_ += other.length_;
  other.slices_.clear();
  other.length_ = 0;
}

void OwnedImpl::move(OwnedImpl& other, size_t size) {
  if (size >= other.length_) {
    move(other);
    return;
  }
  while (size > 0) {
    Slice& s = other.slices_.front();
    size_t n = std::min<size_t>(size, s.len);
    add(s.mem + s.off, n);
    other.drain(n);
    size -= n;
  }
}

void OwnedImpl::drain(size_t size) {
  size = std::min(size, length_);
  length_ -= size;
  size_t i = 0;
  while (size > 0 && i < slices_.size()) {
    Slice& s = slices_[i];
    size_t n = std::min<size_t>(size, s.len);
    s.off += n;
    s.len -= n;
    size -= n;
    if (s.len == 0) {
      ++i;
    }
  }
  // Release fully drained slices, including the last one: an empty buffer owns nothing.
  if (i > 0) {
    for (size_t j = 0; j < i; ++j) {
      releaseSlice(slices_[j]);
    }
    slices_.erase(slices_.begin(), slices_.begin() + i);
  }
  if (length_ == 0) {
    clear();
  }
}

void OwnedImpl::clear() {
  for (Slice& s : slices_) {
    releaseSlice(s);
  }
  slices_.clear();  // keeps the vector's capacity: the next add() does not allocate it again
  length_ = 0;
}

void OwnedImpl::releaseMemory() {
  clear();
  std::vector<Slice>().swap(slices_);
}

void OwnedImpl::copyOut(size_t size, void* out) const {
  char* dst = static_cast<char*>(out);
  for (const Slice& s : slices_) {
    if (size == 0) {
      break;
    }
    size_t n = std::min<size_t>(size, s.len);
    memcpy(dst, s.mem + s.off, n);
    dst += n;
    size -= n;
  }
}

std::string OwnedImpl::toString() const {
  std::string out;
  out.resize(length_);
  copyOut(length_, out.data());
  return out;
}

absl::string_view OwnedImpl::frontSlice() const {
  for (const Slice& s : slices_) {
    if (s.len > 0) {
      return absl::string_view(s.mem + s.off, s.len);
    }
  }
  return {};
}

ssize_t OwnedImpl::readFrom(int fd, size_t max) {
  iovec iov[2];
  int iovcnt = 0;
  Slice* tail = slices_.empty() ? nullptr : &slices_.back();
  if (tail != nullptr && tail->freeSpace() >= 1024) {
    iov[iovcnt++] = {tail->mem + tail->off + tail->len, std::min<size_t>(tail->freeSpace(), max)};
  }
  Slice fresh{nullptr, 0, 0, 0, nullptr};
  if (iovcnt == 0 || iov[0].iov_len < max) {
    fresh = newSlice(kSliceSize);
    size_t room = max - (iovcnt ? iov[0].iov_len : 0);
    iov[iovcnt++] = {fresh.mem, std::min<size_t>(fresh.cap, room)};
  }
  ssize_t n;
  // recv/recvmsg rather than read/readv: the socket calls skip the VFS layer (measurably less
  // kernel time per request, as haproxy and nginx do).
  do {
    if (iovcnt == 1) {
      n = ::recv(fd, iov[0].iov_base, iov[0].iov_len, 0);
    } else {
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = iovcnt;
      n = ::recvmsg(fd, &msg, 0);
    }
  } while (n < 0 && errno == EINTR);
  if (n <= 0) {
    if (fresh.mem != nullptr) {
      releaseSlice(fresh);
    }
    return n < 0 ? -errno : 0;
  }
  size_t left = n;
  length_ += left;
  if (iov[0].iov_base != fresh.mem) {
    size_t k = std::min(left, iov[0].iov_len);
    tail->len += k;
    left -= k;
  }
  if (fresh.mem != nullptr) {
    if (left > 0) {
      fresh.len = left;
      slices_.push_back(fresh);
    } else {
      releaseSlice(fresh);
    }
  }
  return n;
}

ssize_t OwnedImpl::writeTo(int fd) {
  if (length_ == 0) {
    return 0;
  }
  constexpr int kMaxIov = 16;
  iovec iov[kMaxIov];
  int n = 0;
  for (const Slice& s : slices_) {
    if (n == kMaxIov) {
      break;
    }
    if (s.len > 0) {
      iov[n++] = {s.mem + s.off, s.len};
    }
  }
  ssize_t rc;
  do {
    if (n == 1) {
      rc = ::send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
    } else {
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = n;
      rc = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    }
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    return -errno;
  }
  drain(rc);
  return rc;
}

}  // namespace Buffer
}  // namespace sluice
