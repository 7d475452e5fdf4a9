#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "core/error.h"

// OpenSSL's digest context, declared here so that this header does not include OpenSSL's.
struct evp_md_ctx_st;

namespace backout::ledger {

// A SHA-256 digest.
using Hash = std::array<uint8_t, 32>;

Hash Sha256(std::string_view bytes);

// SHA-256 of the concatenation of `parts`, without copying them into one buffer.
Hash Sha256(std::initializer_list<std::string_view> parts);

// SHA-256 over bytes given in parts. A copy carries the state, so the hash of a common prefix is
// computed once and each copy then hashes its own rest.
class Sha256Hasher {
 public:
  Sha256Hasher();
  Sha256Hasher(const Sha256Hasher& other);
  Sha256Hasher& operator=(const Sha256Hasher& other);
  Sha256Hasher(Sha256Hasher&& other) noexcept;
  Sha256Hasher& operator=(Sha256Hasher&& other) noexcept;
  ~Sha256Hasher();

  void Update(std::string_view bytes);
  // Returns the digest of every byte given so far. The hasher keeps its state.
  Hash Digest() const;

 private:
  evp_md_ctx_st* context_;  // null only after a move
};

// Lower-case hexadecimal, 64 characters.
std::string ToHex(const Hash& hash);

// Parses 64 hexadecimal digits (either case). Errors (kInvalidArgument) quote the text.
core::Result<Hash> HashFromHex(std::string_view hex);

}  // namespace backout::ledger
