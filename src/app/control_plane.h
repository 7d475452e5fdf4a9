#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/access_review.h"
#include "app/caller.h"
#include "app/check_runner.h"
#include "app/config.h"
#include "app/discovery.h"
#include "app/notifications.h"
#include "app/release_manifest.h"
#include "app/requests.h"
#include "app/reviews.h"
#include "app/signals.h"
#include "core/clock.h"
#include "core/domain.h"
#include "core/error.h"
#include "core/policy.h"
#include "evidence/audit.h"
#include "providers/provider.h"
#include "signals/alertmanager.h"
#include "store/store.h"

namespace backout::app {

using ProviderMap = std::map<std::string, std::shared_ptr<const providers::Provider>>;

// The configuration in force: the loaded file, the policy derived from it, and one provider per
// service. Immutable; a reload replaces the whole snapshot.
struct Settings {
  Config config;
  core::Policy policy;
  std::string config_sha256;  // of the file's bytes
  ProviderMap providers;

  // Builds the policy from `config` (the roster plus the bootstrap admin) and records the digest.
  static core::Result<std::shared_ptr<const Settings>> Create(Config config, ProviderMap providers);
};

// The use cases of the control plane. Each one that changes state runs as one store
// transaction holding the policy check, the state change and its ledger entries, so a refused or
// failed step leaves nothing behind. A refusal of an authenticated caller (kPermissionDenied) is
// then written to the ledger in a transaction of its own, as action "access.refused".
//
// Thread-safe: the HTTP threads and the workers call it concurrently. The store and clock must
// outlive it.
class ControlPlane {
 public:
  ControlPlane(store::Store& store, const core::Clock& clock,
               std::shared_ptr<const Settings> settings);

  std::shared_ptr<const Settings> settings() const;
  store::Store& store() const { return store_; }
  const core::Clock& clock() const { return clock_; }

  // ---- Start-up and configuration (identity.cc) -------------------------------------------

  // On a database without users, creates user `admin` with role admin and writes its token to
  // <data_dir>/admin.token with mode 0600. Returns whether it did.
  core::Result<bool> BootstrapAdmin();

  // Records the policy in force, the config file's digest and who loaded it (ledger action
  // "policy.loaded"). Called at start with "system" and on every reload.
  core::Result<void> RecordPolicy(std::string_view loaded_by);

  // Checks that `caller` may reload the configuration (role admin), recording a refusal.
  core::Result<void> AuthorizeReload(const Caller& caller);

  // Replaces the settings and records the new policy.
  core::Result<void> Reload(std::shared_ptr<const Settings> settings, std::string_view loaded_by);

  // ---- Identity (identity.cc) ---------------------------------------------------------------

  // Resolves a bearer token. kUnauthenticated for unknown, revoked or expired tokens and for
  // users that are inactive or no longer on the roster.
  core::Result<Caller> Authenticate(std::string_view token) const;

  core::Result<CreatedUser> CreateUser(const Caller& caller, const NewUser& request);
  core::Result<Page<core::User>> ListUsers(const Caller& caller, const ListOptions& options);
  core::Result<RevokedToken> RevokeToken(const Caller& caller, std::string_view token_id);

  // ---- Services and freezes (services.cc) ---------------------------------------------------

  core::Result<std::vector<ServiceSummary>> ListServices(const Caller& caller);
  // Reads the provider's live state outside any transaction; a provider error is returned in
  // ServiceDetail::live_state, not as a failure.
  core::Result<ServiceDetail> ShowService(const Caller& caller, std::string_view name);
  core::Result<Freeze> GetFreeze(const Caller& caller, std::string_view service);
  core::Result<Freeze> Unfreeze(const Caller& caller, std::string_view service,
                                std::string_view reason);

  // ---- Changes (changes.cc) -----------------------------------------------------------------

  core::Result<core::Change> RecordChange(const Caller& caller, const NewChange& request);
  core::Result<core::Change> VerifyChange(const Caller& caller, std::string_view id,
                                          const ChangeVerification& request);
  core::Result<Page<core::Change>> ListChanges(const Caller& caller,
                                               std::optional<std::string> service,
                                               const ListOptions& options);
  core::Result<core::Change> GetChange(const Caller& caller, std::string_view id);

  // ---- Incidents (incidents.cc) -------------------------------------------------------------

  core::Result<core::Incident> OpenIncident(const Caller& caller, const NewIncident& request);
  core::Result<Page<core::Incident>> ListIncidents(const Caller& caller,
                                                   const IncidentFilter& filter,
                                                   const ListOptions& options);
  core::Result<core::Incident> GetIncident(const Caller& caller, std::string_view id);

  // Computes the impact assessment, requests the provider's preconditions and plan, then
  // stores them with the digest of the assessment's canonical JSON. Provider calls happen before
  // the transaction; the transaction checks the state again.
  core::Result<core::Incident> Assess(const Caller& caller, std::string_view id,
                                      const AssessRequest& request);
  core::Result<core::Incident> Decide(const Caller& caller, std::string_view id,
                                      const DecisionRequest& request);

  // ---- Rollback and validation (rollback_use_cases.cc) -------------------------------------

  // Enqueues the approved plan (or, with `emergency`, a break-glass rollback) as a durable job
  // and freezes the service's deploys.
  core::Result<AcceptedJob> RequestRollback(const Caller& caller, std::string_view id,
                                            const RollbackRequest& request);
  // Settles an interrupted or pending rollback by a person's account of whether it happened.
  core::Result<core::Incident> Confirm(const Caller& caller, std::string_view id,
                                       const ConfirmRequest& request);
  core::Result<AcceptedJob> RequestValidation(const Caller& caller, std::string_view id);
  core::Result<JobView> GetJob(const Caller& caller, std::string_view id);

  // ---- Documentation, review and follow-up (follow_up.cc) -----------------------------------

  core::Result<core::Incident> Document(const Caller& caller, std::string_view id,
                                        const DocumentRequest& request);
  // Stores `markdown`, or, when empty, the built-in template filled from the incident.
  core::Result<std::string> WriteReview(const Caller& caller, std::string_view id,
                                        std::optional<std::string> markdown);
  core::Result<std::string> GetReview(const Caller& caller, std::string_view id);
  // Returns the stored item, or, for an explicit "no action", an item with status not_doing.
  core::Result<core::ActionItem> AddActionItem(const Caller& caller, std::string_view id,
                                               const NewActionItem& request);
  core::Result<std::vector<core::ActionItem>> ListActionItems(const Caller& caller,
                                                              std::string_view id);
  core::Result<core::ActionItem> CompleteActionItem(const Caller& caller,
                                                    std::string_view action_item_id,
                                                    const ActionItemCompletion& request);
  core::Result<core::Incident> Close(const Caller& caller, std::string_view id);

  // ---- Ledger (ledger_queries.cc) -----------------------------------------------------------

  core::Result<nlohmann::json> LedgerCheckpoint(const Caller& caller);
  core::Result<nlohmann::json> LedgerProof(const Caller& caller, uint64_t entry);
  core::Result<nlohmann::json> LedgerConsistency(const Caller& caller, uint64_t from, uint64_t to);

  // ---- Evidence and audit (evidence_use_cases.cc) ------------------------------------------

  // Sets the key that signs evidence manifests, which must be the ledger's checkpoint key. Call
  // it once at start, before any request is served.
  void SetEvidenceSigner(std::shared_ptr<const ledger::Signer> signer);
  // Builds the incident's evidence bundle as tar.gz bytes (docs/evidence.md). Admin, engineering
  // lead or auditor. kFailedPrecondition when no signer was set.
  core::Result<std::string> ExportEvidence(const Caller& caller, std::string_view id);
  // Runs the audit rules and returns the open findings. Admin, engineering lead or auditor.
  core::Result<std::vector<evidence::AuditFinding>> AuditCheck(const Caller& caller,
                                                               const AuditRequest& request);
  // Lists every change and rollback of [from, to), one row each (evidence/population.h). Admin,
  // engineering lead or auditor.
  core::Result<nlohmann::json> Population(const Caller& caller, std::optional<core::Time> from,
                                          std::optional<core::Time> to);

  // ---- Validation checks (check_confirmations.cc) -------------------------------------------

  // Records that the caller ran the user-level test of `manual` check `check` of incident `id`,
  // with its result, note and optional attachment. The caller must be on the roster as an
  // engineering lead or devops engineer, and among the check's `confirmers` when it lists any.
  // A validation running now or started later counts it when it is newer than the rollback.
  core::Result<nlohmann::json> ConfirmCheck(const Caller& caller, std::string_view id,
                                            std::string_view check,
                                            const CheckConfirmationRequest& request);

  // ---- Helpers shared by the use cases and workers -----------------------------------------

  // Runs `body` in one write transaction. When the result is kPermissionDenied and the caller
  // is a user, records the refusal of `action` on `subject` in the ledger.
  core::Result<void> Write(const Caller& caller, std::string_view action, std::string_view subject,
                           const store::TransactionBody& body);

  // Runs `body` in a read transaction, recording refusals as Write does.
  core::Result<void> Read(const Caller& caller, std::string_view action, std::string_view subject,
                          const store::TransactionBody& body);

  // ---- Reconciliation and notifications (reconciliation.cc, discovered_rollbacks.cc,
  // notifications.cc) ------------------------------------------------------------------------

  // Records for every service whether it is reconcilable, and enqueues a reconciliation job for
  // each reconcilable service that has none queued. Called at start and after a reload.
  core::Result<void> ScheduleReconciliation();

  // Reads the provider's history of `service` and records what Backout did not: unrecorded
  // deployments as changes with source discovered, moves back to an earlier version as discovered
  // rollbacks. Engineering lead or devops engineer. kFailedPrecondition when the provider cannot
  // read history.
  core::Result<ReconcileReport> Reconcile(const Caller& caller, std::string_view service);
  // The same run on behalf of the server's own reconciliation job, without a caller to check.
  core::Result<ReconcileReport> ReconcileAsSystem(std::string_view service);

  core::Result<Page<DiscoveredRollback>> ListDiscoveredRollbacks(
      const Caller& caller, const DiscoveredRollbackFilter& filter, const ListOptions& options);
  core::Result<DiscoveredRollback> GetDiscoveredRollback(const Caller& caller, std::string_view id);
  // Links an open discovered rollback to an incident of the same service, which records it on
  // the incident's timeline. Engineering lead or devops engineer.
  core::Result<DiscoveredRollback> LinkDiscoveredRollback(const Caller& caller, std::string_view id,
                                                          std::string_view incident_id);
  // Closes an open discovered rollback with the reason it happened. Engineering lead or devops
  // engineer.
  core::Result<DiscoveredRollback> DocumentDiscoveredRollback(const Caller& caller,
                                                              std::string_view id,
                                                              std::string_view reason);
  // The service's changes, discovered rollbacks and incidents, oldest first, as JSON items with
  // time, kind, id and a one-line summary.
  core::Result<nlohmann::json> ServiceTimeline(const Caller& caller, std::string_view service);
  // The reconciliation state of a configured service, with `reconcilable` (see
  // kReconciliationKind). Inside the caller's transaction.
  core::Result<nlohmann::json> ReconciliationStatus(store::Transaction& tx,
                                                    std::string_view service) const;

  // Deliveries of webhook notifications, or only the dead-lettered ones.
  core::Result<Page<Notification>> ListNotifications(const Caller& caller, bool failed_only,
                                                     const ListOptions& options);

  // ---- Detection: signals, correlation and the automatic policy (signals.cc) ---------------

  // Checks a webhook request against `signals.alertmanager`: the bearer token from the
  // Authorization header, or the HMAC-SHA256 signature ("sha256=HEX") of `body`. kNotFound
  // when the receiver is not configured, kUnauthenticated when neither matches, kUnavailable
  // when the secret to check against cannot be read (the message names its key and path, so it
  // belongs in the server log and not in a response).
  core::Result<void> AuthenticateSignalSender(std::string_view authorization,
                                              std::string_view signature,
                                              std::string_view body) const;

  // Commits every alert of one webhook in one transaction, then returns; correlation runs
  // later in a signal_correlation job. An alert already recorded (same fingerprint and
  // startsAt) is counted as a duplicate and changes nothing; a resolved alert closes its signal.
  core::Result<SignalIntake> IngestAlertmanager(const signals::WebhookPayload& payload);
  // The two steps of IngestAlertmanager for the receiver's group commit. PrepareAlertmanager
  // builds the records on the request's thread, outside any transaction. The batch commits several
  // prepared deliveries in one transaction, moving their bodies out, and returns one result per
  // delivery in order, or one error for all of them.
  PreparedDelivery PrepareAlertmanager(const signals::WebhookPayload& payload) const;
  core::Result<std::vector<SignalIntake>> IngestAlertmanagerBatch(
      const std::vector<PreparedDelivery*>& deliveries);

  // Runs one leased signal_correlation job: attributes each signal, opens or joins its incident
  // and applies the service's automatic policy. Completes or fails the job itself.
  void RunSignalCorrelation(const store::JobLease& lease);

  // Evaluates the Prometheus rules and HTTP probes of every service that has a change within its
  // watch window, commits the signals that fire and enqueues their correlation. Returns how
  // many new signals fired.
  core::Result<int> EvaluateDetection();

  core::Result<Page<SignalRecord>> ListSignals(const Caller& caller,
                                               std::optional<std::string> service,
                                               const ListOptions& options);

  // ---- Release manifest (release_manifest_use_cases.cc, reconciliation.cc) -------------------

  // The release manifest of `service` with the folder's state read now: each release's status,
  // when it changed and which change or incident set it. Any role that may read. kNotFound for an
  // unknown service, kFailedPrecondition when its provider keeps no inventory of versions.
  core::Result<nlohmann::json> ListReleases(const Caller& caller, std::string_view service);

  // Reads the tool's inventory of `service` and corrects its release manifest where the two
  // disagree, in one transaction with the ledger entries. Runs in every reconciliation of the
  // service and at start.
  core::Result<ManifestReconciliation> ReconcileReleaseManifest(std::string_view service);

  // ---- Reviews, action item reports and access reviews (follow_up.cc, access_review.cc) ----

  // Stores the review's Markdown (request.markdown, or the template named by `review.template`,
  // or the built-in one, filled from the incident) and sets its owner. The first write makes it
  // a draft owned by request.owner or the caller; replacing the text of a completed review moves
  // it back to in_review. Engineering lead, while the incident is documenting.
  core::Result<ReviewView> SaveReview(const Caller& caller, std::string_view id,
                                      const ReviewWrite& request);
  // Changes the review's status or owner, each change in the ledger. The incident must be
  // documenting or closed; an engineering lead or the review's owner may. Completing needs a
  // stored review with an owner.
  core::Result<ReviewView> UpdateReview(const Caller& caller, std::string_view id,
                                        const ReviewUpdate& request);
  core::Result<ReviewView> ShowReview(const Caller& caller, std::string_view id);
  // The review rendered to a self-contained HTML page by cmark-gfm.
  core::Result<std::string> ReviewHtml(const Caller& caller, std::string_view id);
  // Action items of every incident, filtered, ordered by due date, with days overdue as of now.
  core::Result<std::vector<ActionItemRow>> ListAllActionItems(const Caller& caller,
                                                              const ActionItemFilter& filter);
  // Builds the access review from the stored users and tokens and the roster in force. Admin,
  // engineering lead or auditor.
  core::Result<AccessReviewReport> AccessReview(const Caller& caller);
  // Builds the access review and records an attestation of it (who, when, its SHA-256) in the
  // ledger as "access_review.attested". Admin or engineering lead.
  core::Result<AccessAttestation> AttestAccessReview(const Caller& caller);

  // ---- Period evidence (evidence_use_cases.cc) ----------------------------------------------

  // Builds the evidence bundle of the period [from, to) as tar.gz bytes: its incidents, its
  // population, the policies in force and a consistency proof (docs/evidence.md). Admin,
  // engineering lead or auditor. kFailedPrecondition when no signer was set.
  core::Result<std::string> ExportPeriodEvidence(const Caller& caller, core::Time from,
                                                 core::Time to);
  // Each service's provider binding (service, environment, provider kind and settings, which hold
  // secrets only as references), as "policy.loaded" records it for period evidence.
  static nlohmann::json ProviderBindingsOf(const Config& config);

 private:
  core::Result<void> RecordRefusal(const Caller& caller, std::string_view action,
                                   std::string_view subject, const core::Error& error);

  store::Store& store_;
  const core::Clock& clock_;
  mutable std::mutex settings_mutex_;
  std::shared_ptr<const Settings> settings_;
  std::shared_ptr<const ledger::Signer> evidence_signer_;  // set once at start
};

}  // namespace backout::app
