#pragma once

#include <string>
#include <string_view>

#include "cli/json.h"
#include "core/error.h"

namespace backout::cli {

// A database migration named on the command line as `ID`, `ID:reversible` or `ID:irreversible`.
struct MigrationSpec {
  std::string id;
  bool reversible = true;
};

// Parses a --migration value; fails with kInvalidArgument naming the text when the id is empty or
// the suffix is neither "reversible" nor "irreversible".
core::Result<MigrationSpec> ParseMigrationSpec(std::string_view text);

// Encodes bytes as standard base64 with padding (RFC 4648, section 4).
std::string EncodeBase64(std::string_view bytes);

// Sets body[key] = value unless value is empty, so optional fields the user left out stay absent
// and the server applies its default.
void SetIfNotEmpty(Json& body, const char* key, const std::string& value);

}  // namespace backout::cli
