#include "store/body_writer.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "store/store_internal.h"

namespace backout::store {
namespace {

// The treatment dump() gives a byte of a string: copied unchanged, escaped, or (above 0x7f)
// copied only after the whole string passes its UTF-8 check.
enum class ByteClass : uint8_t { kCopied, kEscaped, kNonAscii };

constexpr std::array<ByteClass, 256> kByteClasses = [] {
  std::array<ByteClass, 256> classes{};
  for (int byte = 0; byte < 0x20; ++byte) classes[byte] = ByteClass::kEscaped;
  classes['"'] = ByteClass::kEscaped;
  classes['\\'] = ByteClass::kEscaped;
  for (int byte = 0x80; byte < 0x100; ++byte) classes[byte] = ByteClass::kNonAscii;
  return classes;
}();

// Appends the escape of nlohmann 3.11.2's dump() without ensure_ascii for one ASCII byte below
// 0x20, '"' or '\\': the two-character form where JSON has one, else \u00xx in lower-case hex.
void AppendEscape(char byte, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  switch (byte) {
    case '"':
      out += "\\\"";
      return;
    case '\\':
      out += "\\\\";
      return;
    case '\b':
      out += "\\b";
      return;
    case '\f':
      out += "\\f";
      return;
    case '\n':
      out += "\\n";
      return;
    case '\r':
      out += "\\r";
      return;
    case '\t':
      out += "\\t";
      return;
    default:
      out += "\\u00";
      out += kHex[(byte >> 4) & 0xf];
      out += kHex[byte & 0xf];
  }
}

}  // namespace

void AppendJsonString(std::string_view text, std::string& out) {
  const size_t start = out.size();
  out += '"';
  size_t copied = 0;  // bytes of `text` already written
  for (size_t at = 0; at < text.size(); ++at) {
    const ByteClass byte_class = kByteClasses[static_cast<unsigned char>(text[at])];
    if (byte_class == ByteClass::kCopied) continue;
    if (byte_class == ByteClass::kNonAscii) {
      // Escapes as dump() does, and throws type_error 316 for invalid UTF-8.
      out.resize(start);
      out += nlohmann::json(std::string(text)).dump();
      return;
    }
    out.append(text.data() + copied, at - copied);
    AppendEscape(text[at], out);
    copied = at + 1;
  }
  out.append(text.data() + copied, text.size() - copied);
  out += '"';
}

BodyWriter::BodyWriter(std::string what) : what_(std::move(what)) {
  // A signal body with a few labels is about 650 bytes, so it is written without regrowing.
  text_.reserve(1024);
}

void BodyWriter::Fail(core::ErrorCode code, std::string message) {
  if (!error_) error_ = core::Error{code, std::move(message)};
}

bool BodyWriter::BeginValue() {
  if (error_) return false;
  if (depth_ == 0) {
    if (!complete_) return true;
    Fail(core::ErrorCode::kInternal,
         fmt::format("cannot write {}: a second value follows the complete one", what_));
    return false;
  }
  Level& level = levels_[depth_ - 1];
  if (level.object) {
    if (level.awaiting_value) {
      level.awaiting_value = false;
      return true;
    }
    Fail(core::ErrorCode::kInternal,
         fmt::format("cannot write {}: a value in an object needs a Key before it", what_));
    return false;
  }
  if (!level.empty) text_ += ',';
  level.empty = false;
  return true;
}

void BodyWriter::Open(bool object) {
  text_ += object ? '{' : '[';
  if (levels_.size() == depth_) levels_.emplace_back();
  Level& level = levels_[depth_];
  level.object = object;
  level.empty = true;
  level.awaiting_value = false;
  level.last_name.clear();  // keeps the buffer for the next object at this depth
  level.plain_name = {};
  ++depth_;
}

void BodyWriter::Close(bool object) {
  if (error_) return;
  if (depth_ == 0 || levels_[depth_ - 1].object != object || levels_[depth_ - 1].awaiting_value) {
    Fail(core::ErrorCode::kInternal,
         fmt::format("cannot write {}: {} does not close an open {} after a complete member", what_,
                     object ? "EndObject" : "EndArray", object ? "object" : "array"));
    return;
  }
  text_ += object ? '}' : ']';
  --depth_;
  EndValue();
}

void BodyWriter::EndValue() {
  if (depth_ == 0) complete_ = true;
}

void BodyWriter::BeginObject() {
  if (BeginValue()) Open(true);
}

void BodyWriter::EndObject() { Close(true); }

void BodyWriter::BeginArray() {
  if (BeginValue()) Open(false);
}

void BodyWriter::EndArray() { Close(false); }

bool BodyWriter::BeginKey(std::string_view name) {
  if (error_) return false;
  if (depth_ == 0 || !levels_[depth_ - 1].object || levels_[depth_ - 1].awaiting_value) {
    Fail(core::ErrorCode::kInternal,
         fmt::format("cannot write {}: Key(\"{}\") is only valid in an object, before a value",
                     what_, name));
    return false;
  }
  Level& level = levels_[depth_ - 1];
  if (!level.empty) {
    // dump() writes an object's members in std::map order, so any other order changes the bytes.
    const std::string_view last_name =
        level.plain_name.data() != nullptr ? level.plain_name : std::string_view(level.last_name);
    if (!(last_name < name)) {
      Fail(core::ErrorCode::kInternal,
           fmt::format("cannot write {}: member \"{}\" follows \"{}\", but members must be "
                       "written in ascending order of their names, each once",
                       what_, name, last_name));
      return false;
    }
    text_ += ',';
  }
  level.empty = false;
  level.awaiting_value = true;
  return true;
}

void BodyWriter::Key(std::string_view name) {
  if (!BeginKey(name)) return;
  Level& level = levels_[depth_ - 1];
  level.last_name.assign(name);
  level.plain_name = {};
  WriteString(name);
  text_ += ':';
}

void BodyWriter::PlainKey(PlainName name) {
  if (!BeginKey(name.view())) return;
  // A constant expression's characters have static storage, so the view outlives the writer.
  levels_[depth_ - 1].plain_name = name.view();
  text_ += '"';
  text_ += name.view();
  text_ += "\":";
}

void BodyWriter::WriteString(std::string_view text) {
  try {
    AppendJsonString(text, text_);
  } catch (const nlohmann::json::exception& error) {
    Fail(core::ErrorCode::kInvalidArgument,
         fmt::format("cannot store {} as JSON: {}", what_, error.what()));
  }
}

void BodyWriter::String(std::string_view value) {
  if (!BeginValue()) return;
  WriteString(value);
  EndValue();
}

void BodyWriter::Integer(int64_t value) {
  if (!BeginValue()) return;
  char digits[24];
  const auto [end, error] = std::to_chars(digits, digits + sizeof(digits), value);
  text_.append(digits, end);
  EndValue();
}

void BodyWriter::Number(double value) {
  if (!BeginValue()) return;
  if (value == 0 && !std::signbit(value)) {
    text_ += "0.0";  // what dump() writes for the most common value, without its formatter
  } else {
    text_ += nlohmann::json(value).dump();
  }
  EndValue();
}

void BodyWriter::Bool(bool value) {
  if (!BeginValue()) return;
  text_ += value ? "true" : "false";
  EndValue();
}

void BodyWriter::Null() {
  if (!BeginValue()) return;
  text_ += "null";
  EndValue();
}

void BodyWriter::StringMap(const std::map<std::string, std::string>& members) {
  if (!BeginValue()) return;
  text_ += '{';
  bool first = true;
  for (const auto& [name, value] : members) {
    if (!first) text_ += ',';
    first = false;
    WriteString(name);
    text_ += ':';
    WriteString(value);
  }
  text_ += '}';
  EndValue();
}

core::Result<SerializedBody> BodyWriter::Finish() && {
  if (!error_ && !complete_) {
    Fail(core::ErrorCode::kInternal,
         fmt::format("cannot write {}: the JSON value is not complete ({} open)", what_, depth_));
  }
  if (error_) return std::unexpected(std::move(*error_));
  return SerializedBody(std::move(text_));
}

}  // namespace backout::store
