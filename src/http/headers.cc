#include "http/headers.h"

#include <algorithm>

namespace backout::http {

namespace {

char ToLowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return ToLowerAscii(x) == ToLowerAscii(y);
         });
}

Headers::Headers(std::initializer_list<Field> fields) : fields_(fields) {}

void Headers::Add(std::string name, std::string value) {
  fields_.emplace_back(std::move(name), std::move(value));
}

void Headers::Set(std::string name, std::string value) {
  Remove(name);
  Add(std::move(name), std::move(value));
}

void Headers::Remove(std::string_view name) {
  std::erase_if(fields_, [&](const Field& field) { return EqualsIgnoringCase(field.first, name); });
}

std::optional<std::string> Headers::Get(std::string_view name) const {
  for (const auto& [field_name, value] : fields_) {
    if (EqualsIgnoringCase(field_name, name)) {
      return value;
    }
  }
  return std::nullopt;
}

std::vector<std::string> Headers::GetAll(std::string_view name) const {
  std::vector<std::string> values;
  for (const auto& [field_name, value] : fields_) {
    if (EqualsIgnoringCase(field_name, name)) {
      values.push_back(value);
    }
  }
  return values;
}

bool Headers::Contains(std::string_view name) const { return Get(name).has_value(); }

}  // namespace backout::http
