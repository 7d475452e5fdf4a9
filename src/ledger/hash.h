#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "core/error.h"

namespace backout::ledger {

// A SHA-256 digest.
using Hash = std::array<uint8_t, 32>;

Hash Sha256(std::string_view bytes);

// SHA-256 of the concatenation of `parts`, without copying them into one buffer.
Hash Sha256(std::initializer_list<std::string_view> parts);

// Lower-case hexadecimal, 64 characters.
std::string ToHex(const Hash& hash);

// Parses 64 hexadecimal digits (either case). Errors (kInvalidArgument) quote the text.
core::Result<Hash> HashFromHex(std::string_view hex);

}  // namespace backout::ledger
