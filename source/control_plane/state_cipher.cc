#include "source/control_plane/state_cipher.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sluice {
namespace ControlPlane {
namespace {

constexpr absl::string_view kPrefix = "enc:v1:";
constexpr int kNonceBytes = 12;
constexpr int kTagBytes = 16;
// A key file is tiny; anything bigger is not one.
constexpr size_t kMaxKeyFileBytes = 4096;

struct CtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter>;

const unsigned char* bytes(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

absl::StatusOr<std::string> readSmallFile(const std::string& path, struct stat& st) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > kMaxKeyFileBytes) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a key file (a regular file of ",
                                                   StateCipher::kKeyBytes, " bytes or ",
                                                   2 * StateCipher::kKeyBytes, " hex digits)"));
  }
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      const std::string err = n < 0 ? std::strerror(errno) : "short read";
      ::close(fd);
      return absl::InternalError(absl::StrCat("cannot read ", path, ": ", err));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return out;
}

}  // namespace

absl::StatusOr<StateCipher> StateCipher::fromKeyFile(const std::string& path,
                                                     std::string* warning) {
  struct stat st;
  auto text = readSmallFile(path, st);
  if (!text.ok()) {
    return text.status();
  }
  std::string raw;
  if (text->size() == kKeyBytes) {
    raw = *text;
  } else {
    const absl::string_view hex = absl::StripTrailingAsciiWhitespace(*text);
    bool ok = hex.size() == 2 * kKeyBytes;
    for (char c : hex) {
      ok = ok && absl::ascii_isxdigit(static_cast<unsigned char>(c));
    }
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": not a state key: it must hold ", kKeyBytes, " bytes, or ", 2 * kKeyBytes,
          " hex digits (e.g. made with `openssl rand -hex ", kKeyBytes, "`)"));
    }
    raw = absl::HexStringToBytes(hex);
  }
  if (warning != nullptr) {
    warning->clear();
    if ((st.st_mode & 077) != 0) {
      *warning = absl::StrCat("state key file ", path, " may be read by group or others (mode ",
                              absl::StrFormat("%04o", st.st_mode & 0777), "); make it 0600");
    }
  }
  std::array<uint8_t, kKeyBytes> key;
  std::memcpy(key.data(), raw.data(), kKeyBytes);
  return StateCipher(key);
}

absl::StatusOr<StateCipher> StateCipher::loadOrCreate(const std::string& path, bool* created,
                                                      std::string* warning) {
  *created = false;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    unsigned char key[kKeyBytes];
    if (RAND_bytes(key, sizeof(key)) != 1) {
      ::close(fd);
      ::unlink(path.c_str());
      return absl::InternalError("cannot generate a state key: no randomness from OpenSSL");
    }
    const std::string hex = absl::StrCat(
        absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(key), sizeof(key))),
        "\n");
    OPENSSL_cleanse(key, sizeof(key));
    const bool ok =
        ::write(fd, hex.data(), hex.size()) == static_cast<ssize_t>(hex.size()) && ::fsync(fd) == 0;
    const std::string err = std::strerror(errno);
    ::close(fd);
    if (!ok) {
      ::unlink(path.c_str());
      return absl::InternalError(absl::StrCat("cannot write state key ", path, ": ", err));
    }
    *created = true;
  } else if (errno != EEXIST) {
    return absl::InternalError(
        absl::StrCat("cannot create state key ", path, ": ", std::strerror(errno)));
  }
  return fromKeyFile(path, warning);
}

bool StateCipher::isSealed(absl::string_view value) { return absl::StartsWith(value, kPrefix); }

absl::StatusOr<std::string> StateCipher::seal(absl::string_view plaintext,
                                              absl::string_view aad) const {
  std::string out(kNonceBytes + plaintext.size() + kTagBytes, '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(out.data());
  auto* body = nonce + kNonceBytes;
  if (RAND_bytes(nonce, kNonceBytes) != 1) {
    return absl::InternalError("AES-256-GCM: no randomness from OpenSSL for a nonce");
  }
  CtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  int total = 0;
  if (ctx == nullptr ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), nonce) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), body, &len, bytes(plaintext),
                        static_cast<int>(plaintext.size())) != 1) {
    return absl::InternalError("AES-256-GCM encryption failed");
  }
  total = len;
  if (EVP_EncryptFinal_ex(ctx.get(), body + total, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, body + plaintext.size()) !=
          1) {
    return absl::InternalError("AES-256-GCM encryption failed");
  }
  return absl::StrCat(kPrefix, absl::Base64Escape(out));
}

absl::StatusOr<std::string> StateCipher::open(absl::string_view sealed,
                                              absl::string_view aad) const {
  std::string raw;
  if (!isSealed(sealed) || !absl::Base64Unescape(sealed.substr(kPrefix.size()), &raw) ||
      raw.size() < kNonceBytes + kTagBytes) {
    return absl::DataLossError("not an encrypted value (enc:v1:BASE64)");
  }
  const auto* nonce = reinterpret_cast<const unsigned char*>(raw.data());
  const size_t body_size = raw.size() - kNonceBytes - kTagBytes;
  const unsigned char* body = nonce + kNonceBytes;
  std::string out(body_size, '\0');
  auto* plain = reinterpret_cast<unsigned char*>(out.data());
  CtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (ctx == nullptr ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), nonce) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), plain, &len, body, static_cast<int>(body_size)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes,
                          const_cast<unsigned char*>(body + body_size)) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), plain + len, &len) != 1) {
    return absl::PermissionDeniedError(
        "does not decrypt with the state key (a different --state-key-file, or the value was "
        "altered)");
  }
  return out;
}

}  // namespace ControlPlane
}  // namespace sluice
