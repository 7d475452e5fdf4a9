#include "providers/registry.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "providers/codedeploy/codedeploy_provider.h"
#include "providers/command/command_provider.h"
#include "providers/git/git_provider.h"
#include "providers/kubernetes/kubernetes_provider.h"
#include "providers/launchdarkly/launchdarkly_provider.h"
#include "providers/releases/releases_provider.h"
#include "providers/unleash/unleash_provider.h"

namespace backout::providers {
namespace {

using Factory = core::Result<std::unique_ptr<Provider>> (*)(std::string_view service,
                                                            const nlohmann::json& settings,
                                                            const SecretValues& secrets,
                                                            core::Clock& clock);

struct Registration {
  std::string_view kind;
  Factory create;
};

// One line per provider folder.
constexpr std::array kRegistrations = {
    Registration{"codedeploy", &codedeploy::CodeDeployProvider::Create},
    Registration{"command", &command::CommandProvider::Create},
    Registration{"git", &git::GitProvider::Create},
    Registration{"kubernetes", &kubernetes::KubernetesProvider::Create},
    Registration{"launchdarkly", &launchdarkly::LaunchDarklyProvider::Create},
    Registration{"releases", &releases::ReleasesProvider::Create},
    Registration{"unleash", &unleash::UnleashProvider::Create},
};

}  // namespace

core::Result<std::unique_ptr<Provider>> Registry::Create(std::string_view kind,
                                                         std::string_view service,
                                                         const nlohmann::json& settings,
                                                         const SecretValues& secrets,
                                                         core::Clock& clock) {
  for (const Registration& registration : kRegistrations) {
    if (registration.kind == kind) return registration.create(service, settings, secrets, clock);
  }
  return core::MakeError(core::ErrorCode::kInvalidArgument,
                         "service {}: unknown provider kind '{}'; known kinds are {}", service,
                         kind, fmt::join(Kinds(), ", "));
}

std::vector<std::string_view> Registry::Kinds() {
  std::vector<std::string_view> kinds;
  for (const Registration& registration : kRegistrations) kinds.push_back(registration.kind);
  std::sort(kinds.begin(), kinds.end());
  return kinds;
}

}  // namespace backout::providers
