#include "providers/git/manifest_text.h"

#include <yaml-cpp/yaml.h>

#include <regex>
#include <sstream>
#include <vector>

#include <fmt/format.h>

namespace backout::providers::git {
namespace {

std::vector<std::string> SplitLines(std::string_view text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    lines.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

size_t Indent(const std::string& line) {
  size_t indent = line.find_first_not_of(' ');
  return indent == std::string::npos ? line.size() : indent;
}

bool IsBlankOrComment(const std::string& line) {
  size_t first = line.find_first_not_of(" \t\r");
  return first == std::string::npos || line[first] == '#';
}

bool IsDocumentStart(const std::string& line) { return line.starts_with("---"); }

// Scalar at the dotted `key` in `node`, if any.
std::optional<std::string> ScalarAt(const YAML::Node& node, std::string_view key) {
  YAML::Node current = node;
  size_t start = 0;
  while (start <= key.size()) {
    size_t end = key.find('.', start);
    if (end == std::string_view::npos) end = key.size();
    std::string part(key.substr(start, end - start));
    if (!current.IsMap()) return std::nullopt;
    YAML::Node child = current[part];
    if (!child.IsDefined()) return std::nullopt;
    current = child;
    start = end + 1;
  }
  if (!current.IsScalar()) return std::nullopt;
  return current.Scalar();
}

}  // namespace

VersionReader::VersionReader(std::string pattern, std::string key)
    : pattern_(std::move(pattern)), key_(std::move(key)) {
  if (pattern_.empty()) return;
  try {
    regex_ = std::make_shared<const std::regex>(pattern_);
  } catch (const std::regex_error&) {
    regex_ = nullptr;
  }
}

std::string VersionReader::Describe() const {
  return pattern_.empty() ? fmt::format("YAML key {}", key_)
                          : fmt::format("pattern '{}'", pattern_);
}

core::Result<std::string> VersionReader::Read(std::string_view text) const {
  if (!pattern_.empty()) {
    if (regex_ == nullptr) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "the version pattern '{}' is not a valid regular expression",
                             pattern_);
    }
    std::match_results<std::string_view::const_iterator> match;
    if (std::regex_search(text.begin(), text.end(), match, *regex_) && match[1].matched &&
        match[1].length() > 0) {
      return match[1].str();
    }
    return core::MakeError(core::ErrorCode::kNotFound, "no match for the version {}", Describe());
  }

  try {
    for (const YAML::Node& document : YAML::LoadAll(std::string(text))) {
      if (auto value = ScalarAt(document, key_); value && !value->empty()) return *value;
    }
  } catch (const YAML::Exception& error) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "the file is not valid YAML ({}), so the {} cannot be read",
                           error.what(), Describe());
  }
  return core::MakeError(core::ErrorCode::kNotFound, "no scalar at the version {}", Describe());
}

bool IsSuspended(std::string_view text) {
  try {
    bool any = false;
    for (const YAML::Node& document : YAML::LoadAll(std::string(text))) {
      if (!document.IsMap() || !document["spec"].IsDefined()) continue;
      any = true;
      YAML::Node suspend = document["spec"]["suspend"];
      if (!suspend.IsDefined() || !suspend.IsScalar() || suspend.as<std::string>() != "true") {
        return false;
      }
    }
    return any;
  } catch (const YAML::Exception&) {
    return false;
  }
}

core::Result<std::string> SuspendAutomation(std::string_view text) {
  static const std::regex kSpecLine(R"(^spec:\s*(#.*)?\r?$)");
  static const std::regex kSuspendLine(R"(^(\s*)suspend:.*$)");

  std::vector<std::string> lines = SplitLines(text);
  bool found_spec = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!std::regex_match(lines[i], kSpecLine)) continue;
    found_spec = true;

    // The spec block runs until the next line at column 0 or the next document.
    size_t end = i + 1;
    size_t child_indent = 0;
    while (end < lines.size() && !IsDocumentStart(lines[end])) {
      if (!IsBlankOrComment(lines[end])) {
        if (Indent(lines[end]) == 0) break;
        if (child_indent == 0) child_indent = Indent(lines[end]);
      }
      ++end;
    }
    if (child_indent == 0) child_indent = 2;

    bool rewritten = false;
    for (size_t j = i + 1; j < end; ++j) {
      std::smatch match;
      if (Indent(lines[j]) == child_indent && std::regex_match(lines[j], match, kSuspendLine)) {
        lines[j] = std::string(child_indent, ' ') + "suspend: true";
        rewritten = true;
        break;
      }
    }
    if (!rewritten) {
      lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                   std::string(child_indent, ' ') + "suspend: true");
      ++i;
    }
  }
  if (!found_spec) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "no document in the manifest has a top-level block `spec:` line, so "
                           "spec.suspend cannot be set; suspend the automation by hand");
  }

  std::string result;
  for (size_t i = 0; i < lines.size(); ++i) {
    result += lines[i];
    if (i + 1 < lines.size() || text.ends_with('\n')) result += '\n';
  }
  if (!IsSuspended(result)) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "setting spec.suspend did not give a manifest whose spec.suspend is "
                           "true (flow-style or unusual YAML); suspend the automation by hand");
  }
  return result;
}

}  // namespace backout::providers::git
