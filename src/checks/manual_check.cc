#include "checks/manual_check.h"

#include <algorithm>

#include <fmt/format.h>

#include "checks/settings_json.h"

namespace backout::checks {
namespace {

namespace sj = settings_json;

std::string Describe(const ManualConfirmation& confirmation) {
  std::string text =
      fmt::format("{} by {} at {}", confirmation.passed ? "confirmed" : "rejected",
                  confirmation.confirmed_by, core::FormatTime(confirmation.confirmed_at));
  if (!confirmation.note.empty()) text += ": " + confirmation.note;
  if (!confirmation.attachment_sha256.empty()) {
    text += fmt::format(" (attachment {} sha256 {})", confirmation.attachment_name,
                        confirmation.attachment_sha256);
  }
  return text;
}

}  // namespace

core::Result<ManualCheckSettings> ManualCheckSettings::Parse(const nlohmann::json& settings) {
  auto keys = sj::OnlyKeys(settings, {"instructions", "confirmers", "wait", "interval"}, "");
  if (!keys) return std::unexpected(keys.error());
  ManualCheckSettings parsed;
  auto instructions = sj::String(settings, "instructions", "", "");
  if (!instructions) return std::unexpected(instructions.error());
  parsed.instructions = *instructions;
  if (auto it = settings.find("confirmers"); it != settings.end() && !it->is_null()) {
    if (!it->is_array()) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "confirmers: expected a list of user names");
    }
    for (const auto& user : *it) {
      if (!user.is_string() || user.get<std::string>().empty()) {
        return core::MakeError(core::ErrorCode::kInvalidArgument,
                               "confirmers: every item must be a user name");
      }
      parsed.confirmers.push_back(user.get<std::string>());
    }
  }
  auto wait = sj::Duration(settings, "wait", "", parsed.wait, true);
  if (!wait) return std::unexpected(wait.error());
  parsed.wait = *wait;
  auto interval = sj::Duration(settings, "interval", "", parsed.interval, false);
  if (!interval) return std::unexpected(interval.error());
  parsed.interval = *interval;
  return parsed;
}

bool ManualCheckSettings::AllowsConfirmer(std::string_view user) const {
  return confirmers.empty() ||
         std::find(confirmers.begin(), confirmers.end(), user) != confirmers.end();
}

core::Result<std::unique_ptr<ManualCheck>> ManualCheck::Create(std::string name,
                                                               const nlohmann::json& settings) {
  auto parsed = ManualCheckSettings::Parse(settings);
  if (!parsed) {
    return core::MakeError(parsed.error().code, "check {}: {}", name, parsed.error().message);
  }
  return std::unique_ptr<ManualCheck>(new ManualCheck(std::move(name), *std::move(parsed)));
}

CheckResult ManualCheck::Run(const CheckContext& context) const {
  core::Observation observation{.check = name(), .kind = "manual"};
  const core::Time deadline =
      context.clock->Now() + std::chrono::duration_cast<core::Duration>(settings_.wait);
  std::string problem;
  while (true) {
    int too_old = 0;
    std::optional<ManualConfirmation> latest;
    if (context.confirmations == nullptr) {
      problem = "this server cannot read manual confirmations";
    } else if (auto listed = context.confirmations->List(context.incident_id, name()); !listed) {
      problem = "cannot read the confirmations: " + listed.error().message;
    } else {
      for (const ManualConfirmation& confirmation : *listed) {
        if (!settings_.AllowsConfirmer(confirmation.confirmed_by)) continue;
        if (confirmation.confirmed_at <= context.rollback_finished_at) {
          ++too_old;
          continue;
        }
        if (!latest || confirmation.confirmed_at >= latest->confirmed_at) latest = confirmation;
      }
      problem = fmt::format(
          "no confirmation after the rollback completed at {}{}; confirm with `backout incident "
          "confirm-check {} {} --note TEXT`",
          core::FormatTime(context.rollback_finished_at),
          too_old > 0 ? fmt::format(" ({} older confirmation(s) do not count)", too_old) : "",
          context.incident_id, name());
    }
    if (latest) {
      observation.result =
          latest->passed ? core::ObservationResult::kPassed : core::ObservationResult::kFailed;
      observation.detail = Describe(*latest);
      observation.observed_at = latest->confirmed_at;
      return {observation, std::nullopt};
    }
    const core::Time now = context.clock->Now();
    if (now >= deadline || context.stop_requested()) {
      observation.result = core::ObservationResult::kUnknown;
      observation.detail = problem;
      observation.observed_at = now;
      return {observation, std::nullopt};
    }
    const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    SleepFor(context,
             std::min(settings_.interval, std::max(remaining, std::chrono::milliseconds(1))));
  }
}

}  // namespace backout::checks
