#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/time.h"

// Helpers that build deploy roots for the releases provider's tests. Header-only.
namespace backout::providers::releases::testing {

// Creates <root>/releases/<version>/ with an app file and, when `complete`, the marker, whose
// modification time is `completed_at` seconds after the epoch so tests choose the order.
inline std::filesystem::path MakeRelease(const std::filesystem::path& root,
                                         const std::string& version, bool complete,
                                         int64_t completed_at, const std::string& marker) {
  std::filesystem::path folder = root / "releases" / version;
  std::filesystem::create_directories(folder);
  std::ofstream(folder / "app.txt") << "release " << version << "\n";
  if (complete) {
    std::filesystem::path marker_path = folder / marker;
    std::ofstream(marker_path) << "version=" << version << "\n";
    struct timespec times[2] = {{completed_at, 0}, {completed_at, 0}};
    ::utimensat(AT_FDCWD, marker_path.c_str(), times, 0);
  }
  return folder;
}

// Points <root>/current at `target` (any text, relative or absolute) the way `ln -sfn` does.
inline void PointCurrent(const std::filesystem::path& root, const std::string& target) {
  std::filesystem::path link = root / "current";
  std::error_code error;
  std::filesystem::remove(link, error);
  std::filesystem::create_symlink(target, link);
}

inline std::string ReadText(const std::filesystem::path& path) {
  std::ifstream file(path);
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

inline core::Time SecondsAfterEpoch(int64_t seconds) {
  return core::Time(std::chrono::seconds(seconds));
}

}  // namespace backout::providers::releases::testing
