// Loads every example configuration under examples/ and builds its providers, so that no
// example falls behind the loader or a provider's settings.

#include <gtest/gtest.h>

#include <algorithm>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "app/config.h"
#include "server/control_plane_server.h"
#include "store/system_clock.h"
#include "support/temp_dir.h"

namespace backout::server {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> ExampleConfigs() {
  std::vector<fs::path> files;
  for (const auto& entry :
       fs::recursive_directory_iterator(fs::path(BACKOUT_SOURCE_DIR) / "examples")) {
    if (entry.is_regular_file() && entry.path().extension() == ".yaml") {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Gives each `env:NAME` secret the file refers to a stand-in value, as the server's
// environment would.
void SetReferencedVariables(const std::string& text) {
  static const std::regex reference(R"(env:([A-Za-z_][A-Za-z0-9_]*))");
  for (std::sregex_iterator it(text.begin(), text.end(), reference), end; it != end; ++it) {
    setenv((*it)[1].str().c_str(), "example-value", /*overwrite=*/0);
  }
}

TEST(ExampleConfigTest, EveryProviderKindHasAnExample) {
  std::set<std::string> kinds;
  for (const fs::path& file : ExampleConfigs()) {
    auto config = app::Config::Load(file);
    if (!config) continue;  // reported by the next test
    for (const auto& service : config->services) kinds.insert(service.provider.kind);
  }
  for (std::string_view kind :
       {"codedeploy", "command", "git", "kubernetes", "launchdarkly", "releases", "unleash"}) {
    EXPECT_TRUE(kinds.contains(std::string(kind))) << "no example under examples/ uses " << kind;
  }
}

TEST(ExampleConfigTest, EveryExampleLoadsAndBuildsItsProviders) {
  const auto files = ExampleConfigs();
  ASSERT_FALSE(files.empty());
  store::SystemClock clock;
  for (const fs::path& file : files) {
    SCOPED_TRACE(file.string());
    SetReferencedVariables(ReadFile(file));
    auto config = app::Config::Load(file);
    ASSERT_TRUE(config) << config.error().message;
    // Providers may create folders under data_dir; keep them out of the example's own path.
    testing::TempDir data_dir;
    config->data_dir = data_dir.path();
    auto providers = CreateProviders(*config, clock);
    ASSERT_TRUE(providers) << providers.error().message;
    EXPECT_EQ(providers->size(), config->services.size());
  }
}

// A warning means a service in the example can never be validated `recovered`, so a reader who
// copies the example would get a service whose incidents cannot close on a validation.
TEST(ExampleConfigTest, EveryExampleLoadsWithoutWarnings) {
  for (const fs::path& file : ExampleConfigs()) {
    SCOPED_TRACE(file.string());
    SetReferencedVariables(ReadFile(file));
    auto config = app::Config::Load(file);
    ASSERT_TRUE(config) << config.error().message;
    for (const std::string& warning : config->warnings) ADD_FAILURE() << warning;
  }
}

}  // namespace
}  // namespace backout::server
