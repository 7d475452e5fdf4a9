// Reconciliation: comparing each tool's own history with Backout's records, and its job.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "app/control_plane.h"
#include "app/history_key.h"
#include "app/job_runner.h"
#include "app/records.h"
#include "app/release_manifest.h"
#include "app/try.h"

namespace backout::app {
namespace {

using nlohmann::json;

// A tool entry matches a recorded change of the same version, or one of Backout's own rollbacks
// to that version, when their times are at most this far apart. CI often records a change a few
// minutes before or after the tool logs the deployment.
constexpr core::Duration kMatchWindow = std::chrono::minutes(15);

// Each run reads history from this long before the newest entry already reconciled, so an entry
// the tool writes late is still read. Entries read twice are recognised by their key.
constexpr core::Duration kHistoryOverlap = std::chrono::hours(1);

core::Duration Distance(core::Time a, core::Time b) { return a > b ? a - b : b - a; }

// A version that was live from `time` on, by Backout's records.
struct VersionEvent {
  core::Time time;
  std::string version;
  std::string record;  // the change, "job/<id>" of Backout's rollback, or the discovered rollback
};

// Backout's records of one service, read inside the reconciliation transaction.
struct ServiceRecords {
  std::vector<core::Change> changes;
  std::vector<core::Rollback> rollbacks;  // of the service's incidents
  std::vector<VersionEvent> events;       // changes, rollbacks and discovered rollbacks
};

template <typename Visit>
core::Result<void> ForEachObject(store::Transaction& tx, std::string_view kind,
                                 const std::string& service, Visit visit) {
  std::string after;
  while (true) {
    BACKOUT_TRY(auto objects,
                tx.List(store::ListQuery{
                    .kind = std::string(kind), .service = service, .after_id = after}));
    for (const store::Object& object : objects) BACKOUT_CHECK(visit(object));
    if (objects.size() < 1000) return {};
    after = objects.back().id;
  }
}

core::Result<ServiceRecords> LoadRecords(store::Transaction& tx, const std::string& service) {
  ServiceRecords records;
  BACKOUT_CHECK(ForEachObject(
      tx, kChangeKind, service, [&](const store::Object& object) -> core::Result<void> {
        BACKOUT_TRY(core::Change change, core::FromJson<core::Change>(object.body));
        records.events.push_back({change.time, change.version, change.id});
        records.changes.push_back(std::move(change));
        return {};
      }));
  BACKOUT_CHECK(ForEachObject(
      tx, kIncidentKind, service, [&](const store::Object& object) -> core::Result<void> {
        BACKOUT_TRY(core::Incident incident, core::FromJson<core::Incident>(object.body));
        for (core::Rollback& rollback : incident.rollbacks) {
          if (rollback.outcome == core::RollbackOutcome::kRolledBack) {
            records.events.push_back({rollback.finished_at.value_or(rollback.requested_at),
                                      rollback.target_version,
                                      fmt::format("job/{}", rollback.job_id)});
          }
          records.rollbacks.push_back(std::move(rollback));
        }
        return {};
      }));
  BACKOUT_CHECK(ForEachObject(
      tx, kDiscoveredRollbackKind, service, [&](const store::Object& object) -> core::Result<void> {
        BACKOUT_TRY(DiscoveredRollback found, DiscoveredRollbackFromJson(object.body));
        records.events.push_back({found.time, found.version, found.id});
        return {};
      }));
  return records;
}

// Returns whether `entry` takes its time from the completion marker of a release that is not
// `live`, while Backout already has a record that made its version live. Release folders are
// never reused, so such an entry is that deployment with a refreshed marker (a `touch`), not a
// switch of `current`. The live release's marker still counts: it may have appeared after a hand
// switch to the folder.
bool RefreshedMarker(const ServiceRecords& records, const providers::HistoryEntry& entry,
                     std::string_view live) {
  if (entry.version == live || !entry.details.is_object() ||
      entry.details.value("time_source", "") != "marker modification time") {
    return false;
  }
  return std::ranges::any_of(
      records.events, [&](const VersionEvent& event) { return event.version == entry.version; });
}

// Returns whether Backout's records made a version other than `version` live strictly between
// `a` and `b`.
bool OtherVersionLiveBetween(const ServiceRecords& records, std::string_view version, core::Time a,
                             core::Time b) {
  const auto [first, last] = std::minmax(a, b);
  return std::ranges::any_of(records.events, [&](const VersionEvent& event) {
    return event.version != version && event.time > first && event.time < last;
  });
}

// Returns the id of the recorded change or the job of Backout's rollback that `entry` is, or ""
// when Backout has no record of it. An entry the tool marks as a rollback matches only one of
// Backout's rollbacks: a switch back to a version soon after its deploy is not that deploy. An
// entry matches a change or one of Backout's rollbacks only when no other version was made live
// between the two. So a switch forward again soon after a rollback is not the first deploy, and
// a hand switch back to a rollback's target after a switch away is not that rollback. A marker
// refreshed by `touch` is not the deploy it once marked.
std::string MatchRecord(const ServiceRecords& records, const providers::HistoryEntry& entry) {
  for (const core::Change& change : records.changes) {
    if (entry.kind == providers::HistoryKind::kRollback) break;
    if (change.version != entry.version || Distance(change.time, entry.time) > kMatchWindow) {
      continue;
    }
    if (OtherVersionLiveBetween(records, entry.version, change.time, entry.time)) continue;
    return change.id;
  }
  for (const core::Rollback& rollback : records.rollbacks) {
    if (rollback.target_version != entry.version) continue;
    const core::Time end = rollback.finished_at.value_or(entry.time);
    if (entry.time + kMatchWindow < rollback.requested_at || entry.time > end + kMatchWindow) {
      continue;
    }
    if (OtherVersionLiveBetween(records, entry.version,
                                rollback.finished_at.value_or(rollback.requested_at), entry.time)) {
      continue;
    }
    return fmt::format("job/{}", rollback.job_id);
  }
  return "";
}

// The versions live before `time`: the one live just before it, and every other one live at some
// earlier point.
struct Before {
  std::string previous;
  std::string previous_record;  // the record that made `previous` live
  std::set<std::string> earlier;
};

Before VersionsBefore(const std::vector<VersionEvent>& events, core::Time time) {
  std::vector<const VersionEvent*> prior;
  for (const VersionEvent& event : events) {
    if (event.time < time) prior.push_back(&event);
  }
  std::ranges::stable_sort(prior, {}, &VersionEvent::time);
  Before before;
  if (prior.empty()) return before;
  before.previous = prior.back()->version;
  before.previous_record = prior.back()->record;
  for (const VersionEvent* event : prior) {
    if (event->version != before.previous) before.earlier.insert(event->version);
  }
  return before;
}

// The direction of a switch of `current` by the folder's order of releases.
struct SwitchDirection {
  std::optional<bool> older;  // the switch moved to an older release; nullopt when unknown
  std::string from;           // the release live before the switch
};

// Returns the direction of `entry` when it is a switch of `current` that the provider inferred
// from the link alone (`details.discovered`). The release live before it is the manifest's live
// release, which Backout's events and the last reading of the folder keep. A server start whose
// history read failed reconciles the manifest alone, so when the manifest already shows the
// switch, the release live before is the one Backout's records show live before the entry.
SwitchDirection DirectionOfSwitch(const providers::HistoryEntry& entry, const Before& before,
                                  const providers::Inventory& inventory,
                                  const std::optional<ReleaseManifest>& manifest) {
  SwitchDirection direction;
  if (!InferredFromLink(entry)) return direction;
  direction.from = before.previous;
  if (manifest && !manifest->live_version.empty() && manifest->live_version != entry.version) {
    direction.from = manifest->live_version;
  }
  direction.older =
      ReleasedBefore(inventory, manifest ? &*manifest : nullptr, entry.version, direction.from);
  return direction;
}

store::Object NewObject(std::string_view kind, std::string id, std::string service, json body) {
  return store::Object{.kind = std::string(kind),
                       .id = std::move(id),
                       .service = std::move(service),
                       .body = std::move(body)};
}

// Loads the service's reconciliation object, or a fresh one.
core::Result<store::Object> LoadState(store::Transaction& tx, std::string_view service) {
  BACKOUT_TRY(auto object, tx.Get(kReconciliationKind, service));
  if (object) return *object;
  return NewObject(kReconciliationKind, std::string(service), std::string(service),
                   {{"service", service}, {"runs", 0}});
}

// Returns whether the service's provider can read history, and sets `reason` when it cannot.
bool CanReconcile(const Settings& settings, const ServiceConfig& service, std::string& reason) {
  auto provider = settings.providers.find(service.name);
  if (provider == settings.providers.end()) {
    reason = "no provider could be created for the service";
    return false;
  }
  if (!provider->second->Capabilities().history) {
    reason = fmt::format(
        "the {} provider of this service cannot read the tool's history, so rollbacks done "
        "outside Backout cannot be discovered",
        service.provider.kind);
    return false;
  }
  reason.clear();
  return true;
}

void MarkReconcilable(json& body, const ServiceConfig& service, bool reconcilable,
                      const std::string& reason) {
  body["service"] = service.name;
  body["provider"] = service.provider.kind;
  body["reconcilable"] = reconcilable;
  body["reason"] = reason;
  body["interval_seconds"] =
      std::chrono::duration_cast<std::chrono::seconds>(service.reconcile_interval).count();
}

// Returns whether job `id` (decimal text) is still queued or leased.
core::Result<bool> JobPending(store::Transaction& tx, const json& id) {
  if (!id.is_string() || id.get<std::string>().empty()) return false;
  BACKOUT_TRY(auto job, tx.GetJob(std::stoll(id.get<std::string>())));
  return job && (job->state == store::JobState::kQueued || job->state == store::JobState::kLeased);
}

// Write attempts of one step when concurrent writers of the same objects (another replica, the
// job and a manual run) keep conflicting with it.
constexpr int kConflictAttempts = 8;

// Returns whether a write lost a race with a concurrent writer: an optimistic version check
// failed, or another transaction inserted the same object first.
bool LostRace(const core::Error& error) {
  return error.code == core::ErrorCode::kConflict || error.code == core::ErrorCode::kAlreadyExists;
}

// Waits a little longer after each conflict, so concurrent writers are less likely to collide
// again.
void PauseAfterConflict(int attempt) {
  std::this_thread::sleep_for(std::chrono::milliseconds(10 * attempt));
}

// Runs `body` in a write transaction, again after each conflict with a concurrent writer, up to
// kConflictAttempts times. `body` must start from scratch on each run.
core::Result<void> WriteRetryingConflicts(store::Store& store, const store::TransactionBody& body) {
  core::Result<void> written;
  for (int attempt = 1; attempt <= kConflictAttempts; ++attempt) {
    written = store.Write(body);
    if (written || !LostRace(written.error())) break;
    PauseAfterConflict(attempt);
  }
  return written;
}

}  // namespace

core::Result<void> ControlPlane::ScheduleReconciliation() {
  const auto current = settings();
  const core::Time now = clock_.Now();
  for (const ServiceConfig& service : current->config.services) {
    std::string reason;
    const bool reconcilable = CanReconcile(*current, service, reason);
    bool enqueued = false;
    // Replicas starting together race for the same object. The one that loses conflicts and,
    // when it runs again, finds the winner's job pending.
    core::Result<void> written;
    for (int attempt = 1; attempt <= kConflictAttempts; ++attempt) {
      enqueued = false;
      written = store_.Write([&](store::Transaction& tx) -> core::Result<void> {
        BACKOUT_TRY(store::Object state, LoadState(tx, service.name));
        MarkReconcilable(state.body, service, reconcilable, reason);
        BACKOUT_TRY(bool pending, JobPending(tx, state.body.value("job_id", json(""))));
        if (reconcilable && !pending) {
          BACKOUT_TRY(int64_t job,
                      tx.EnqueueJob(kReconcileJob, fmt::format("service/{}", service.name),
                                    {{"service", service.name}}, now));
          state.body["job_id"] = std::to_string(job);
          enqueued = true;
        }
        return tx.Put(state);
      });
      if (written || !LostRace(written.error())) break;
      PauseAfterConflict(attempt);
    }
    BACKOUT_CHECK(written);
    if (!reconcilable) {
      spdlog::warn("component=reconcile service={} event=not_reconcilable reason=\"{}\"",
                   service.name, reason);
    } else if (enqueued) {
      spdlog::info(
          "component=reconcile service={} event=scheduled interval_s={}", service.name,
          std::chrono::duration_cast<std::chrono::seconds>(service.reconcile_interval).count());
    }

    // At start the manifest is corrected at once, before any job runs: a switch whose store
    // write was lost when the server stopped must not steer the next assessment. The run reads
    // the tool's history before the folder, as every reconcile job does, so a switch first seen
    // at a start gets the statuses and reasons a running server records. When the history cannot
    // be read, the manifest is still corrected against the folder alone.
    if (KeepsReleaseManifest(*current, service.name)) {
      bool reconciled = false;
      if (reconcilable) {
        auto report = ReconcileAsSystem(service.name);
        reconciled = report.has_value();
        if (!report) {
          spdlog::warn("component=reconcile service={} event=start_reconcile_failed error=\"{}\"",
                       service.name, report.error().message);
        }
      }
      if (!reconciled) {
        if (auto manifest = ReconcileReleaseManifest(service.name); !manifest) {
          spdlog::warn("component=reconcile service={} event=manifest_not_reconciled error=\"{}\"",
                       service.name, manifest.error().message);
        }
      }
    }
  }
  return {};
}

core::Result<ReconcileReport> ControlPlane::Reconcile(const Caller& caller,
                                                      std::string_view service) {
  const auto current = settings();
  BACKOUT_CHECK(Read(caller, "service.reconcile", fmt::format("service/{}", service),
                     [&](store::Transaction&) -> core::Result<void> {
                       return core::CheckOperation(caller.user, core::Operation::kReconcileService,
                                                   current->policy);
                     }));
  BACKOUT_TRY(ReconcileReport report, ReconcileAsSystem(service));
  if (!report.reconcilable) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "service {} is not reconcilable: {}", service, report.reason);
  }
  return report;
}

core::Result<ReconcileReport> ControlPlane::ReconcileAsSystem(std::string_view name) {
  const auto current = settings();
  const ServiceConfig* service = current->config.FindService(name);
  if (service == nullptr) {
    return core::MakeError(core::ErrorCode::kNotFound,
                           "service {} is not in the configuration; `backout service list` shows "
                           "the configured services",
                           name);
  }
  ReconcileReport report{.service = service->name};
  report.reconcilable = CanReconcile(*current, *service, report.reason);

  // Step 1: where the last run got to. A service that cannot be reconciled is only marked.
  std::optional<core::Time> watermark;
  BACKOUT_CHECK(WriteRetryingConflicts(store_, [&](store::Transaction& tx) -> core::Result<void> {
    BACKOUT_TRY(store::Object state, LoadState(tx, service->name));
    if (auto it = state.body.find("watermark"); it != state.body.end() && it->is_string()) {
      BACKOUT_TRY(watermark, core::ParseTime(it->get<std::string>()));
    }
    if (report.reconcilable && state.body.value("reconcilable", false)) return {};
    MarkReconcilable(state.body, *service, report.reconcilable, report.reason);
    return tx.Put(state);
  }));
  if (!report.reconcilable) return report;

  // Step 2: the tool's history, outside any transaction.
  const auto& provider = current->providers.at(service->name);
  const core::Time since = watermark ? *watermark - kHistoryOverlap : core::Time{};
  auto history = provider->History(since);
  const core::Time now = clock_.Now();
  if (!history) {
    (void)store_.Write([&](store::Transaction& tx) -> core::Result<void> {
      BACKOUT_TRY(store::Object state, LoadState(tx, service->name));
      state.body["last_run_at"] = core::FormatTime(now);
      state.body["last_error"] = history.error().message;
      return tx.Put(state);
    });
    spdlog::warn("component=reconcile service={} event=history_failed error=\"{}\"", service->name,
                 history.error().message);
    return std::unexpected(history.error());
  }
  report.entries_read = static_cast<int>(history->size());

  // For a service with a release manifest, the folder's order of releases decides the direction
  // of a switch of `current` that the provider inferred from the link alone. Without it, such a
  // switch is classified by the tool's mark and by version order.
  std::optional<providers::Inventory> inventory;
  if (KeepsReleaseManifest(*current, service->name)) {
    if (auto read = provider->ReadInventory(); read) {
      inventory = *std::move(read);
    } else {
      spdlog::warn("component=reconcile service={} event=inventory_failed error=\"{}\"",
                   service->name, read.error().message);
    }
  }

  // Step 3: every entry not reconciled before, in one transaction with its ledger entries and
  // notifications. A concurrent run conflicts on the entry keys and commits nothing, so the
  // transaction runs again and then finds those entries known.
  const Caller system = SystemCaller();
  const ReconcileReport empty_report = report;
  const std::optional<core::Time> read_watermark = watermark;
  core::Result<void> written;
  for (int attempt = 1; attempt <= kConflictAttempts; ++attempt) {
    report = empty_report;
    watermark = read_watermark;
    written = store_.Write([&](store::Transaction& tx) -> core::Result<void> {
      BACKOUT_TRY(ServiceRecords records, LoadRecords(tx, service->name));
      BACKOUT_TRY(store::Object state, LoadState(tx, service->name));
      std::optional<ReleaseManifest> manifest;
      if (inventory) {
        BACKOUT_TRY(manifest, LoadReleaseManifest(tx, service->name));
      }
      // The live release by the folder, or by Backout's records when the folder was not read.
      std::string live = inventory ? inventory->live_version : "";
      if (!inventory) {
        const Before latest = VersionsBefore(records.events, core::Time::max());
        live = latest.previous;
      }
      for (const providers::HistoryEntry& entry : *history) {
        const std::string key = HistoryEntryKey(service->name, entry);
        BACKOUT_TRY(auto known, tx.Get(kHistoryEntryKind, key));
        if (known) {
          ++report.already_known;
          continue;
        }
        json marker = {{"service", service->name},
                       {"version", entry.version},
                       {"time", core::FormatTime(entry.time)},
                       {"actor", entry.actor},
                       {"kind", providers::HistoryKindName(entry.kind)},
                       {"reconciled_at", core::FormatTime(now)}};

        const Before before = VersionsBefore(records.events, entry.time);
        const SwitchDirection direction =
            inventory ? DirectionOfSwitch(entry, before, *inventory, manifest) : SwitchDirection{};
        if (RefreshedMarker(records, entry, live)) {
          // Stored so that later runs skip it, with no record: the marker's time moved, but
          // `current` did not.
          marker["result"] = "marker_refreshed";
        } else if (std::string record = MatchRecord(records, entry); !record.empty()) {
          ++report.matched;
          marker["result"] = "matched";
          marker["record"] = record;
        } else if (!direction.older.value_or(false) && before.previous == entry.version &&
                   (entry.kind == providers::HistoryKind::kRollback || InferredFromLink(entry))) {
          // Backout's records already show this version live, so the entry names no version it
          // moved away from: the tool saw the link replaced by one to the same release (the
          // deploy's own switch, read from the link), or an earlier switch away was never read.
          // A switch from a version to itself is neither a rollback nor a deployment, so the
          // entry counts as the record that made the version live.
          ++report.matched;
          marker["result"] = "matched";
          marker["record"] = before.previous_record;
        } else {
          std::string from = before.previous;
          std::string evidence;  // set when the entry is a discovered rollback
          if (direction.older) {
            from = direction.from;
            if (*direction.older) evidence = "release order";
          } else if (entry.kind == providers::HistoryKind::kRollback) {
            evidence = "tool";
          } else if (before.earlier.contains(entry.version)) {
            evidence = "version order";
          }
          if (!evidence.empty()) {
            BACKOUT_TRY(int64_t number, tx.NextNumber(kDiscoveredRollbackKind));
            DiscoveredRollback found{.id = fmt::format("DRB-{}", number),
                                     .service = service->name,
                                     .environment = service->environment,
                                     .provider = service->provider.kind,
                                     .version = entry.version,
                                     .from_version = from,
                                     .time = entry.time,
                                     .actor = entry.actor,
                                     .evidence = evidence,
                                     .details = entry.details,
                                     .discovered_at = now};
            store::Object object =
                NewObject(kDiscoveredRollbackKind, found.id, found.service, ToJson(found));
            BACKOUT_CHECK(tx.Put(object));
            const std::string subject = fmt::format("discovered_rollback/{}", found.id);
            BACKOUT_CHECK(Ledger(tx, system, "rollback.discovered", subject, ToJson(found)));
            BACKOUT_CHECK(EnqueueNotification(
                tx, current->config, now,
                NotificationEvent{
                    .event = "rollback.discovered",
                    .subject = subject,
                    .service = found.service,
                    .summary = fmt::format(
                        "{} was rolled back outside Backout to {} by {} at {} ({}); link it to an "
                        "incident or document it",
                        found.service, found.version,
                        found.actor.empty() ? "an unknown actor" : found.actor,
                        core::FormatTime(found.time), found.id),
                    .data = ToJson(found)}));
            // The manifest names this record as the reason, not "without a record", when the
            // folder still shows the switch.
            if (inventory && entry.version == inventory->live_version) {
              BACKOUT_CHECK(NoteRollbackDiscovered(tx, *current, system, found.service, found.id,
                                                   found.version, found.from_version, found.time));
            }
            records.events.push_back({found.time, found.version, found.id});
            report.discovered_rollbacks.push_back(found.id);
            marker["result"] = "discovered_rollback";
            marker["record"] = found.id;
          } else {
            BACKOUT_TRY(int64_t number, tx.NextNumber(kChangeKind));
            core::Change change{.id = fmt::format("CHG-{}", number),
                                .service = service->name,
                                .environment = service->environment,
                                .version = entry.version,
                                .previous_version = from,
                                .deployer = entry.actor,
                                .time = entry.time,
                                .source = core::ChangeSource::kDiscovered,
                                .recorded_by = system.name()};
            BACKOUT_TRY(auto stored, Insert(tx, kChangeKind, change.id, change.service, change));
            BACKOUT_CHECK(Ledger(tx, system, "change.discovered",
                                 fmt::format("change/{}", change.id), json(change)));
            BACKOUT_CHECK(NoteReleaseDeployed(tx, *current, system, change));
            // As for a discovered rollback, the manifest names this record as the reason when
            // the folder still shows the switch.
            if (inventory && entry.version == inventory->live_version) {
              BACKOUT_CHECK(NoteDeploymentDiscovered(tx, *current, system, change));
            }
            records.events.push_back({change.time, change.version, change.id});
            records.changes.push_back(change);
            report.discovered_changes.push_back(change.id);
            marker["result"] = "discovered_change";
            marker["record"] = change.id;
          }
        }
        store::Object entry_object = NewObject(kHistoryEntryKind, key, service->name, marker);
        BACKOUT_CHECK(tx.Put(entry_object));
        if (!watermark || entry.time > *watermark) watermark = entry.time;
      }

      MarkReconcilable(state.body, *service, true, "");
      state.body["last_run_at"] = core::FormatTime(now);
      state.body["last_error"] = "";
      state.body["runs"] = state.body.value("runs", 0) + 1;
      if (watermark) state.body["watermark"] = core::FormatTime(*watermark);
      return tx.Put(state);
    });
    if (written || !LostRace(written.error())) break;
    PauseAfterConflict(attempt);
  }
  BACKOUT_CHECK(written);

  spdlog::info(
      "component=reconcile service={} event=reconciled entries={} known={} matched={} "
      "discovered_changes={} discovered_rollbacks={}",
      service->name, report.entries_read, report.already_known, report.matched,
      report.discovered_changes.size(), report.discovered_rollbacks.size());

  // Step 4: the release manifest against the folder, after the history so that a change
  // discovered above is already in the manifest. A failure here leaves the history's records.
  if (KeepsReleaseManifest(*current, service->name)) {
    if (auto manifest = ReconcileReleaseManifest(service->name); !manifest) {
      spdlog::warn("component=reconcile service={} event=manifest_not_reconciled error=\"{}\"",
                   service->name, manifest.error().message);
    } else {
      report.live_problem = manifest->live_problem;
    }
  }
  return report;
}

core::Result<ManifestReconciliation> ControlPlane::ReconcileReleaseManifest(std::string_view name) {
  const auto current = settings();
  auto provider = current->providers.find(std::string(name));
  if (provider == current->providers.end() || !KeepsReleaseManifest(*current, name)) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "service {} keeps no release manifest: its provider does not list the "
                           "versions it keeps",
                           name);
  }

  // The folder first, outside any transaction; then the comparison and the corrections.
  BACKOUT_TRY(providers::Inventory inventory, provider->second->ReadInventory());
  const core::Time now = clock_.Now();
  const Caller system = SystemCaller();
  ManifestReconciliation report;
  BACKOUT_CHECK(WriteRetryingConflicts(store_, [&](store::Transaction& tx) -> core::Result<void> {
    BACKOUT_TRY(report, app::ReconcileReleaseManifest(tx, system, name, inventory, now));
    return {};
  }));
  if (report.corrections.empty()) {
    spdlog::debug("component=reconcile service={} event=manifest_agrees live={}", name,
                  report.live_version);
  } else {
    spdlog::warn(
        "component=reconcile service={} event=manifest_corrected live={} corrections={} "
        "first=\"{}\"",
        name, report.live_version, report.corrections.size(), report.corrections.front());
  }
  return report;
}

core::Result<json> ControlPlane::ReconciliationStatus(store::Transaction& tx,
                                                      std::string_view name) const {
  const auto current = settings();
  const ServiceConfig* service = current->config.FindService(name);
  if (service == nullptr) {
    return core::MakeError(core::ErrorCode::kNotFound, "service {} is not in the configuration",
                           name);
  }
  std::string reason;
  const bool reconcilable = CanReconcile(*current, *service, reason);
  BACKOUT_TRY(auto stored, tx.Get(kReconciliationKind, name));
  json status = stored ? stored->body : json::object();
  MarkReconcilable(status, *service, reconcilable, reason);
  for (const char* key : {"last_run_at", "last_error", "watermark", "job_id"}) {
    if (!status.contains(key)) status[key] = nullptr;
  }
  if (!status.contains("runs")) status["runs"] = 0;
  return status;
}

void JobRunner::RunReconcile(const store::JobLease& lease) {
  const int64_t job_id = lease.job.id;
  const int64_t token = lease.fencing_token;
  const std::string service = lease.job.payload.value("service", "");

  auto report = plane_.ReconcileAsSystem(service);
  if (!report) {
    spdlog::warn("component=reconcile job={} service={} event=run_failed error=\"{}\"", job_id,
                 service, report.error().message);
  }

  // The next run is enqueued in the transaction that ends this one, so exactly one job per
  // service stays queued across restarts.
  const auto current = plane_.settings();
  const ServiceConfig* config = current->config.FindService(service);
  const core::Time now = plane_.clock().Now();
  auto written = plane_.store().Write([&](store::Transaction& tx) -> core::Result<void> {
    BACKOUT_CHECK(tx.CheckFence(job_id, token));
    json progress = lease.job.payload;
    progress["outcome"] = report ? "reconciled" : "failed";
    if (report) progress["report"] = ToJson(*report);
    if (!report) progress["message"] = report.error().message;
    BACKOUT_CHECK(tx.SaveJobProgress(job_id, token, progress));
    std::string reason;
    if (config != nullptr && CanReconcile(*current, *config, reason)) {
      BACKOUT_TRY(int64_t next,
                  tx.EnqueueJob(kReconcileJob, fmt::format("service/{}", service),
                                {{"service", service}}, now + config->reconcile_interval));
      BACKOUT_TRY(store::Object state, LoadState(tx, service));
      state.body["job_id"] = std::to_string(next);
      BACKOUT_CHECK(tx.Put(state));
    }
    return tx.CompleteJob(job_id, token);
  });
  if (!written) {
    spdlog::error("component=reconcile job={} service={} event=commit_failed error=\"{}\"", job_id,
                  service, written.error().message);
  }
}

}  // namespace backout::app
