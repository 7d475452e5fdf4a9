#include "cli/request_fields.h"

namespace backout::cli {

core::Result<MigrationSpec> ParseMigrationSpec(std::string_view text) {
  MigrationSpec spec;
  const size_t colon = text.rfind(':');
  spec.id = std::string(text.substr(0, colon));
  if (colon != std::string_view::npos) {
    const std::string_view kind = text.substr(colon + 1);
    if (kind == "irreversible") {
      spec.reversible = false;
    } else if (kind != "reversible") {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "invalid migration '{}': write ID, ID:reversible or ID:irreversible",
                             text);
    }
  }
  if (spec.id.empty()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "invalid migration '{}': the migration id is empty", text);
  }
  return spec;
}

std::string EncodeBase64(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const unsigned value = (static_cast<unsigned char>(bytes[i]) << 16) |
                           (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                           static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(value >> 18) & 63];
    out += kAlphabet[(value >> 12) & 63];
    out += kAlphabet[(value >> 6) & 63];
    out += kAlphabet[value & 63];
  }

  // One or two bytes left over become two or three characters and padding.
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    unsigned value = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) {
      value |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    }
    out += kAlphabet[(value >> 18) & 63];
    out += kAlphabet[(value >> 12) & 63];
    out += rest == 2 ? kAlphabet[(value >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

void SetIfNotEmpty(Json& body, const char* key, const std::string& value) {
  if (!value.empty()) {
    body[key] = value;
  }
}

}  // namespace backout::cli
