#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/error.h"
#include "providers/launchdarkly/api_client.h"
#include "providers/launchdarkly/flag_state.h"
#include "providers/launchdarkly/launchdarkly_settings.h"
#include "providers/provider.h"

namespace backout::providers::launchdarkly {

// Rolls a service back by changing one LaunchDarkly flag in one environment through the REST
// API v2. Versions name the flag's targeting state: "off" (the kill switch, always available)
// and, for a binding with `action: rollout_to_zero`, "rollout:N" where N is the percentage of
// the default rule that serves the new variation. An empty target requests the binding's action.
//
// - The plan records what "off" will serve (the off variation, or the SDK fallback in the
//   application's code when none is set) and the flags that use this one as a prerequisite, so
//   the approval covers them. When off serves the new variation itself the plan is
//   `no_rollback_target`.
// - The change is a semantic patch (turnFlagOff, or updateFallthroughVariationOrRollout) or a
//   JSON patch guarded by a test of the environment's version. Its comment names the incident,
//   the executor and the approver, so LaunchDarkly's audit log names the people, and carries a
//   marker with the idempotency key, so a change whose response was lost is found again.
// - 405 (the environment requires approvals) ends `pending_approval` with LaunchDarkly's message.
//   409 and a failed version test are retried on a fresh read, 429 after Retry-After, and a
//   lost response only after the audit log shows the change did not land.
// - Rollout to 0 % ends `partial` while individual targets or rules still serve the new variation.
// - ReadBack is the audit log entry carrying the marker; History is the flag's audit log, where a
//   flag turned off by anyone is a rollback; readiness is the flag as LaunchDarkly reports it,
//   held back for `propagation_grace` after the change because SDKs keep cached values.
class LaunchDarklyProvider final : public Provider {
 public:
  static core::Result<std::unique_ptr<Provider>> Create(std::string_view service,
                                                        const nlohmann::json& settings,
                                                        const SecretValues& secrets,
                                                        core::Clock& clock);

  std::string_view Kind() const override { return "launchdarkly"; }
  std::string_view Service() const override { return service_; }
  ProviderCapabilities Capabilities() const override;

  core::Result<LiveState> ReadLiveState() const override;
  core::Result<std::vector<HistoryEntry>> History(core::Time since) const override;
  core::Result<std::vector<Precondition>> Preconditions() const override;
  core::Result<Plan> MakePlan(std::string_view target_version) const override;
  core::Result<ExecutionResult> Execute(const Plan& plan, std::string_view idempotency_key,
                                        const ExecutionContext& context) const override;
  core::Result<ExecutionResult> Resume(const ResumeRequest& request,
                                       const ExecutionContext& context) const override;
  core::Result<Readiness> CheckReadiness() const override;
  core::Result<ToolRecord> ReadBack(const ExecutionResult& execution) const override;

  // The text in a change's comment that marks it as made for `idempotency_key`.
  static std::string Marker(std::string_view idempotency_key);

 private:
  // The flag with the binding's environment picked out.
  struct FlagView {
    nlohmann::json flag;
    nlohmann::json config;                // flag.environments[environment]
    std::optional<size_t> new_variation;  // resolved from the settings, when given
  };

  // One run of Execute or Resume: its inputs and the result it fills.
  struct Run {
    const Plan& plan;
    std::string key;
    const ExecutionContext& context;
    ExecutionResult& result;
    core::Time deadline;
  };

  LaunchDarklyProvider(std::string service, LaunchDarklySettings settings,
                       std::unique_ptr<ApiClient> api, core::Clock& clock);

  // Reads.
  std::string FlagPath() const;      // /flags/{project}/{flag}
  std::string ResourceSpec() const;  // proj/P:env/E:flag/K, as the audit log names the flag
  core::Result<FlagView> ReadFlag(Transcript* transcript) const;
  core::Result<FlagView> ViewOf(nlohmann::json flag) const;
  // The flags that use this one as a prerequisite, each with what its own off serves.
  core::Result<nlohmann::json> ReadDependents(Transcript* transcript) const;
  // The newest audit log entry for the flag whose comment carries `marker`, at or after `since`.
  core::Result<std::optional<nlohmann::json>> FindAuditEntry(const std::string& marker,
                                                             core::Time since,
                                                             Transcript* transcript) const;
  std::string VersionOf(const FlagView& view) const;
  nlohmann::json DescribeLive(const FlagView& view) const;
  bool InTargetState(const FlagView& view, const std::string& type) const;

  // Planning.
  core::Result<nlohmann::json> RolloutChange(const FlagView& view) const;

  // Execution steps.
  core::Result<void> ValidatePlan(const Plan& plan) const;
  ExecutionResult Finish(Run& run, RollbackOutcome outcome, std::string message) const;
  bool RecordStart(Run& run) const;
  // Sends the change, starting from `first_read`, and retries as the failure allows.
  ExecutionResult SendChange(Run& run, FlagView first_read) const;
  nlohmann::json ChangeBody(const Run& run, const FlagView& fresh) const;
  ExecutionResult Conclude(Run& run, const FlagView& view, std::string prefix = "") const;
  std::string Comment(const Run& run) const;
  // Sleeps `delay` unless a stop is requested first; returns whether it slept all of it.
  bool Sleep(std::chrono::milliseconds delay, const std::stop_token& stop) const;

  std::string service_;
  LaunchDarklySettings settings_;
  std::unique_ptr<ApiClient> api_;
  core::Clock& clock_;
};

}  // namespace backout::providers::launchdarkly
