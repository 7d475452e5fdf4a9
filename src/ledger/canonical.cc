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

// Decodes `text` as UTF-8, appending its UTF-16 code units to `out` when it is not null.
// Returns false on any ill-formed sequence: overlong forms, surrogate code points, values above
// U+10FFFF and truncated sequences.
bool DecodeUtf8(std::string_view text, std::u16string* out) {
  size_t i = 0;
  while (i < text.size()) {
    const auto byte = static_cast<uint8_t>(text[i]);
    if (byte < 0x80 && out == nullptr) {
      ++i;
      continue;
    }
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

bool IsValidUtf8(std::string_view text) { return DecodeUtf8(text, nullptr); }

// Returns the UTF-16 code units of `text`, which must be valid UTF-8.
std::u16string ToUtf16(std::string_view text) {
  std::u16string units;
  DecodeUtf8(text, &units);
  return units;
}

// Writes `text` (already checked to be UTF-8) as a JSON string the way ECMAScript's
// JSON.stringify does: only '"', '\\' and control characters are escaped, using the short forms
// where they exist and lower-case \u00xx otherwise.
void AppendString(std::string_view text, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  size_t run_start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<uint8_t>(text[i]);
    if (byte >= 0x20 && byte != '"' && byte != '\\') continue;
    out.append(text, run_start, i - run_start);
    run_start = i + 1;
    switch (byte) {
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
        out += "\\u00";
        out += kHex[byte >> 4];
        out += kHex[byte & 0x0f];
    }
  }
  out.append(text, run_start, text.size() - run_start);
  out += '"';
}

template <typename Integer>
void AppendInteger(Integer value, std::string& out) {
  char buffer[24];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out.append(buffer, end);
}

// Writes one JSON document, tracking the path to the value being written so that errors can
// name it as a JSON Pointer (RFC 6901).
class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  core::Result<void> Write(const nlohmann::json& value);

 private:
  // One step of the path: a member name, or an array index when `name` is null.
  struct Step {
    const std::string* name;
    size_t index;
  };

  core::Result<void> WriteObject(const nlohmann::json& object);
  core::Result<void> WriteArray(const nlohmann::json& array);
  std::string Pointer() const;

  template <typename... Args>
  std::unexpected<core::Error> Invalid(fmt::format_string<Args...> format, Args&&... args) const {
    return MakeError(ErrorCode::kInvalidArgument, "{} at JSON pointer {}",
                     fmt::format(format, std::forward<Args>(args)...), Pointer());
  }

  std::string& out_;
  std::vector<Step> path_;
};

std::string Writer::Pointer() const {
  if (path_.empty()) return "'' (the document root)";
  std::string pointer = "'";
  for (const Step& step : path_) {
    pointer += '/';
    if (step.name == nullptr) {
      pointer += std::to_string(step.index);
      continue;
    }
    for (char c : *step.name) {
      if (c == '~') {
        pointer += "~0";
      } else if (c == '/') {
        pointer += "~1";
      } else {
        pointer += c;
      }
    }
  }
  return pointer + "'";
}

core::Result<void> Writer::WriteObject(const nlohmann::json& object) {
  struct Member {
    const std::string* name;
    const nlohmann::json* value;
  };
  std::vector<Member> members;
  members.reserve(object.size());
  bool needs_utf16_sort = false;
  for (auto it = object.begin(); it != object.end(); ++it) {
    const std::string& name = it.key();
    if (!IsValidUtf8(name)) {
      path_.push_back(Step{&name, 0});
      return Invalid("member name is not valid UTF-8, which canonical JSON (RFC 8785) requires");
    }
    // Lead bytes 0xEE and 0xEF start U+E000-U+FFFF, the only characters whose UTF-16 order
    // differs from their UTF-8 order: they sort after the surrogate pairs of U+10000 and above.
    needs_utf16_sort = needs_utf16_sort || name.find_first_of("\xee\xef") != std::string::npos;
    members.push_back(Member{&name, &it.value()});
  }

  // nlohmann::json keeps members in a std::map, so they arrive in UTF-8 byte order, which is the
  // UTF-16 code unit order RFC 8785 requires unless a name contains a character of U+E000-U+FFFF.
  if (needs_utf16_sort) {
    std::stable_sort(members.begin(), members.end(), [](const Member& a, const Member& b) {
      return ToUtf16(*a.name) < ToUtf16(*b.name);
    });
  }

  out_ += '{';
  for (size_t i = 0; i < members.size(); ++i) {
    if (i > 0) out_ += ',';
    AppendString(*members[i].name, out_);
    out_ += ':';
    path_.push_back(Step{members[i].name, 0});
    auto written = Write(*members[i].value);
    if (!written) return written;
    path_.pop_back();
  }
  out_ += '}';
  return {};
}

core::Result<void> Writer::WriteArray(const nlohmann::json& array) {
  out_ += '[';
  for (size_t i = 0; i < array.size(); ++i) {
    if (i > 0) out_ += ',';
    path_.push_back(Step{nullptr, i});
    auto written = Write(array[i]);
    if (!written) return written;
    path_.pop_back();
  }
  out_ += ']';
  return {};
}

core::Result<void> Writer::Write(const nlohmann::json& value) {
  using Type = nlohmann::json::value_t;
  switch (value.type()) {
    case Type::null:
      out_ += "null";
      return {};
    case Type::boolean:
      out_ += value.get<bool>() ? "true" : "false";
      return {};
    case Type::number_integer: {
      const auto number = value.get<int64_t>();
      if (number > kMaxSafeInteger || number < -kMaxSafeInteger) {
        return Invalid(
            "integer {} is outside ±(2^53 - 1), the range that canonical JSON "
            "(RFC 8785) keeps exact; record it as a string",
            number);
      }
      AppendInteger(number, out_);
      return {};
    }
    case Type::number_unsigned: {
      const auto number = value.get<uint64_t>();
      if (number > static_cast<uint64_t>(kMaxSafeInteger)) {
        return Invalid(
            "integer {} is outside ±(2^53 - 1), the range that canonical JSON "
            "(RFC 8785) keeps exact; record it as a string",
            number);
      }
      AppendInteger(number, out_);
      return {};
    }
    case Type::number_float:
      return Invalid(
          "floating-point number {} is not allowed because the ledger records "
          "integers only (record it as a string or a scaled integer)",
          value.dump());
    case Type::string: {
      const auto& text = value.get_ref<const std::string&>();
      if (!IsValidUtf8(text)) {
        return Invalid("string is not valid UTF-8, which canonical JSON (RFC 8785) requires");
      }
      AppendString(text, out_);
      return {};
    }
    case Type::array:
      return WriteArray(value);
    case Type::object:
      return WriteObject(value);
    case Type::binary:
      return Invalid("binary value has no JSON text form; encode it as a base64 string");
    case Type::discarded:
      break;
  }
  return Invalid("value is a discarded parse result, not JSON");
}

}  // namespace

core::Result<std::string> CanonicalJson(const nlohmann::json& value) {
  std::string out;
  auto written = Writer(out).Write(value);
  if (!written) return std::unexpected(written.error());
  return out;
}

}  // namespace backout::ledger
