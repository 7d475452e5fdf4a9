#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/error.h"
#include "providers/command/command_settings.h"
#include "providers/command/process.h"
#include "providers/provider.h"

namespace backout::providers::command {

// Rolls a service back by running an approved runbook: a fixed program and arguments from the
// configuration, run without a shell. The variable inputs arrive as environment variables:
// BACKOUT_SERVICE, BACKOUT_TARGET_VERSION, BACKOUT_INCIDENT_ID, BACKOUT_EXECUTOR,
// BACKOUT_APPROVER (empty for a break-glass rollback) and BACKOUT_IDEMPOTENCY_KEY
// (BACKOUT_HISTORY_SINCE for `history`). Besides those and the secret variables of `env`, a command
// sees only PATH, HOME, LANG, LC_ALL, TZ and TMPDIR from the server's environment, so secrets the
// server itself holds do not leak into runbooks.
//
// The optional `status` command serves ReadLiveState and ReadBack, `history` serves History,
// and `readiness` (or else `status`) serves CheckReadiness. The provider cannot tell whether a
// version exists: the runbook must reject an unknown target itself.
//
// Captured output goes into the transcript with every secret value replaced by
// "[secret NAME]". NOTE: a runbook that prints a secret transformed (encoded, split) defeats this.
class CommandProvider final : public Provider {
 public:
  static core::Result<std::unique_ptr<Provider>> Create(std::string_view service,
                                                        const nlohmann::json& settings,
                                                        const SecretValues& secrets,
                                                        core::Clock& clock);

  std::string_view Kind() const override { return "command"; }
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

 private:
  CommandProvider(std::string service, CommandSettings settings,
                  std::vector<std::string> inherited_env, core::Clock& clock);

  // The action a plan to `target` records, given the live version before (empty if unknown).
  nlohmann::json BuildAction(std::string_view target, std::string_view from_version,
                             bool noop) const;
  core::Result<void> ValidatePlan(const Plan& plan) const;

  // Runs a short command (status, history, readiness) with the check time limit.
  core::Result<ProcessRun> RunCheck(std::string_view name, const std::vector<std::string>& argv,
                                    std::vector<std::string> extra_env, size_t output_max) const;

  // Reads `status` after an execution and sets the outcome from it.
  void ConcludeFromStatus(ExecutionResult& result, std::string_view what_happened) const;

  std::vector<std::string> BaseEnv() const;
  std::string ScrubSecrets(std::string text) const;
  // Returns the output's tail with a cut first line dropped and secrets replaced.
  std::string VisibleText(const CapturedOutput& output) const;
  void AddOutput(Transcript& transcript, std::string_view stream,
                 const CapturedOutput& output) const;

  std::string service_;
  CommandSettings settings_;
  std::vector<std::string> inherited_env_;  // NAME=VALUE, read once at creation
  core::Clock& clock_;
};

}  // namespace backout::providers::command
