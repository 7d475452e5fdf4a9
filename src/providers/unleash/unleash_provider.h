#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/error.h"
#include "providers/provider.h"
#include "providers/unleash/admin_client.h"
#include "providers/unleash/flag_state.h"
#include "providers/unleash/unleash_settings.h"

namespace backout::providers::unleash {

// Rolls a feature flag back through Unleash's Admin API, in one environment of one project.
//
// A version is the environment's state: `off`, `on`, or `rollout-0` (on, with every gradual
// rollout strategy at 0 %). An empty target requests the binding's `rollback` state (`off` by
// default). `rollout-0` is planned only when the binding's `rollback` requests it, and then ends
// `partial` while strategies without a rollout parameter (default, remoteAddress…) still serve
// the flag. An archived flag, an unknown project, flag or environment fail with Unleash's cause.
// A 403 naming SKIP_CHANGE_REQUEST ends `pending_approval` with Unleash's message.
//
// Unleash's on/off calls take no comment, so before the change the provider tags the flag with
// the incident id and the executor (`audit_tag`). Unleash copies the flag's tags into every
// event it records, so the change's own event names both. The event's createdBy is the API
// token's name, or the user's email for a personal access token.
class UnleashProvider final : public Provider {
 public:
  static core::Result<std::unique_ptr<Provider>> Create(std::string_view service,
                                                        const nlohmann::json& settings,
                                                        const SecretValues& secrets,
                                                        core::Clock& clock);

  std::string_view Kind() const override { return "unleash"; }
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

  // The tag value that carries the incident and the executor, at most 50 characters (Unleash's
  // limit for tag values).
  static std::string AuditTagValue(std::string_view incident_id, std::string_view executor);

  // One evaluation of the flag by the configured SDK command.
  struct SdkEvaluation {
    bool enabled = false;
    std::string variant;
    core::Time evaluated_at;
    nlohmann::json output;
  };
  // Runs the `sdk_evaluation` command. Fails with kFailedPrecondition when none is configured.
  core::Result<SdkEvaluation> EvaluateWithSdk() const;

 private:
  UnleashProvider(std::string service, UnleashSettings settings, std::unique_ptr<AdminClient> api,
                  core::Clock& clock);

  std::string FeaturePath() const;
  std::string EnvironmentPath() const;
  // Reads the flag; explains archived flags and unknown projects and environments.
  core::Result<FlagState> ReadFlag(Transcript* transcript) const;
  core::Error ExplainMissingFlag(const ApiFailure& failure) const;
  std::vector<DependentFlag> ReadDependents(const FlagState& state) const;
  core::Result<std::vector<FlagEvent>> ReadEvents(std::string_view type, int limit,
                                                  Transcript* transcript) const;
  // Finds the event of the change `execution` made: the newest event that reaches its target and
  // carries its audit tag, else the newest event that reaches its target.
  core::Result<std::optional<FlagEvent>> FindChangeEvent(const ExecutionResult& execution,
                                                         Transcript* transcript) const;
  std::string DescribeOffServes(const FlagState& state,
                                const std::vector<DependentFlag>& dependents) const;

  core::Result<void> ValidatePlan(const Plan& plan) const;
  ExecutionResult Finish(ExecutionResult& result, const ExecutionContext& context,
                         RollbackOutcome outcome, std::string message) const;
  // Reads the state after the change and decides the outcome.
  ExecutionResult Conclude(ExecutionResult& result, const Plan& plan,
                           const ExecutionContext& context) const;

  std::string service_;
  UnleashSettings settings_;
  std::unique_ptr<AdminClient> api_;
  core::Clock& clock_;
};

}  // namespace backout::providers::unleash
