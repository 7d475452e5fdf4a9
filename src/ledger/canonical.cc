#include "ledger/canonical.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace backout::ledger {
namespace {

using core::ErrorCode;
using core::MakeError;

// Integers in [-kMaxSafeInteger, kMaxSafeInteger] are exact in an IEEE 754 double, so every
// RFC 8785 implementation prints them as the same digits.
constexpr int64_t kMaxSafeInteger = (int64_t{1} << 53) - 1;

// Returns the JSON Pointer for display; the root pointer is the empty string.
std::string DisplayPointer(const std::string& pointer) {
  return pointer.empty() ? "'' (the document root)" : "'" + pointer + "'";
}

// Appends `token` to a JSON Pointer, escaping '~' and '/' as RFC 6901 requires.
std::string ChildPointer(const std::string& pointer, std::string_view token) {
  std::string child = pointer + "/";
  for (char c : token) {
    if (c == '~') {
      child += "~0";
    } else if (c == '/') {
      child += "~1";
    } else {
      child += c;
    }
  }
  return child;
}

// Decodes `text` as UTF-8 into UTF-16 code units. Returns false on any ill-formed sequence:
// overlong forms, surrogate code points, values above U+10FFFF and truncated sequences.
bool Utf8ToUtf16(std::string_view text, std::u16string* out) {
  size_t i = 0;
  while (i < text.size()) {
    const auto byte = static_cast<uint8_t>(text[i]);
    uint32_t code_point = 0;
    size_t length = 0;
    uint32_t minimum = 0;
    if (byte < 0x80) {
      code_point = byte;
      length = 1;
    } else if ((byte & 0xe0) == 0xc0) {
      code_point = byte & 0x1f;
      length = 2;
      minimum = 0x80;
    } else if ((byte & 0xf0) == 0xe0) {
      code_point = byte & 0x0f;
      length = 3;
      minimum = 0x800;
    } else if ((byte & 0xf8) == 0xf0) {
      code_point = byte & 0x07;
      length = 4;
      minimum = 0x10000;
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    for (size_t k = 1; k < length; ++k) {
      const auto continuation = static_cast<uint8_t>(text[i + k]);
      if ((continuation & 0xc0) != 0x80) return false;
      code_point = code_point << 6 | (continuation & 0x3f);
    }
    if (code_point < minimum || code_point > 0x10ffff ||
        (code_point >= 0xd800 && code_point <= 0xdfff)) {
      return false;
    }
    if (out != nullptr) {
      if (code_point < 0x10000) {
        out->push_back(static_cast<char16_t>(code_point));
      } else {
        const uint32_t offset = code_point - 0x10000;
        out->push_back(static_cast<char16_t>(0xd800 + (offset >> 10)));
        out->push_back(static_cast<char16_t>(0xdc00 + (offset & 0x3ff)));
      }
    }
    i += length;
  }
  return true;
}

// Writes `text` (already checked to be UTF-8) as a JSON string the way ECMAScript's
// JSON.stringify does: only '"', '\\' and control characters are escaped, using the short forms
// where they exist and lower-case \u00xx otherwise.
void AppendString(std::string_view text, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char c : text) {
    const auto byte = static_cast<uint8_t>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (byte < 0x20) {
          out += "\\u00";
          out += kHex[byte >> 4];
          out += kHex[byte & 0x0f];
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

template <typename Integer>
void AppendInteger(Integer value, std::string& out) {
  char buffer[24];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out.append(buffer, end);
}

core::Result<void> Append(const nlohmann::json& value, const std::string& pointer,
                          std::string& out);

core::Result<void> AppendObject(const nlohmann::json& object, const std::string& pointer,
                                std::string& out) {
  // Sort member names by UTF-16 code units. UTF-8 byte order differs from it only when a name
  // mixes characters above U+FFFF (surrogate pairs, 0xD800-0xDFFF) with U+E000-U+FFFF.
  struct Member {
    std::u16string units;
    const std::string* name;
    const nlohmann::json* value;
  };
  std::vector<Member> members;
  members.reserve(object.size());
  for (auto it = object.begin(); it != object.end(); ++it) {
    const std::string& name = it.key();
    std::u16string units;
    if (!Utf8ToUtf16(name, &units)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "member name at JSON pointer {} is not valid UTF-8; canonical JSON "
                       "(RFC 8785) needs valid Unicode text",
                       DisplayPointer(ChildPointer(pointer, name)));
    }
    members.push_back(Member{std::move(units), &name, &it.value()});
  }
  std::sort(members.begin(), members.end(),
            [](const Member& a, const Member& b) { return a.units < b.units; });

  out += '{';
  bool first = true;
  for (const Member& member : members) {
    if (!first) out += ',';
    first = false;
    AppendString(*member.name, out);
    out += ':';
    auto appended = Append(*member.value, ChildPointer(pointer, *member.name), out);
    if (!appended) return appended;
  }
  out += '}';
  return {};
}

core::Result<void> Append(const nlohmann::json& value, const std::string& pointer,
                          std::string& out) {
  using Type = nlohmann::json::value_t;
  switch (value.type()) {
    case Type::null:
      out += "null";
      return {};
    case Type::boolean:
      out += value.get<bool>() ? "true" : "false";
      return {};
    case Type::number_integer: {
      const auto number = value.get<int64_t>();
      if (number > kMaxSafeInteger || number < -kMaxSafeInteger) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "integer {} at JSON pointer {} is outside ±(2^53 - 1), the range that "
                         "canonical JSON (RFC 8785) keeps exact; record it as a string",
                         number, DisplayPointer(pointer));
      }
      AppendInteger(number, out);
      return {};
    }
    case Type::number_unsigned: {
      const auto number = value.get<uint64_t>();
      if (number > static_cast<uint64_t>(kMaxSafeInteger)) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "integer {} at JSON pointer {} is outside ±(2^53 - 1), the range that "
                         "canonical JSON (RFC 8785) keeps exact; record it as a string",
                         number, DisplayPointer(pointer));
      }
      AppendInteger(number, out);
      return {};
    }
    case Type::number_float:
      return MakeError(ErrorCode::kInvalidArgument,
                       "floating-point number {} at JSON pointer {} is not allowed: the ledger "
                       "records integers only; record it as a string or a scaled integer",
                       value.dump(), DisplayPointer(pointer));
    case Type::string: {
      const auto& text = value.get_ref<const std::string&>();
      if (!Utf8ToUtf16(text, nullptr)) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "string at JSON pointer {} is not valid UTF-8; canonical JSON "
                         "(RFC 8785) needs valid Unicode text",
                         DisplayPointer(pointer));
      }
      AppendString(text, out);
      return {};
    }
    case Type::array: {
      out += '[';
      for (size_t i = 0; i < value.size(); ++i) {
        if (i > 0) out += ',';
        auto appended = Append(value[i], ChildPointer(pointer, std::to_string(i)), out);
        if (!appended) return appended;
      }
      out += ']';
      return {};
    }
    case Type::object:
      return AppendObject(value, pointer, out);
    case Type::binary:
      return MakeError(ErrorCode::kInvalidArgument,
                       "binary value at JSON pointer {} has no JSON text form; encode it as a "
                       "base64 string",
                       DisplayPointer(pointer));
    case Type::discarded:
      break;
  }
  return MakeError(ErrorCode::kInvalidArgument,
                   "value at JSON pointer {} is a discarded parse result, not JSON",
                   DisplayPointer(pointer));
}

}  // namespace

core::Result<std::string> CanonicalJson(const nlohmann::json& value) {
  std::string out;
  auto appended = Append(value, "", out);
  if (!appended) return std::unexpected(appended.error());
  return out;
}

}  // namespace backout::ledger
