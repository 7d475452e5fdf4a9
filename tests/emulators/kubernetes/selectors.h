#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

// Label and field selectors in the text form the Kubernetes API takes in `labelSelector` and
// `fieldSelector` query parameters.
namespace backout::emulators::kubernetes {

// One requirement of a label selector: `app=web`, `tier!=db`, `env in (a,b)`, `env notin (a)`,
// `app` (exists) or `!app` (does not exist).
struct LabelRequirement {
  enum class Op { kEquals, kNotEquals, kIn, kNotIn, kExists, kDoesNotExist };
  std::string key;
  Op op = Op::kEquals;
  std::vector<std::string> values;
};

class LabelSelector {
 public:
  // Parses the query form. Returns nullopt for text it cannot read.
  static std::optional<LabelSelector> Parse(std::string_view text);

  // Builds the selector of a workload's `spec.selector` (matchLabels and matchExpressions).
  static LabelSelector FromWorkloadSelector(const nlohmann::json& selector);

  // Whether `labels` (an object of strings, or null) satisfies every requirement.
  bool Matches(const nlohmann::json& labels) const;

  // The query form, as kubectl writes it from a workload's selector.
  std::string ToString() const;

  bool empty() const { return requirements_.empty(); }

 private:
  std::vector<LabelRequirement> requirements_;
};

// A field selector: comma-separated `field=value`, `field==value` or `field!=value` terms over
// metadata.name, metadata.namespace and, for pods, status.phase and spec.nodeName.
class FieldSelector {
 public:
  static std::optional<FieldSelector> Parse(std::string_view text);

  bool Matches(const nlohmann::json& object) const;

  // The value the selector requires for `field`, when it has an equality term for it.
  std::optional<std::string> Required(std::string_view field) const;

 private:
  struct Term {
    std::string field;
    bool equals = true;
    std::string value;
  };
  std::vector<Term> terms_;
};

}  // namespace backout::emulators::kubernetes
