#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include "core/error.h"

namespace backout::app {

// A secret named by reference, never by value: `env:NAME` is an environment variable of the
// server and `file:PATH` a file it reads. The reference itself is safe to log and store, so
// configs and ledger entries carry references and the secret is read only where it is used.
class SecretRef {
 public:
  enum class Source { kEnv, kFile };

  // The largest secret Resolve() reads, so a wrong path (a log file, a device) fails quickly.
  static constexpr size_t kMaxBytes = 1024 * 1024;

  // Parses `env:NAME` or `file:PATH`. A relative PATH resolves against `base_dir` (the config
  // file's folder when the config loader calls it), and an empty `base_dir` means the current
  // folder. Text that is not a reference fails without being quoted, because it may be a secret.
  static core::Result<SecretRef> Parse(std::string_view text,
                                       const std::filesystem::path& base_dir = {});

  // Returns whether `text` is written as a reference: it starts with `env:` or `file:`.
  static bool IsReference(std::string_view text);

  // Returns whether `name` is an environment variable name as POSIX shells accept it: letters,
  // digits and '_', not starting with a digit.
  static bool IsVariableName(std::string_view name);

  // Reads the secret: the variable's value or the file's content, without one trailing newline
  // (\n or \r\n). Fails when the variable is not set, the file cannot be read or is larger than
  // kMaxBytes, or the secret is empty. Error messages name the reference, never the value.
  core::Result<std::string> Resolve() const;

  Source source() const { return source_; }
  // The variable name, or the file's absolute path.
  const std::string& target() const { return target_; }
  // The reference in its written form: env:NAME or file:/absolute/path.
  std::string ToString() const;

  bool operator==(const SecretRef&) const = default;

 private:
  SecretRef(Source source, std::string target) : source_(source), target_(std::move(target)) {}

  core::Result<std::string> ResolveEnv() const;
  core::Result<std::string> ResolveFile() const;

  Source source_;
  std::string target_;
};

}  // namespace backout::app
