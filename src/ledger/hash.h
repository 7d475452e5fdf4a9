#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"

namespace backout::ledger {

// A SHA-256 digest.
using Hash = std::array<uint8_t, 32>;

Hash Sha256(std::string_view bytes);

// Lower-case hexadecimal, 64 characters.
std::string ToHex(const Hash& hash);
core::Result<Hash> HashFromHex(std::string_view hex);

}  // namespace backout::ledger
