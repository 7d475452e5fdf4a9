#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/domain.h"
#include "core/error.h"
#include "core/time.h"

// The interface every provider implements: how Backout reads and changes what a service runs
// through the team's own deployment tool. The app layer uses only this header and
// providers/registry.h, which creates a concrete provider by kind name.
//
// Contracts shared by every method of every provider:
// - Thread safety: a provider is immutable after creation, and every method may be called from
//   any thread, concurrently. Serializing rollbacks of one service is the job queue's task, not
//   the provider's.
// - Ownership: a provider owns copies of its settings and resolved secrets and borrows the Clock
//   passed to its factory, which must outlive it. Results are plain values owned by the caller.
// - Failure: a method returns core::Error when it could not do its work (the tool is unreachable,
//   a command failed, the input is invalid). Execute and Resume report what happened to the
//   service as an outcome instead, and return core::Error only when the caller's input is wrong
//   and nothing was attempted.
// - Secrets: resolved secret values never appear in a plan, a transcript, an error message or a
//   log line. Transcripts name the variables or headers that carried them.
namespace backout::providers {

// Resolved secret values of one provider binding, by the name the provider's settings give them.
// Providers keep them in memory only and never write them out.
using SecretValues = std::map<std::string, std::string, std::less<>>;

// Outcomes and preconditions are the domain's types, so the app layer stores them as they come.
using core::Precondition;
using core::RollbackOutcome;

// Operations a provider supports. A provider without history reports that here, and
// reconciliation then marks the service as not reconcilable instead of calling History.
struct ProviderCapabilities {
  bool live_state = false;  // ReadLiveState and ReadBack can read the running version
  bool history = false;     // History returns the tool's own record
  bool readiness = false;   // CheckReadiness can evaluate readiness
  bool inventory = false;   // ReadInventory lists the versions the tool keeps
};

// The version running now, by the tool's own account.
struct LiveState {
  std::string version;
  core::Time observed_at;
  nlohmann::json details = nlohmann::json::object();  // tool-specific, never secret
};

// One version the tool keeps and could make live again, such as a release folder.
struct InventoryItem {
  std::string version;
  bool complete = false;                   // the tool marks it completely deployed
  std::optional<core::Time> completed_at;  // when it was marked complete, when known
};

// Every version the tool keeps, read in one pass, and the one live now.
struct Inventory {
  std::string live_version;  // empty when nothing is live
  std::string live_problem;  // why nothing is live, when live_version is empty
  core::Time observed_at;
  std::vector<InventoryItem> items;  // oldest completion first
};

enum class HistoryKind { kDeploy, kRollback };
std::string_view HistoryKindName(HistoryKind kind);

// One deployment or rollback in the tool's own record.
struct HistoryEntry {
  std::string version;
  core::Time time;
  std::string actor;  // empty when the tool does not record one
  HistoryKind kind = HistoryKind::kDeploy;
  nlohmann::json details = nlohmann::json::object();
};

// The exact action a rollback would take, as data. The decision approves `digest`, and the job
// plans again before executing and ends `precondition_failed` when the fresh digest differs.
struct Plan {
  std::string provider_kind;
  std::string service;
  std::string target_version;
  bool noop = false;  // the target is already live: Execute changes nothing, ends skipped_noop
  nlohmann::json action = nlohmann::json::object();  // everything the action depends on
  std::string digest;                                // PlanDigest(action)
  std::string summary;                               // one line for people, not digested
};

// Returns "sha256:" and the lower-case hex SHA-256 of the action's canonical text: compact
// JSON with object members sorted by key and non-ASCII characters escaped. For the plans
// providers build (strings, integers, booleans, ASCII keys) this text equals RFC 8785.
std::string PlanDigest(const nlohmann::json& action);

enum class TranscriptKind {
  kRequest,   // a call made to the tool
  kResponse,  // the tool's reply to a request
  kProcess,   // a local process started, exited or was signalled
  kOutput,    // captured output of a local process
};
std::string_view TranscriptKindName(TranscriptKind kind);

struct TranscriptEntry {
  core::Time time;
  TranscriptKind kind = TranscriptKind::kProcess;
  std::string summary;
  nlohmann::json data = nlohmann::json::object();
};

// Every exchange with the tool during one execution, in order. Providers write it with secrets
// already left out (names only); the HTTP client's recorder redacts headers and fields.
struct Transcript {
  std::vector<TranscriptEntry> entries;

  void Add(core::Time time, TranscriptKind kind, std::string summary,
           nlohmann::json data = nlohmann::json::object());
};

// A running process's identity that survives PID reuse: the PID with the start time the kernel
// recorded for it (field 22 of /proc/PID/stat, in clock ticks since boot).
struct ProcessIdentity {
  int64_t pid = 0;
  uint64_t start_ticks = 0;
};

// Identity of an action that has begun, which the job persists before the provider waits for it.
// Resume needs it after a crash to find the action again.
struct StartedAction {
  core::Time started_at;
  std::optional<ProcessIdentity> process;          // a local child process, if any
  nlohmann::json tool = nlohmann::json::object();  // the tool's operation id, if any
};

// The inputs of one execution besides the plan. Borrowed for the duration of the call.
struct ExecutionContext {
  std::string incident_id;
  std::string executor;
  // The person who approved the plan; empty after break-glass until someone approves afterwards.
  // Providers that write a record into the tool, such as the git provider's revert commit, name
  // the approver there.
  std::string approver;

  // Called once the action has an identity and before the provider waits for it. The job commits
  // `started` in this call. When it returns an error the provider stops the action if it can and
  // reports `failed`. The command provider calls it before the runbook runs, so a runbook never
  // runs without a committed record. A provider whose retry gives the action a new identity (the
  // git provider, when a push is rejected and it makes a new revert commit) calls it again before
  // each attempt, and the latest call replaces the earlier ones.
  std::function<core::Result<void>(const StartedAction& started)> on_started;

  // Requests that the provider stop waiting and stop the action; the command provider then
  // terminates the runbook's process group. An empty token never requests a stop.
  std::stop_token stop;
};

// Result of one execution. `transcript` is complete even when the outcome is a failure.
struct ExecutionResult {
  RollbackOutcome outcome = RollbackOutcome::kFailed;
  std::string message;         // why, written for the person who acts next
  std::string target_version;  // from the plan
  std::string from_version;    // live before, when known
  std::string live_version;    // read back after, when known
  core::Time started_at;
  core::Time finished_at;
  std::optional<StartedAction> started;  // empty when the action never began
  Transcript transcript;
  nlohmann::json details = nlohmann::json::object();  // tool-specific facts (exit status, ids)
};

// Record the job persisted about an execution that was in flight when Backout stopped.
struct ResumeRequest {
  Plan plan;
  std::string idempotency_key;
  std::optional<StartedAction> started;  // empty when on_started was never committed
};

// Is the rolled-back version healthy, by the tool's own measure.
struct Readiness {
  bool ready = false;
  std::string message;
  // Not ready, and the tool says it will not become ready without another change (a crash loop,
  // a deployment that ended failed), so waiting longer is pointless.
  bool failed = false;
};

// The tool's own record of an execution: the rollout history row, the deployment, the audit entry.
struct ToolRecord {
  core::Time time;      // when the tool recorded it, or when it was read if the tool keeps no time
  std::string version;  // the version id the tool reports as live
  nlohmann::json details = nlohmann::json::object();
};

class Provider {
 public:
  virtual ~Provider() = default;

  virtual std::string_view Kind() const = 0;
  virtual std::string_view Service() const = 0;
  virtual ProviderCapabilities Capabilities() const = 0;

  // Reads what runs now. Fails with kFailedPrecondition when the provider cannot read it (see
  // Capabilities) and kUnavailable when the tool did not respond.
  virtual core::Result<LiveState> ReadLiveState() const = 0;

  // Returns the tool's own record of deployments and rollbacks at or after `since`, oldest first.
  // Fails with kFailedPrecondition when the provider cannot read history.
  virtual core::Result<std::vector<HistoryEntry>> History(core::Time since) const = 0;

  // Checks what must hold before a rollback. A failed check is a result, not an error; an error
  // means the checks themselves could not run.
  virtual core::Result<std::vector<Precondition>> Preconditions() const = 0;

  // Builds the exact action that would roll the service back to `target_version`. An empty
  // target requests the tool's own rule where the provider has one (kubernetes: kubectl's
  // second-highest revision), and the plan names the rule; a provider without one fails with
  // kInvalidArgument. Fails with kNotFound when the tool does not have that version or has
  // nothing to roll back to. When the target is already live the plan is a no-op.
  virtual core::Result<Plan> MakePlan(std::string_view target_version) const = 0;

  // Runs `plan`. The idempotency key is the job's, so a retry of the same job passes the same key,
  // and providers whose tool accepts one pass it on. Blocks until the action ends, times out or
  // `context.stop` is requested. Fails, with nothing run, only when the plan belongs to another
  // provider or service, its digest does not match its action, or the key is empty.
  virtual core::Result<ExecutionResult> Execute(const Plan& plan, std::string_view idempotency_key,
                                                const ExecutionContext& context) const = 0;

  // Finishes an execution found in flight after a restart: adopts or waits for the action if it
  // still runs, then reads the live state. Never starts the action again. Ends `interrupted` when
  // it cannot tell whether the action happened. `context.on_started` is not called.
  virtual core::Result<ExecutionResult> Resume(const ResumeRequest& request,
                                               const ExecutionContext& context) const = 0;

  // Reports whether the live version is healthy. Fails with kFailedPrecondition when the provider
  // has no way to tell, which a validation check treats as a failed check.
  virtual core::Result<Readiness> CheckReadiness() const = 0;

  // Reads the tool's own record of `execution` after it ended.
  virtual core::Result<ToolRecord> ReadBack(const ExecutionResult& execution) const = 0;

  // Lists the versions the tool keeps, complete or not, and the live one. Backout's release
  // manifest is reconciled against it. Providers that set Capabilities().inventory override it;
  // the default fails with kFailedPrecondition.
  virtual core::Result<Inventory> ReadInventory() const;
};

// Checks what every provider checks before it runs or resumes a stored plan: the plan was made by
// a provider of kind `kind` for `service`, its digest matches its action, and, when the action
// names a `target_version`, that matches the plan's. Fails with kInvalidArgument naming the
// service and the mismatching values; provider-specific checks (the bound deployment, flag or
// application) follow it in each provider.
core::Result<void> CheckPlanOrigin(const Plan& plan, std::string_view kind,
                                   std::string_view service);

// JSON forms the job uses to persist plans and executions. Parsing rejects missing or mistyped
// fields with a message naming the field.
nlohmann::json ToJson(const Plan& plan);
core::Result<Plan> PlanFromJson(const nlohmann::json& json);
nlohmann::json ToJson(const StartedAction& started);
core::Result<StartedAction> StartedActionFromJson(const nlohmann::json& json);
nlohmann::json ToJson(const Transcript& transcript);
core::Result<Transcript> TranscriptFromJson(const nlohmann::json& json);
nlohmann::json ToJson(const ExecutionResult& result);
core::Result<ExecutionResult> ExecutionResultFromJson(const nlohmann::json& json);
nlohmann::json ToJson(const HistoryEntry& entry);
nlohmann::json ToJson(const ToolRecord& record);

}  // namespace backout::providers
