#include "store/body_writer.h"

#include <charconv>
#include <cmath>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "store/store_internal.h"

namespace backout::store {
namespace {

// True for printable ASCII other than '"' and '\\', which dump() copies unchanged between quotes.
bool IsPlainAscii(std::string_view text) {
  for (const unsigned char byte : text) {
    if (byte < 0x20 || byte >= 0x7f || byte == '"' || byte == '\\') return false;
  }
  return true;
}

bool IsAscii(std::string_view text) {
  for (const unsigned char byte : text) {
    if (byte >= 0x80) return false;
  }
  return true;
}

// Writes ASCII text with the escapes of nlohmann 3.11.2's dump() without ensure_ascii:
// the two-character forms where JSON has one, \u00xx in lower-case hex for the other control
// characters, and every other byte, DEL included, unchanged.
void AppendEscapedAscii(std::string_view text, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (const char byte : text) {
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
        if (static_cast<unsigned char>(byte) < 0x20) {
          out += "\\u00";
          out += kHex[(byte >> 4) & 0xf];
          out += kHex[byte & 0xf];
        } else {
          out += byte;
        }
    }
  }
  out += '"';
}

}  // namespace

void AppendJsonString(std::string_view text, std::string& out) {
  if (IsPlainAscii(text)) {
    out += '"';
    out += text;
    out += '"';
    return;
  }
  if (IsAscii(text)) {
    AppendEscapedAscii(text, out);
    return;
  }
  // Escapes as dump() does, and throws type_error 316 for invalid UTF-8.
  out += nlohmann::json(std::string(text)).dump();
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

void BodyWriter::Key(std::string_view name) {
  if (error_) return;
  if (depth_ == 0 || !levels_[depth_ - 1].object || levels_[depth_ - 1].awaiting_value) {
    Fail(core::ErrorCode::kInternal,
         fmt::format("cannot write {}: Key(\"{}\") is only valid in an object, before a value",
                     what_, name));
    return;
  }
  Level& level = levels_[depth_ - 1];
  if (!level.empty) {
    // dump() writes an object's members in std::map order, so any other order changes the bytes.
    if (!(std::string_view(level.last_name) < name)) {
      Fail(core::ErrorCode::kInternal,
           fmt::format("cannot write {}: member \"{}\" follows \"{}\", but members must be "
                       "written in ascending order of their names, each once",
                       what_, name, level.last_name));
      return;
    }
    text_ += ',';
  }
  level.empty = false;
  level.awaiting_value = true;
  level.last_name.assign(name);
  WriteString(name);
  text_ += ':';
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
