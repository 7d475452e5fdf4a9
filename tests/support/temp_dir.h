#pragma once

#include <filesystem>

namespace backout::testing {

// A fresh folder under $BACKOUT_TEST_TMPDIR (or the system temp folder), removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace backout::testing
