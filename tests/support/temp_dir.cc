#include "support/temp_dir.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace backout::testing {

TempDir::TempDir() {
  const char* base = std::getenv("BACKOUT_TEST_TMPDIR");
  std::filesystem::path root = base ? base : std::filesystem::temp_directory_path();
  std::filesystem::create_directories(root);
  std::string pattern = (root / "backout-test-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed under " + root.string());
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace backout::testing
