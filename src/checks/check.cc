#include "checks/check.h"

#include <thread>

#include "checks/http_check.h"
#include "checks/manual_check.h"
#include "checks/prometheus_check.h"

namespace backout::checks {

bool IsCheckKind(std::string_view kind) {
  return kind == "http" || kind == "prometheus" || kind == "manual";
}

core::Result<void> ValidateSettings(std::string_view kind, const nlohmann::json& settings) {
  if (kind == "http") {
    auto parsed = HttpCheckSettings::Parse(settings);
    if (!parsed) return std::unexpected(parsed.error());
    return {};
  }
  if (kind == "prometheus") {
    auto parsed = PrometheusCheckSettings::Parse(settings);
    if (!parsed) return std::unexpected(parsed.error());
    return {};
  }
  if (kind == "manual") {
    auto parsed = ManualCheckSettings::Parse(settings);
    if (!parsed) return std::unexpected(parsed.error());
    return {};
  }
  return core::MakeError(core::ErrorCode::kInvalidArgument,
                         "unknown check kind '{}', expected http, prometheus or manual", kind);
}

core::Result<std::unique_ptr<Check>> CreateCheck(std::string name, std::string_view kind,
                                                 const nlohmann::json& settings,
                                                 SecretResolver resolve_secret) {
  if (kind == "http") {
    auto check = HttpCheck::Create(std::move(name), settings, resolve_secret);
    if (!check) return std::unexpected(check.error());
    return std::unique_ptr<Check>(std::move(*check));
  }
  if (kind == "prometheus") {
    auto check = PrometheusCheck::Create(std::move(name), settings, resolve_secret);
    if (!check) return std::unexpected(check.error());
    return std::unique_ptr<Check>(std::move(*check));
  }
  if (kind == "manual") {
    auto check = ManualCheck::Create(std::move(name), settings);
    if (!check) return std::unexpected(check.error());
    return std::unique_ptr<Check>(std::move(*check));
  }
  return core::MakeError(core::ErrorCode::kInvalidArgument,
                         "check {}: unknown kind '{}', expected http, prometheus or manual", name,
                         kind);
}

void SleepFor(const CheckContext& context, std::chrono::milliseconds delay) {
  if (context.sleep) {
    context.sleep(delay);
  } else {
    std::this_thread::sleep_for(delay);
  }
}

}  // namespace backout::checks
