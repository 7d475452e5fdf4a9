#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "providers/health_probe.h"

namespace backout::providers::releases {

inline constexpr std::string_view kDefaultMarker = ".backout-release-complete";

// The settings of one `releases` provider binding, as written in the service's `provider` block:
//
//   kind: releases
//   root: /srv/checkout                        # required; absolute; holds releases/ and current
//   marker: .backout-release-complete          # file whose presence marks a complete release
//   restart: [/usr/bin/systemctl, restart, checkout]  # optional; argv, run after each switch
//   restart_timeout: 120s                      # default 120s
//   health: [/opt/checks/checkout-health]      # optional; exit code 0 means healthy
//   health_url: http://127.0.0.1:8080/healthz  # optional; a 2xx status means healthy
//   health_timeout: 10s                        # for each health check, default 10s
//
// A restart command must be safe to run twice: after a crash between the switch and the end of
// the restart, Resume runs it again, because whether it finished cannot be known.
struct ReleasesSettings {
  std::string root;  // absolute, lexically normal, no trailing slash
  std::string marker{kDefaultMarker};
  std::vector<std::string> restart;  // empty when not configured
  std::chrono::milliseconds restart_timeout{120'000};
  HealthProbeSettings health;
};

// Validates `settings` for `service`. Errors name the service and the field.
core::Result<ReleasesSettings> ParseReleasesSettings(std::string_view service,
                                                     const nlohmann::json& settings);

}  // namespace backout::providers::releases
