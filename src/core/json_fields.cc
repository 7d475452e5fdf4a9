#include "core/json_fields.h"

#include <algorithm>

#include <fmt/format.h>

namespace backout::core::json_fields {
namespace {

[[noreturn]] void ThrowWrongType(std::string_view expected, const nlohmann::json& in) {
  throw FieldError(fmt::format("expected {}, got {}", expected, in.type_name()));
}

}  // namespace

FieldError::FieldError(std::string path, std::string reason)
    : std::runtime_error(path.empty() ? reason : fmt::format("field {}: {}", path, reason)),
      path_(std::move(path)),
      reason_(std::move(reason)) {}

FieldError FieldError::Under(std::string_view parent) const {
  std::string path(parent);
  if (!path_.empty()) {
    if (path_.front() != '[') path += '.';
    path += path_;
  }
  return FieldError(std::move(path), reason_);
}

void FromValue(const nlohmann::json& in, std::string& out) {
  if (!in.is_string()) ThrowWrongType("a string", in);
  out = in.get_ref<const std::string&>();
}

void FromValue(const nlohmann::json& in, bool& out) {
  if (!in.is_boolean()) ThrowWrongType("true or false", in);
  out = in.get<bool>();
}

void FromValue(const nlohmann::json& in, std::int64_t& out) {
  if (!in.is_number_integer()) ThrowWrongType("an integer", in);
  if (in.is_number_unsigned() && in.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
    throw FieldError(fmt::format("integer {} is out of range", in.get<std::uint64_t>()));
  }
  out = in.get<std::int64_t>();
}

void FromValue(const nlohmann::json& in, Time& out) {
  if (!in.is_string()) ThrowWrongType("an RFC 3339 time string", in);
  auto time = ParseTime(in.get_ref<const std::string&>());
  if (!time) throw FieldError(time.error().message);
  out = *time;
}

void FromValue(const nlohmann::json& in, Date& out) {
  if (!in.is_string()) ThrowWrongType("a YYYY-MM-DD date string", in);
  auto date = ParseDate(in.get_ref<const std::string&>());
  if (!date) throw FieldError(date.error().message);
  out = *date;
}

void FromValue(const nlohmann::json& in, std::chrono::seconds& out) {
  std::int64_t count = 0;
  FromValue(in, count);
  if (count < 0) throw FieldError(fmt::format("expected seconds >= 0, got {}", count));
  out = std::chrono::seconds(count);
}

void FromValue(const nlohmann::json& in, std::chrono::hours& out) {
  std::int64_t count = 0;
  FromValue(in, count);
  if (count < 0) throw FieldError(fmt::format("expected hours >= 0, got {}", count));
  out = std::chrono::hours(count);
}

void FromValue(const nlohmann::json& in, nlohmann::json& out) { out = in; }

ObjectReader::ObjectReader(const nlohmann::json& in) : in_(in) {
  if (!in.is_object()) ThrowWrongType("an object", in);
}

void ObjectReader::Finish() const {
  for (const auto& [key, value] : in_.items()) {
    if (std::ranges::find(known_, std::string_view(key)) == known_.end()) {
      std::string known;
      for (const auto name : known_) {
        known += known.empty() ? "" : ", ";
        known += name;
      }
      throw FieldError(key, fmt::format("unknown field; known fields are {}", known));
    }
  }
}

}  // namespace backout::core::json_fields
