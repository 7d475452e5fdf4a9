#pragma once

#include <memory>
#include <regex>
#include <string>
#include <string_view>

#include "core/error.h"

// Reading a version from a manifest or values file, and suspending an automation manifest,
// without reformatting the file: GitOps repositories are reviewed by people, so a revert commit
// changes only the lines it must.
namespace backout::providers::git {

// Finds the service's version in a file, by a regular expression with one group or by a dotted
// YAML key. Immutable and thread-safe.
class VersionReader {
 public:
  // Exactly one of `pattern` and `key` is non-empty; the settings parser checks both.
  VersionReader(std::string pattern, std::string key);

  // Returns the first match's group, or the scalar at the key in the first YAML document that
  // has it. Fails with kNotFound naming the pattern or key.
  core::Result<std::string> Read(std::string_view text) const;

  // "pattern '...'" or "YAML key image.tag", for messages.
  std::string Describe() const;

 private:
  std::string pattern_;
  std::string key_;
  std::shared_ptr<const std::regex> regex_;  // null when the pattern is invalid
};

// Sets `spec.suspend: true` in every YAML document of `text` that has a top-level block mapping
// `spec`, which suspends Flux objects (ImageUpdateAutomation, Kustomization, HelmRelease): an
// existing `suspend:` line is rewritten, otherwise one is added right below `spec:`. Other lines
// are kept byte for byte. Fails with kFailedPrecondition when no document has a block `spec`, or
// when the result does not parse with spec.suspend true.
core::Result<std::string> SuspendAutomation(std::string_view text);

// Whether every document with a `spec` mapping has spec.suspend set to true.
bool IsSuspended(std::string_view text);

}  // namespace backout::providers::git
