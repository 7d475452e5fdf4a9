#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace backout::http {

// Compares ASCII text without regard to case, as HTTP compares field names.
bool EqualsIgnoringCase(std::string_view a, std::string_view b);

// HTTP header fields in the order they were added. Names compare case-insensitively (RFC 9110,
// section 5.1) and may repeat, as Set-Cookie does.
class Headers {
 public:
  using Field = std::pair<std::string, std::string>;

  Headers() = default;
  Headers(std::initializer_list<Field> fields);

  // Appends a field, keeping any earlier field of the same name.
  void Add(std::string name, std::string value);

  // Replaces every field named `name` with one field.
  void Set(std::string name, std::string value);

  void Remove(std::string_view name);

  // The value of the first field named `name`.
  std::optional<std::string> Get(std::string_view name) const;

  std::vector<std::string> GetAll(std::string_view name) const;
  bool Contains(std::string_view name) const;

  const std::vector<Field>& fields() const { return fields_; }
  std::vector<Field>& mutable_fields() { return fields_; }
  bool empty() const { return fields_.empty(); }
  size_t size() const { return fields_.size(); }
  auto begin() const { return fields_.begin(); }
  auto end() const { return fields_.end(); }

  bool operator==(const Headers&) const = default;

 private:
  std::vector<Field> fields_;
};

}  // namespace backout::http
