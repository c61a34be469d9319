#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sluice {
namespace ControlPlane {

// Encrypts the secrets (private keys) sluice-cp writes into its state dir: AES-256-GCM with a
// 32-byte key from the state key file (docs/decisions.md, "Secrets in sluice-cp's state dir").
// A value is sealed as "enc:v1:" + base64(12-byte random nonce | ciphertext | 16-byte tag), with
// associated data the caller names (the group and the field's path), so a sealed value copied
// to another group or field does not open.
class StateCipher {
 public:
  static constexpr size_t kKeyBytes = 32;

  // The key in `path`: 32 raw bytes, or 64 hex digits (a trailing newline allowed). A file
  // that group or others may read is accepted; `warning` then says so.
  static absl::StatusOr<StateCipher> fromKeyFile(const std::string& path, std::string* warning);
  // The same, but a missing file is first created (mode 0600, 32 random bytes as 64 hex
  // digits). `created` tells whether it was.
  static absl::StatusOr<StateCipher> loadOrCreate(const std::string& path, bool* created,
                                                  std::string* warning);
  // Tests.
  explicit StateCipher(const std::array<uint8_t, kKeyBytes>& key) : key_(key) {}

  absl::StatusOr<std::string> seal(absl::string_view plaintext, absl::string_view aad) const;
  // Errors say whether the value is malformed or does not open (a different key).
  absl::StatusOr<std::string> open(absl::string_view sealed, absl::string_view aad) const;
  // Starts with the "enc:v1:" prefix.
  static bool isSealed(absl::string_view value);

 private:
  std::array<uint8_t, kKeyBytes> key_;
};

}  // namespace ControlPlane
}  // namespace sluice
