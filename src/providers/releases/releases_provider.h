#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/error.h"
#include "providers/health_probe.h"
#include "providers/provider.h"
#include "providers/releases/release_tree.h"
#include "providers/releases/releases_settings.h"

namespace backout::providers::releases {

// Rolls a service back by pointing `current` at an earlier release folder, the way Capistrano's
// and Deployer's rollback does, but atomically and with checks (see ReleaseTree). A version is a
// release folder's name. The provider never deletes a release and never writes a relative or
// dangling `current`.
//
// - MakePlan refuses a target that is missing (kNotFound), incomplete, without its marker, or a
//   release folder that is a symbolic link (both kFailedPrecondition). A target that is
//   already live gives a no-op plan. An empty target selects the provider's own rule: the
//   newest complete release completed before the live one, and kNotFound when there is none,
//   such as when only one release exists.
// - Execute checks that `current` still points where the plan saw it, commits its intent
//   through on_started, switches, appends a Capistrano line to revisions.log when the root has
//   one, runs the restart command and reads `current` back.
// - Resume never switches. It reads `current`: at the target means the switch happened, and
//   Resume finishes the remaining steps (log line, restart). Unchanged since the job started
//   means it did not happen, which ends `failed` so that a person starts it again. Anything else
//   ends `interrupted` or `precondition_failed`. Switching again would be harmless to the file
//   system, but after a restart the person who approved it may have decided otherwise: a
//   `current` that someone moved back is their decision, not a step to redo.
// - History has no store to read: it derives deployments from the release folders (each
//   marker's modification time), reads revisions.log when present, and sees only the latest
//   switch of `current` (its status change time). Rollbacks between two existing releases that
//   happened before that switch and are not in revisions.log cannot be seen.
class ReleasesProvider final : public Provider {
 public:
  static core::Result<std::unique_ptr<Provider>> Create(std::string_view service,
                                                        const nlohmann::json& settings,
                                                        const SecretValues& secrets,
                                                        core::Clock& clock);

  std::string_view Kind() const override { return "releases"; }
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
  // Lists every release folder with its marker time, and the release `current` points at.
  core::Result<Inventory> ReadInventory() const override;

 private:
  ReleasesProvider(std::string service, ReleasesSettings settings,
                   std::unique_ptr<HealthProbe> probe, core::Clock& clock);

  // Picks the target under the provider's own rule; kNotFound when there is none.
  core::Result<Release> ChooseDefaultTarget(const CurrentLink& current, std::string& rule) const;
  // The action that switches from `current` to `target`; every field is digested.
  nlohmann::json BuildAction(const Release& target, const CurrentLink& current, bool noop) const;
  core::Result<void> ValidatePlan(const Plan& plan) const;

  // The steps after the switch: the revisions.log line (when `append_log`) and the restart.
  // Returns false, with the outcome set, when the restart failed.
  bool FinishSwitch(const Plan& plan, std::string_view idempotency_key,
                    const ExecutionContext& context, bool append_log,
                    ExecutionResult& result) const;
  // Reads `current` and sets rolled_back when it points at the target, failed otherwise.
  void ConcludeFromLink(ExecutionResult& result, std::string_view what_happened) const;

  std::string service_;
  ReleasesSettings settings_;
  ReleaseTree tree_;
  std::unique_ptr<HealthProbe> probe_;
  core::Clock& clock_;
};

}  // namespace backout::providers::releases
