#include "selectors.h"

#include <algorithm>

namespace backout::emulators::kubernetes {
namespace {

using nlohmann::json;

std::string Trim(std::string_view text) {
  size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return "";
  size_t end = text.find_last_not_of(" \t");
  return std::string(text.substr(begin, end - begin + 1));
}

// Splits at commas outside parentheses, so `env in (a,b),app=x` gives two terms.
std::vector<std::string> SplitTerms(std::string_view text) {
  std::vector<std::string> terms;
  int depth = 0;
  std::string current;
  for (char c : text) {
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == ',' && depth == 0) {
      terms.push_back(Trim(current));
      current.clear();
      continue;
    }
    current += c;
  }
  if (!Trim(current).empty() || !terms.empty()) terms.push_back(Trim(current));
  return terms;
}

std::vector<std::string> SplitValues(std::string_view text) {
  std::vector<std::string> values;
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t end = text.find(',', begin);
    if (end == std::string_view::npos) end = text.size();
    std::string value = Trim(text.substr(begin, end - begin));
    if (!value.empty()) values.push_back(value);
    begin = end + 1;
  }
  return values;
}

std::optional<std::string> LabelValue(const json& labels, const std::string& key) {
  if (!labels.is_object()) return std::nullopt;
  auto it = labels.find(key);
  if (it == labels.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

std::optional<LabelRequirement> ParseSetTerm(const std::string& term, std::string_view word,
                                             LabelRequirement::Op op) {
  std::string marker = " " + std::string(word) + " ";
  size_t at = term.find(marker);
  if (at == std::string::npos) return std::nullopt;
  std::string rest = Trim(std::string_view(term).substr(at + marker.size()));
  if (rest.size() < 2 || rest.front() != '(' || rest.back() != ')') return std::nullopt;
  LabelRequirement requirement;
  requirement.key = Trim(std::string_view(term).substr(0, at));
  requirement.op = op;
  requirement.values = SplitValues(std::string_view(rest).substr(1, rest.size() - 2));
  return requirement;
}

std::optional<LabelRequirement> ParseLabelTerm(const std::string& term) {
  if (term.empty()) return std::nullopt;
  if (auto in = ParseSetTerm(term, "notin", LabelRequirement::Op::kNotIn)) return in;
  if (auto in = ParseSetTerm(term, "in", LabelRequirement::Op::kIn)) return in;

  LabelRequirement requirement;
  if (size_t at = term.find("!="); at != std::string::npos) {
    requirement.key = Trim(std::string_view(term).substr(0, at));
    requirement.op = LabelRequirement::Op::kNotEquals;
    requirement.values = {Trim(std::string_view(term).substr(at + 2))};
  } else if (size_t at = term.find("=="); at != std::string::npos) {
    requirement.key = Trim(std::string_view(term).substr(0, at));
    requirement.values = {Trim(std::string_view(term).substr(at + 2))};
  } else if (size_t at = term.find('='); at != std::string::npos) {
    requirement.key = Trim(std::string_view(term).substr(0, at));
    requirement.values = {Trim(std::string_view(term).substr(at + 1))};
  } else if (term.front() == '!') {
    requirement.key = Trim(std::string_view(term).substr(1));
    requirement.op = LabelRequirement::Op::kDoesNotExist;
  } else {
    requirement.key = term;
    requirement.op = LabelRequirement::Op::kExists;
  }
  if (requirement.key.empty()) return std::nullopt;
  return requirement;
}

}  // namespace

std::optional<LabelSelector> LabelSelector::Parse(std::string_view text) {
  LabelSelector selector;
  if (Trim(text).empty()) return selector;
  for (const std::string& term : SplitTerms(text)) {
    auto requirement = ParseLabelTerm(term);
    if (!requirement) return std::nullopt;
    selector.requirements_.push_back(std::move(*requirement));
  }
  return selector;
}

LabelSelector LabelSelector::FromWorkloadSelector(const json& selector) {
  LabelSelector result;
  if (!selector.is_object()) return result;
  if (auto labels = selector.find("matchLabels"); labels != selector.end() && labels->is_object()) {
    for (const auto& [key, value] : labels->items()) {
      result.requirements_.push_back(
          {key, LabelRequirement::Op::kEquals, {value.get<std::string>()}});
    }
  }
  if (auto expressions = selector.find("matchExpressions");
      expressions != selector.end() && expressions->is_array()) {
    for (const json& expression : *expressions) {
      LabelRequirement requirement;
      requirement.key = expression.value("key", "");
      std::string op = expression.value("operator", "");
      if (op == "In") requirement.op = LabelRequirement::Op::kIn;
      if (op == "NotIn") requirement.op = LabelRequirement::Op::kNotIn;
      if (op == "Exists") requirement.op = LabelRequirement::Op::kExists;
      if (op == "DoesNotExist") requirement.op = LabelRequirement::Op::kDoesNotExist;
      if (auto values = expression.find("values"); values != expression.end()) {
        for (const json& value : *values) requirement.values.push_back(value.get<std::string>());
      }
      result.requirements_.push_back(std::move(requirement));
    }
  }
  return result;
}

bool LabelSelector::Matches(const json& labels) const {
  for (const LabelRequirement& requirement : requirements_) {
    std::optional<std::string> value = LabelValue(labels, requirement.key);
    auto listed = [&] {
      return value && std::find(requirement.values.begin(), requirement.values.end(), *value) !=
                          requirement.values.end();
    };
    switch (requirement.op) {
      case LabelRequirement::Op::kEquals:
      case LabelRequirement::Op::kIn:
        if (!listed()) return false;
        break;
      case LabelRequirement::Op::kNotEquals:
      case LabelRequirement::Op::kNotIn:
        if (listed()) return false;
        break;
      case LabelRequirement::Op::kExists:
        if (!value) return false;
        break;
      case LabelRequirement::Op::kDoesNotExist:
        if (value) return false;
        break;
    }
  }
  return true;
}

std::string LabelSelector::ToString() const {
  std::string text;
  for (const LabelRequirement& requirement : requirements_) {
    if (!text.empty()) text += ",";
    std::string values;
    for (const std::string& value : requirement.values) {
      if (!values.empty()) values += ",";
      values += value;
    }
    switch (requirement.op) {
      case LabelRequirement::Op::kEquals:
        text += requirement.key + "=" + values;
        break;
      case LabelRequirement::Op::kNotEquals:
        text += requirement.key + "!=" + values;
        break;
      case LabelRequirement::Op::kIn:
        text += requirement.key + " in (" + values + ")";
        break;
      case LabelRequirement::Op::kNotIn:
        text += requirement.key + " notin (" + values + ")";
        break;
      case LabelRequirement::Op::kExists:
        text += requirement.key;
        break;
      case LabelRequirement::Op::kDoesNotExist:
        text += "!" + requirement.key;
        break;
    }
  }
  return text;
}

std::optional<FieldSelector> FieldSelector::Parse(std::string_view text) {
  FieldSelector selector;
  if (Trim(text).empty()) return selector;
  for (const std::string& term : SplitTerms(text)) {
    Term parsed;
    if (size_t at = term.find("!="); at != std::string::npos) {
      parsed = {Trim(std::string_view(term).substr(0, at)), false,
                Trim(std::string_view(term).substr(at + 2))};
    } else if (size_t at = term.find("=="); at != std::string::npos) {
      parsed = {Trim(std::string_view(term).substr(0, at)), true,
                Trim(std::string_view(term).substr(at + 2))};
    } else if (size_t at = term.find('='); at != std::string::npos) {
      parsed = {Trim(std::string_view(term).substr(0, at)), true,
                Trim(std::string_view(term).substr(at + 1))};
    } else {
      return std::nullopt;
    }
    if (parsed.field != "metadata.name" && parsed.field != "metadata.namespace" &&
        parsed.field != "status.phase" && parsed.field != "spec.nodeName") {
      return std::nullopt;
    }
    selector.terms_.push_back(std::move(parsed));
  }
  return selector;
}

bool FieldSelector::Matches(const json& object) const {
  for (const Term& term : terms_) {
    json::json_pointer pointer("/" + term.field.substr(0, term.field.find('.')) + "/" +
                               term.field.substr(term.field.find('.') + 1));
    std::string value;
    if (object.contains(pointer) && object.at(pointer).is_string()) {
      value = object.at(pointer).get<std::string>();
    }
    if ((value == term.value) != term.equals) return false;
  }
  return true;
}

std::optional<std::string> FieldSelector::Required(std::string_view field) const {
  for (const Term& term : terms_) {
    if (term.field == field && term.equals) return term.value;
  }
  return std::nullopt;
}

}  // namespace backout::emulators::kubernetes
