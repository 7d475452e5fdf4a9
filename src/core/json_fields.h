#pragma once

// Helpers for the to_json/from_json functions of core's types: typed field reads that name the
// failing field, rejection of unknown keys, and the JSON form of times, dates and durations.
// Internal to core; other modules use the to_json/from_json functions and FromJson<T>().

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/domain.h"
#include "core/time.h"

namespace backout::core::json_fields {

// A failed read with the path of the field inside the outermost value, such as
// "rollbacks[0].outcome". what() is "field PATH: REASON", or REASON at the top level.
class FieldError : public std::runtime_error {
 public:
  explicit FieldError(std::string reason) : FieldError("", std::move(reason)) {}
  FieldError(std::string path, std::string reason);

  // Returns this error as seen from the value containing it under `parent` (a key or "[3]").
  FieldError Under(std::string_view parent) const;

 private:
  std::string path_;
  std::string reason_;
};

// ---- Writing --------------------------------------------------------------------------------

inline nlohmann::json ToValue(Time time) { return FormatTime(time); }
inline nlohmann::json ToValue(Date date) { return FormatDate(date); }
inline nlohmann::json ToValue(std::chrono::seconds seconds) { return seconds.count(); }
inline nlohmann::json ToValue(std::chrono::hours hours) { return hours.count(); }
template <typename T>
nlohmann::json ToValue(const std::optional<T>& value);
template <typename T>
nlohmann::json ToValue(const std::vector<T>& values);
template <typename T>
nlohmann::json ToValue(const T& value) {
  return nlohmann::json(value);
}

template <typename T>
nlohmann::json ToValue(const std::optional<T>& value) {
  if (!value) return nullptr;
  return ToValue(*value);
}

template <typename T>
nlohmann::json ToValue(const std::vector<T>& values) {
  nlohmann::json array = nlohmann::json::array();
  for (const auto& value : values) array.push_back(ToValue(value));
  return array;
}

template <typename T>
void Put(nlohmann::json& object, const char* key, const T& value) {
  object[key] = ToValue(value);
}

// ---- Reading --------------------------------------------------------------------------------

void FromValue(const nlohmann::json& in, std::string& out);
void FromValue(const nlohmann::json& in, bool& out);
void FromValue(const nlohmann::json& in, std::int64_t& out);
void FromValue(const nlohmann::json& in, Time& out);
void FromValue(const nlohmann::json& in, Date& out);
void FromValue(const nlohmann::json& in, std::chrono::seconds& out);
void FromValue(const nlohmann::json& in, std::chrono::hours& out);
void FromValue(const nlohmann::json& in, nlohmann::json& out);
template <typename T>
void FromValue(const nlohmann::json& in, std::optional<T>& out);
template <typename T>
void FromValue(const nlohmann::json& in, std::vector<T>& out);
template <typename T>
void FromValue(const nlohmann::json& in, T& out) {
  in.get_to(out);  // the type's own from_json, found by argument-dependent lookup
}

template <typename T>
void FromValue(const nlohmann::json& in, std::optional<T>& out) {
  if (in.is_null()) {
    out.reset();
    return;
  }
  T value{};
  FromValue(in, value);
  out = std::move(value);
}

template <typename T>
void FromValue(const nlohmann::json& in, std::vector<T>& out) {
  if (!in.is_array()) throw FieldError("expected an array, got " + std::string(in.type_name()));
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    T value{};
    try {
      FromValue(in[i], value);
    } catch (const FieldError& error) {
      throw error.Under("[" + std::to_string(i) + "]");
    } catch (const std::exception& error) {
      throw FieldError("[" + std::to_string(i) + "]", error.what());
    }
    out.push_back(std::move(value));
  }
}

// Reads the fields of one JSON object. A missing key leaves the output unchanged; Finish()
// rejects any key that no Read() named.
class ObjectReader {
 public:
  explicit ObjectReader(const nlohmann::json& in);

  template <typename T>
  void Read(std::string_view key, T& out) {
    known_.push_back(key);
    const auto it = in_.find(std::string(key));
    if (it == in_.end()) return;
    try {
      FromValue(*it, out);
    } catch (const FieldError& error) {
      throw error.Under(key);
    } catch (const std::exception& error) {
      throw FieldError(std::string(key), error.what());
    }
  }

  void Finish() const;

 private:
  const nlohmann::json& in_;
  std::vector<std::string_view> known_;
};

}  // namespace backout::core::json_fields
