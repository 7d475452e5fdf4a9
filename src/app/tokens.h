#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace backout::app {

// A bearer token as issued: `bkt_<N>_<secret>`, where N numbers the token (its id is "tok-N")
// and the secret is 32 random bytes from OpenSSL's RAND_bytes in unpadded base64url. Only the
// SHA-256 of the whole text is stored, so the text is shown once, when issued.
struct IssuedToken {
  std::string token_id;  // "tok-N"
  std::string text;      // the whole token; never stored, never logged
  std::string sha256;    // lower-case hex SHA-256 of `text`
};

core::Result<IssuedToken> IssueToken(int64_t number);

// Returns "tok-N" for a text shaped like a token, without checking its secret.
std::optional<std::string> TokenIdOf(std::string_view text);

// Returns the lower-case hex SHA-256 of `text`.
std::string HashToken(std::string_view text);

// Compares the hash of `text` with `stored_sha256` in constant time.
bool TokenMatches(std::string_view text, std::string_view stored_sha256);

}  // namespace backout::app
