#pragma once

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

// Helpers that drive the real `git` command for the git provider's tests: a bare remote that
// refuses non-fast-forward pushes and a working clone that plays the team and its automation.
// Header-only, used by the module's tests only.
namespace backout::providers::git::testing {

inline std::string Quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

// Runs `git` with `args` in `folder` and returns its standard output, trimmed of the final
// newline. Fails the test when git exits with a non-zero status.
inline std::string Git(const std::filesystem::path& folder, const std::vector<std::string>& args) {
  std::string command = "GIT_CONFIG_NOSYSTEM=1 git -C " + Quote(folder.string()) +
                        " -c user.name=Dev -c user.email=dev@example.com";
  for (const std::string& arg : args) command += " " + Quote(arg);
  command += " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "cannot run " << command;
    return "";
  }
  std::string output;
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    output.append(buffer.data(), n);
  int status = ::pclose(pipe);
  EXPECT_EQ(status, 0) << command << "\n" << output;
  while (!output.empty() && output.back() == '\n') output.pop_back();
  return output;
}

inline void WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

inline std::string ValuesYaml(const std::string& version,
                              const std::string& repository = "registry.example/checkout") {
  return "replicas: 3\n"
         "image:\n"
         "  repository: " +
         repository +
         "\n"
         "  tag: " +
         version +
         " # {\"$imagepolicy\": \"flux-system:checkout:tag\"}\n"
         "resources:\n"
         "  limits:\n"
         "    cpu: 500m\n";
}

inline constexpr std::string_view kAutomationManifest =
    "apiVersion: image.toolkit.fluxcd.io/v1beta2\n"
    "kind: ImageUpdateAutomation\n"
    "metadata:\n"
    "  name: checkout\n"
    "  namespace: flux-system\n"
    "spec:\n"
    "  interval: 1m\n"
    "  sourceRef:\n"
    "    kind: GitRepository\n"
    "    name: prod\n"
    "  update:\n"
    "    path: ./apps/checkout\n"
    "    strategy: Setters\n";

}  // namespace backout::providers::git::testing
