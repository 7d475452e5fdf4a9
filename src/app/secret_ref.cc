#include "app/secret_ref.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <system_error>

#include <fmt/format.h>

namespace backout::app {
namespace {

namespace fs = std::filesystem;
using core::ErrorCode;
using core::MakeError;

constexpr std::string_view kEnvPrefix = "env:";
constexpr std::string_view kFilePrefix = "file:";

// Removes one trailing "\n" or "\r\n", the line end editors and `echo` add to secret files.
void TrimOneNewline(std::string& value) {
  if (value.ends_with("\r\n")) {
    value.resize(value.size() - 2);
  } else if (value.ends_with('\n')) {
    value.pop_back();
  }
}

// Closes a file descriptor when the read ends, whichever way it ends.
class FileCloser {
 public:
  explicit FileCloser(int fd) : fd_(fd) {}
  ~FileCloser() { ::close(fd_); }
  FileCloser(const FileCloser&) = delete;
  FileCloser& operator=(const FileCloser&) = delete;

 private:
  int fd_;
};

}  // namespace

bool SecretRef::IsReference(std::string_view text) {
  return text.starts_with(kEnvPrefix) || text.starts_with(kFilePrefix);
}

bool SecretRef::IsVariableName(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name) {
    const bool letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    const bool digit = c >= '0' && c <= '9';
    if (!letter && !digit && c != '_') return false;
  }
  return true;
}

core::Result<SecretRef> SecretRef::Parse(std::string_view text, const fs::path& base_dir) {
  if (text.starts_with(kEnvPrefix)) {
    const std::string_view name = text.substr(kEnvPrefix.size());
    if (!IsVariableName(name)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "invalid secret reference '{}': the variable name must contain only "
                       "letters, digits and '_' and must not start with a digit",
                       text);
    }
    return SecretRef(Source::kEnv, std::string(name));
  }

  if (text.starts_with(kFilePrefix)) {
    const fs::path path(text.substr(kFilePrefix.size()));
    if (path.empty()) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "invalid secret reference '{}': the file path is empty", text);
    }
    std::error_code error;
    const fs::path absolute = fs::absolute(base_dir / path, error).lexically_normal();
    if (error) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "invalid secret reference '{}': cannot make the path absolute: {}", text,
                       error.message());
    }
    return SecretRef(Source::kFile, absolute.string());
  }

  return MakeError(ErrorCode::kInvalidArgument,
                   "secrets must be references (env:NAME or file:PATH), not inline values");
}

std::string SecretRef::ToString() const {
  return fmt::format("{}{}", source_ == Source::kEnv ? kEnvPrefix : kFilePrefix, target_);
}

core::Result<std::string> SecretRef::Resolve() const {
  auto value = source_ == Source::kEnv ? ResolveEnv() : ResolveFile();
  if (!value) return value;

  TrimOneNewline(*value);
  if (value->empty()) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "secret {} is empty: give it a value or correct the reference", ToString());
  }
  return value;
}

core::Result<std::string> SecretRef::ResolveEnv() const {
  const char* value = std::getenv(target_.c_str());
  if (value == nullptr) {
    return MakeError(ErrorCode::kNotFound,
                     "secret {}: the environment variable {} is not set: set it in the server's "
                     "environment",
                     ToString(), target_);
  }
  std::string text(value);
  if (text.size() > kMaxBytes) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "secret {} is larger than {} bytes, the maximum for a secret", ToString(),
                     kMaxBytes);
  }
  return text;
}

core::Result<std::string> SecretRef::ResolveFile() const {
  const int fd = ::open(target_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int saved_errno = errno;
    return MakeError(saved_errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kFailedPrecondition,
                     "secret {}: cannot open the file: {}", ToString(),
                     std::generic_category().message(saved_errno));
  }
  FileCloser closer(fd);

  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "secret {}: not a regular file: point the reference at the file that holds "
                     "the secret",
                     ToString());
  }

  // Reads until the end of the file or until the content passes the limit.
  std::string content;
  char buffer[8192];
  while (content.size() <= kMaxBytes) {
    const ssize_t count = ::read(fd, buffer, sizeof(buffer));
    if (count == 0) break;
    if (count < 0) {
      if (errno == EINTR) continue;
      return MakeError(ErrorCode::kFailedPrecondition, "secret {}: cannot read the file: {}",
                       ToString(), std::generic_category().message(errno));
    }
    content.append(buffer, static_cast<size_t>(count));
  }
  if (content.size() > kMaxBytes) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "secret {} is larger than {} bytes, the maximum for a secret", ToString(),
                     kMaxBytes);
  }
  return content;
}

}  // namespace backout::app
