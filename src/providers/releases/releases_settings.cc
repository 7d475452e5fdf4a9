#include "providers/releases/releases_settings.h"

#include <array>

#include "providers/settings_reader.h"

namespace backout::providers::releases {
namespace {

constexpr std::array<std::string_view, 7> kKnownFields = {
    "root", "marker", "restart", "restart_timeout", "health", "health_url", "health_timeout",
};

}  // namespace

core::Result<ReleasesSettings> ParseReleasesSettings(std::string_view service,
                                                     const nlohmann::json& settings) {
  SettingsReader reader(service, "releases", settings);
  if (auto fields = reader.CheckFields(kKnownFields); !fields) {
    return std::unexpected(fields.error());
  }

  ReleasesSettings out;
  auto root = reader.AbsolutePath("root", true);
  if (!root) return std::unexpected(root.error());
  if (*root == "/") {
    return reader.Invalid("root", "must be the service's deploy folder, not /");
  }
  out.root = std::move(*root);

  auto marker = reader.String("marker", false, out.marker);
  if (!marker) return std::unexpected(marker.error());
  if (marker->find('/') != std::string::npos || *marker == "." || *marker == "..") {
    return reader.Invalid("marker", "'{}' must be a file name without '/', such as {}", *marker,
                          kDefaultMarker);
  }
  out.marker = std::move(*marker);

  auto restart = reader.Command("restart");
  if (!restart) return std::unexpected(restart.error());
  out.restart = std::move(*restart);
  auto restart_timeout = reader.Duration("restart_timeout", out.restart_timeout);
  if (!restart_timeout) return std::unexpected(restart_timeout.error());
  out.restart_timeout = *restart_timeout;

  auto health = reader.Command("health");
  if (!health) return std::unexpected(health.error());
  out.health.command = std::move(*health);
  auto health_url = reader.HttpUrl("health_url");
  if (!health_url) return std::unexpected(health_url.error());
  out.health.url = std::move(*health_url);
  auto health_timeout = reader.Duration("health_timeout", out.health.timeout);
  if (!health_timeout) return std::unexpected(health_timeout.error());
  out.health.timeout = *health_timeout;
  return out;
}

}  // namespace backout::providers::releases
