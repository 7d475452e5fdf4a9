#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/time.h"

// Reconciliation with each tool's own history: what it stores and what it reports.
namespace backout::app {

inline constexpr char kDiscoveredRollbackKind[] = "discovered_rollback";
// One object per service, id = service name. Its `reconcilable` field records whether the service's
// provider can read the tool's history; audit checks read it from the store.
inline constexpr char kReconciliationKind[] = "reconciliation";
// One object per tool history entry already reconciled, so the same entry never yields a second
// record, however often or concurrently reconciliation runs.
inline constexpr char kHistoryEntryKind[] = "history_entry";

inline constexpr char kReconcileJob[] = "reconcile";
inline constexpr char kActionItemDueJob[] = "action_item_due";

// States of a discovered rollback. It stays open until someone links it to an incident or
// documents why it happened.
inline constexpr char kDiscoveredOpen[] = "open";
inline constexpr char kDiscoveredLinked[] = "linked";
inline constexpr char kDiscoveredDocumented[] = "documented";

// A move back to an earlier version that Backout did not perform, found in the tool's history.
// Times and actor are the tool's.
struct DiscoveredRollback {
  std::string id;  // "DRB-1"
  std::string service;
  std::string environment;
  std::string provider;      // the provider kind that read the history
  std::string version;       // the version the tool moved back to
  std::string from_version;  // the version live before it; empty when unknown
  core::Time time{};         // when the tool recorded it
  std::string actor;         // who did it, by the tool's record; empty when it keeps none
  // Why it counts as a rollback: "tool" when the tool marks the entry a rollback, "version order"
  // when an earlier version was deployed again, "release order" when `current` was switched to a
  // release folder older than the one live before.
  std::string evidence;
  nlohmann::json details = nlohmann::json::object();  // the tool's own fields
  core::Time discovered_at{};
  std::string state = kDiscoveredOpen;
  std::string incident;  // when linked
  std::string reason;    // when documented
  std::string resolved_by;
  std::optional<core::Time> resolved_at;
};

nlohmann::json ToJson(const DiscoveredRollback& rollback);
core::Result<DiscoveredRollback> DiscoveredRollbackFromJson(const nlohmann::json& json);

// What one reconciliation run did.
struct ReconcileReport {
  std::string service;
  bool reconcilable = false;
  std::string reason;     // why not, when not reconcilable
  int entries_read = 0;   // history entries the provider returned
  int already_known = 0;  // entries an earlier run reconciled
  int matched = 0;        // entries that match a recorded change or one of Backout's rollbacks
  std::vector<std::string> discovered_changes;    // change ids, source discovered
  std::vector<std::string> discovered_rollbacks;  // discovered rollback ids
  std::string live_problem;  // why the tool shows no live version, when the release check found so
};

nlohmann::json ToJson(const ReconcileReport& report);

struct DiscoveredRollbackFilter {
  std::optional<std::string> service;
  std::optional<std::string> state;
};

}  // namespace backout::app
