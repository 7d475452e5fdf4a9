#include "evidence/audit.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "core/domain.h"
#include "core/id_order.h"
#include "core/state_machine.h"
#include "evidence/audit_advice.h"
#include "ledger/entry.h"
#include "ledger/verify.h"

namespace backout::evidence {
namespace {

// The string at `key`, or `fallback` when it is missing, null or not a string: stored records
// write absent values as null (a discovered rollback not yet resolved has resolved_at null).
std::string TextOf(const nlohmann::json& object, const char* key, const char* fallback = "") {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string(fallback);
}

constexpr uint64_t kReadChunk = 4096;

// Each recorded policy with the time it came into force, oldest first.
struct PolicyHistory {
  std::vector<std::pair<core::Time, core::Policy>> policies;

  const core::Policy* At(core::Time time) const {
    const core::Policy* found = nullptr;
    for (const auto& [since, policy] : policies) {
      if (since <= time) found = &policy;
    }
    return found;
  }
};

core::Result<PolicyHistory> ReadPolicyHistory(store::Store& store) {
  PolicyHistory history;
  auto count = store.EntryCount();
  if (!count) return std::unexpected(count.error());
  for (uint64_t from = 0; from < *count; from += kReadChunk) {
    auto chunk = store.ReadEntries(from, std::min(kReadChunk, *count - from));
    if (!chunk) return std::unexpected(chunk.error());
    for (const ledger::StoredEntry& row : *chunk) {
      auto entry = ledger::DecodeEntry(row.encoded);
      if (!entry || entry->action != "policy.loaded") continue;
      auto policy = core::FromJson<core::Policy>(entry->change.value("policy", nlohmann::json()));
      if (policy) history.policies.emplace_back(entry->time, *std::move(policy));
    }
  }
  return history;
}

bool Acted(const core::Rollback& rollback) {
  if (rollback.confirmation) return rollback.confirmation->happened;
  return rollback.outcome == core::RollbackOutcome::kRolledBack ||
         rollback.outcome == core::RollbackOutcome::kSkippedNoop ||
         rollback.outcome == core::RollbackOutcome::kPartial;
}

// Whether the incident moved on from a rollback that acted without recovering the service. It did
// when a later rollback's validation found the service recovered, or when a no-go decision made
// after the rollback's request ended the rollback attempts because the team fixes forward.
bool Superseded(const core::Incident& incident, const core::Rollback& rollback) {
  const bool later_no_go = std::ranges::any_of(incident.decisions, [&](const core::Decision& d) {
    return !d.retroactive && d.kind == core::DecisionKind::kNoGo && d.time > rollback.requested_at;
  });
  if (later_no_go) return true;
  return std::ranges::any_of(incident.validations, [&](const core::Validation& v) {
    if (v.finding != core::ValidationFinding::kRecovered) return false;
    auto validated =
        std::ranges::find(incident.rollbacks, v.rollback_job_id, &core::Rollback::job_id);
    return validated != incident.rollbacks.end() && validated->requested_at > rollback.requested_at;
  });
}

// The last finished validation of rollback `job`, or nullptr.
const core::Validation* LastValidationOf(const core::Incident& incident, const std::string& job) {
  const core::Validation* last = nullptr;
  for (const core::Validation& validation : incident.validations) {
    if (validation.rollback_job_id == job && validation.finding) last = &validation;
  }
  return last;
}

// The incident as it stood at `at`: later decisions, rollbacks, validations, review and action
// item changes removed. Root cause has no time of its own, so the timeline's "documented" event
// dates it.
core::Incident AsOf(core::Incident incident, core::Time at) {
  std::erase_if(incident.decisions, [&](const core::Decision& d) { return d.time > at; });
  std::erase_if(incident.rollbacks, [&](const core::Rollback& r) { return r.requested_at > at; });
  for (core::Rollback& rollback : incident.rollbacks) {
    if (rollback.finished_at && *rollback.finished_at > at) {
      rollback.finished_at.reset();
      rollback.outcome.reset();
    }
    if (rollback.confirmation && rollback.confirmation->confirmed_at > at) {
      rollback.confirmation.reset();
    }
  }
  std::erase_if(incident.validations,
                [&](const core::Validation& v) { return !v.finished_at || *v.finished_at > at; });
  if (incident.review_written_at && *incident.review_written_at > at) {
    incident.review_markdown.clear();
  }
  bool documented = false;
  for (const core::TimelineEvent& event : incident.timeline) {
    if (event.kind == "documented" && event.time <= at) documented = true;
  }
  if (!documented) incident.root_cause.clear();
  std::erase_if(incident.action_items,
                [&](const core::ActionItem& item) { return item.created_at > at; });
  for (core::ActionItem& item : incident.action_items) {
    if (item.completed_at && *item.completed_at > at) {
      item.status = core::ActionItemStatus::kOpen;
      item.completed_at.reset();
    }
  }
  return incident;
}

// Whether the stored review metadata (kind "review") shows the review completed at `at`: the
// status of the last history event at or before `at` is "completed".
bool ReviewCompletedAt(const nlohmann::json* review, core::Time at) {
  if (review == nullptr) return false;
  std::string status;
  for (const nlohmann::json& event : review->value("history", nlohmann::json::array())) {
    auto time = core::ParseTime(TextOf(event, "time"));
    if (time && *time <= at) status = TextOf(event, "status");
  }
  return status == "completed";
}

bool MayExecute(const core::Policy& policy, std::string_view user, std::string_view service) {
  auto entry = std::ranges::find(policy.roster, user, &core::User::name);
  if (entry == policy.roster.end() || !entry->active) return false;
  const bool role =
      std::ranges::any_of(policy.executor_roles, [&](core::Role r) { return entry->HasRole(r); });
  return role && entry->HasService(service);
}

class Auditor {
 public:
  Auditor(const AuditOptions& options, const PolicyHistory& history,
          const std::map<std::string, nlohmann::json>& reviews)
      : options_(options), history_(history), reviews_(reviews) {}

  void CheckIncident(const core::Incident& stored) {
    const core::Incident incident = AsOf(stored, options_.at);
    bool in_period = false;
    for (const core::Rollback& rollback : incident.rollbacks) {
      if (options_.from && rollback.requested_at < *options_.from) continue;
      if (options_.to && rollback.requested_at >= *options_.to) continue;
      in_period = true;
      CheckRollback(incident, rollback);
    }
    // An incident without a rollback (a no-go, a forward fix) still has follow-up to audit; it
    // belongs to the period it was opened in.
    if (incident.rollbacks.empty()) {
      in_period = incident.opened_at <= options_.at &&
                  (!options_.from || incident.opened_at >= *options_.from) &&
                  (!options_.to || incident.opened_at < *options_.to);
    }
    if (!in_period) return;
    CheckBreakGlass(incident);
    CheckFollowUp(incident);
  }

  // Judges the stored grants against the roster in force at `at`.
  void CheckUsers(const std::vector<core::User>& users) {
    const core::Policy* recorded = history_.At(options_.at);
    const core::Policy& roster = recorded != nullptr ? *recorded : options_.current_policy;
    for (const core::User& user : users) {
      if (!user.active) continue;
      auto on_roster = core::CheckOnRoster(user, roster);
      if (!on_roster) Add("grant_not_on_roster", "", "", user.name, on_roster.error().message);
    }
  }

  // Checks rollbacks found in a tool's history: each must be linked to a documented incident or
  // documented itself, and must have gone through the service's configured provider.
  void CheckDiscovered(const nlohmann::json& rollback,
                       const std::map<std::string, core::Incident>& incidents) {
    const std::string id = TextOf(rollback, "id");
    const std::string service = TextOf(rollback, "service");
    auto time = core::ParseTime(TextOf(rollback, "time"));
    if (time && (*time > options_.at || (options_.from && *time < *options_.from) ||
                 (options_.to && *time >= *options_.to))) {
      return;
    }
    std::string state = TextOf(rollback, "state", "open");
    auto resolved = core::ParseTime(TextOf(rollback, "resolved_at"));
    if (resolved && *resolved > options_.at) state = "open";
    const std::string incident_id = TextOf(rollback, "incident");
    if (state == "open") {
      Add("discovered_not_linked", "", id, TextOf(rollback, "actor"),
          fmt::format("rollback {} of {} to {} was done outside Backout and is linked to no "
                      "incident; link it to the incident it belongs to or document why it "
                      "happened",
                      id, service, TextOf(rollback, "version")));
    } else if (state == "linked") {
      auto incident = incidents.find(incident_id);
      if (incident == incidents.end() || AsOf(incident->second, options_.at).root_cause.empty()) {
        Add("discovered_not_linked", incident_id, id, TextOf(rollback, "actor"),
            fmt::format("rollback {} of {} was done outside Backout and is linked to incident {}, "
                        "which is not documented",
                        id, service, incident_id));
      }
    }
    auto configured = options_.service_providers.find(service);
    const std::string provider = TextOf(rollback, "provider");
    if (configured != options_.service_providers.end() && !provider.empty() &&
        provider != configured->second) {
      Add("other_method", "", id, TextOf(rollback, "actor"),
          fmt::format("rollback {} of {} went through {}, not the service's provider {}", id,
                      service, provider, configured->second));
    }
  }

  // Finds an access review overdue when the latest attestation at or before `at`, or the first
  // recorded policy when there is none, is older than options_.access_review_every.
  void CheckAccessReview(const std::vector<nlohmann::json>& attestations) {
    std::optional<core::Time> latest;
    for (const nlohmann::json& attestation : attestations) {
      auto time = core::ParseTime(TextOf(attestation, "attested_at"));
      if (time && *time <= options_.at && (!latest || *time > *latest)) latest = *time;
    }
    std::optional<core::Time> since = latest;
    if (!since && !history_.policies.empty()) since = history_.policies.front().first;
    if (!since || options_.at <= *since + options_.access_review_every) return;
    Add("access_review_overdue", "", "", "",
        latest ? fmt::format("the last access review was attested at {}, more than {} days ago; "
                             "run `backout access review --attest`",
                             core::FormatTime(*latest), options_.access_review_every.count())
               : fmt::format("no access review was attested since the first policy was recorded "
                             "at {}, more than {} days ago; run `backout access review --attest`",
                             core::FormatTime(*since), options_.access_review_every.count()));
  }

  void CheckReconcilable(const nlohmann::json& state) {
    if (state.value("reconcilable", true)) return;
    const std::string service = state.value("service", "");
    Add("not_reconcilable", "", "", "",
        fmt::format("service {} cannot be reconciled with its tool's history ({}), so rollbacks "
                    "done outside Backout would go unseen",
                    service.empty() ? "?" : service, state.value("reason", "no reason recorded")));
  }

  // Finds the release link broken when the last reconciliation of a release manifest (kind
  // "release_manifest") found no live release in the folder, and found it at or before `at`.
  void CheckReleaseLink(const nlohmann::json& manifest) {
    const std::string problem = TextOf(manifest, "live_problem");
    if (problem.empty()) return;
    auto since = core::ParseTime(TextOf(manifest, "live_problem_since"));
    if (since && *since > options_.at) return;
    const std::string service = TextOf(manifest, "service", "?");
    const std::string last_live = TextOf(manifest, "live_version");
    Add("release_link_broken", "", "", "",
        fmt::format("service {} has no live release in its folder since {}: {}; the last release "
                    "known live is {}. Repair the link, then run `backout service reconcile {}`",
                    service, since ? core::FormatTime(*since) : std::string("an unknown time"),
                    problem, last_live.empty() ? "unknown" : last_live, service));
  }

  void Add(std::string rule, std::string incident, std::string rollback, std::string user,
           std::string message) {
    findings_.push_back({std::move(rule), std::move(incident), std::move(rollback), std::move(user),
                         std::move(message)});
  }

  std::vector<AuditFinding> Take() { return std::move(findings_); }

 private:
  void CheckRollback(const core::Incident& incident, const core::Rollback& rollback) {
    const std::string& job = rollback.job_id;
    const core::Policy* policy = history_.At(rollback.requested_at);
    if (policy == nullptr) {
      Add("no_policy_in_force", incident.id, job, rollback.executor,
          fmt::format("rollback {} was requested at {}, before any policy was recorded in the "
                      "ledger, so its executor cannot be judged",
                      job, core::FormatTime(rollback.requested_at)));
    } else if (!MayExecute(*policy, rollback.executor, incident.service)) {
      Add("unauthorized_executor", incident.id, job, rollback.executor,
          fmt::format("{} executed rollback {} of {} at {}, but the policy then in force did not "
                      "authorize them to execute rollbacks of that service",
                      rollback.executor, job, incident.service,
                      core::FormatTime(rollback.requested_at)));
    }
    if (!rollback.approver.empty() && rollback.approver == rollback.executor) {
      Add("approver_is_executor", incident.id, job, rollback.executor,
          fmt::format("{} both approved and executed rollback {}; turn separation_of_duties back "
                      "on and record why it was off in the incident's review",
                      rollback.executor, job));
    }
    if (!rollback.emergency) CheckDecisionBeforeStart(incident, rollback);
    auto configured = options_.service_providers.find(incident.service);
    if (configured != options_.service_providers.end() && !rollback.provider.empty() &&
        rollback.provider != configured->second) {
      Add("other_method", incident.id, job, rollback.executor,
          fmt::format("rollback {} went through provider {}, not the service's provider {}", job,
                      rollback.provider, configured->second));
    }

    if (!Acted(rollback)) return;
    const bool recovered =
        std::ranges::any_of(incident.validations, [&](const core::Validation& v) {
          return v.rollback_job_id == job && v.finding == core::ValidationFinding::kRecovered;
        });
    if (!recovered && !Superseded(incident, rollback)) {
      Add("not_recovered", incident.id, job, "", NotRecoveredMessage(incident, rollback));
    }
    if (rollback.finished_at && options_.at > *rollback.finished_at + options_.document_within &&
        incident.root_cause.empty()) {
      Add("undocumented", incident.id, job, "",
          fmt::format(
              "rollback {} ended at {}, more than {} days ago, and incident {} still has "
              "no root cause; {}",
              job, core::FormatTime(*rollback.finished_at), options_.document_within.count(),
              incident.id,
              internal::AdviceFor(incident, core::Action::kDocument,
                                  fmt::format("`backout incident document {}`", incident.id))));
    }
    if (rollback.finished_at && options_.at > *rollback.finished_at + options_.document_within &&
        (incident.review_markdown.empty() ||
         !ReviewCompletedAt(ReviewOf(incident.id), options_.at))) {
      Add("missing_review", incident.id, job, "",
          fmt::format("rollback {} ended more than {} days ago and incident {} has no completed "
                      "review; {}",
                      job, options_.document_within.count(), incident.id, ReviewAdvice(incident)));
    }
  }

  // The message of a `not_recovered` finding. Its advice depends on the incident's current state
  // (the stored one, also under --at), because only that state's actions can be taken now.
  static std::string NotRecoveredMessage(const core::Incident& incident,
                                         const core::Rollback& rollback) {
    const std::string confirmed =
        rollback.confirmation
            ? fmt::format(" and {} confirmed that it happened", rollback.confirmation->confirmed_by)
            : std::string();
    const core::Validation* validation = LastValidationOf(incident, rollback.job_id);
    const std::string found = validation != nullptr
                                  ? fmt::format("its validation {} found {}", validation->job_id,
                                                core::ValidationFindingName(*validation->finding))
                                  : std::string("has no `recovered` validation finding");
    return fmt::format(
        "rollback {} ended {}{} but {}; {}", rollback.job_id,
        core::RollbackOutcomeName(*rollback.outcome), confirmed, found,
        internal::AdviceFor(incident, core::Action::kValidate,
                            fmt::format("`backout incident validate {}`", incident.id)));
  }

  // Writing the review needs the documenting state, but its status changes in any state, so a
  // written review only needs completing.
  static std::string ReviewAdvice(const core::Incident& incident) {
    const std::string complete =
        fmt::format("complete it with `backout review status {} completed`", incident.id);
    if (!incident.review_markdown.empty()) return complete;
    return fmt::format("{}, then {}",
                       internal::AdviceFor(incident, core::Action::kWriteReview,
                                           fmt::format("`backout review write {}`", incident.id)),
                       complete);
  }

  // Judges a rollback by the decision in force when it started, so a decision made after it, such
  // as a no-go once its validation found the service not recovered, changes nothing.
  void CheckDecisionBeforeStart(const core::Incident& incident, const core::Rollback& rollback) {
    const core::Time start = rollback.started_at.value_or(rollback.requested_at);
    const core::Decision* in_force = incident.DecisionInForceAt(start);
    const bool approved_before =
        in_force != nullptr && in_force->kind == core::DecisionKind::kGo &&
        (rollback.approver.empty() || in_force->decider == rollback.approver);
    if (approved_before) return;
    const std::string latest =
        in_force == nullptr ? std::string()
                            : fmt::format(" (the decision in force was {} by {} at {})",
                                          core::DecisionKindName(in_force->kind), in_force->decider,
                                          core::FormatTime(in_force->time));
    Add("decision_after_start", incident.id, rollback.job_id, rollback.approver,
        fmt::format("rollback {} started at {} without a go decision{} made before it{}; a "
                    "non-emergency rollback needs its approval first",
                    rollback.job_id, core::FormatTime(start),
                    rollback.approver.empty() ? "" : " by its approver " + rollback.approver,
                    latest));
  }

  void CheckBreakGlass(const core::Incident& incident) {
    const core::Policy* policy = history_.At(incident.opened_at);
    const core::Policy& judged = policy != nullptr ? *policy : options_.current_policy;
    const core::BreakGlassStatus status =
        core::RetroactiveApprovalStatus(incident, judged, options_.at);
    if (status.approval == core::RetroactiveApproval::kOverdue ||
        status.approval == core::RetroactiveApproval::kApprovedLate) {
      Add("emergency_without_approval", incident.id, status.rollback_job_id, "",
          fmt::format("break-glass rollback {} needed a retroactive approval by another lead by "
                      "{}; it is {}",
                      status.rollback_job_id,
                      status.due ? core::FormatTime(*status.due) : std::string("?"),
                      status.approval == core::RetroactiveApproval::kOverdue ? "still missing"
                                                                             : "approved late"));
    }
  }

  void CheckFollowUp(const core::Incident& incident) {
    const auto today = std::chrono::floor<std::chrono::days>(options_.at);
    for (const core::ActionItem& item : incident.action_items) {
      if (item.status != core::ActionItemStatus::kOpen || !item.due || *item.due >= today) continue;
      Add("overdue_action_item", incident.id, "", item.owner,
          fmt::format("action item {} ({}) owned by {} was due {} and is still open", item.id,
                      item.title, item.owner, core::FormatDate(*item.due)));
    }
  }

  const nlohmann::json* ReviewOf(const std::string& incident_id) const {
    auto it = reviews_.find(incident_id);
    return it == reviews_.end() ? nullptr : &it->second;
  }

  const AuditOptions& options_;
  const PolicyHistory& history_;
  const std::map<std::string, nlohmann::json>& reviews_;
  std::vector<AuditFinding> findings_;
};

// A log reader that stops at the entry count read first, so entries a server appends while the
// check runs are neither half-read nor reported as unsigned.
class BoundedReader final : public ledger::LogReader {
 public:
  BoundedReader(ledger::LogReader& source, uint64_t count) : source_(source), count_(count) {}
  core::Result<uint64_t> EntryCount() override { return count_; }
  core::Result<std::vector<ledger::StoredEntry>> ReadEntries(uint64_t from,
                                                             uint64_t count) override {
    if (from >= count_) return std::vector<ledger::StoredEntry>();
    return source_.ReadEntries(from, std::min(count, count_ - from));
  }
  core::Result<std::vector<ledger::Checkpoint>> ReadCheckpoints() override {
    auto all = source_.ReadCheckpoints();
    if (!all) return all;
    std::erase_if(*all, [&](const ledger::Checkpoint& c) { return c.tree_size > count_; });
    return all;
  }

 private:
  ledger::LogReader& source_;
  uint64_t count_;
};

}  // namespace

nlohmann::json ToJson(const AuditFinding& finding) {
  return nlohmann::json{{"rule", finding.rule},
                        {"incident", finding.incident},
                        {"rollback", finding.rollback},
                        {"user", finding.user},
                        {"message", finding.message}};
}

core::Result<std::vector<AuditFinding>> RunAuditChecks(store::Store& store,
                                                       const AuditOptions& options) {
  auto history = ReadPolicyHistory(store);
  if (!history) return std::unexpected(history.error());

  std::vector<core::Incident> incidents;
  std::vector<core::User> users;
  std::vector<nlohmann::json> discovered;
  std::vector<nlohmann::json> reconciliation;
  std::vector<nlohmann::json> manifests;
  std::map<std::string, nlohmann::json> reviews;
  std::vector<nlohmann::json> attestations;
  std::vector<std::string> unreadable;
  auto read = store.Read([&](store::Transaction& tx) -> core::Result<void> {
    for (const char* kind : {"incident", "user", "discovered_rollback", "reconciliation", "review",
                             "access_attestation", "release_manifest"}) {
      std::string after;
      while (true) {
        auto page = tx.List(store::ListQuery{.kind = kind, .after_id = after, .limit = 500});
        if (!page) return std::unexpected(page.error());
        for (const store::Object& object : *page) {
          if (std::string_view(kind) == "review") {
            reviews[object.id] = object.body;
          } else if (std::string_view(kind) == "access_attestation") {
            attestations.push_back(object.body);
          } else if (std::string_view(kind) == "release_manifest") {
            nlohmann::json manifest = object.body;
            if (!manifest.contains("service")) manifest["service"] = object.id;
            manifests.push_back(std::move(manifest));
          } else if (std::string_view(kind) == "discovered_rollback") {
            discovered.push_back(object.body);
          } else if (std::string_view(kind) == "reconciliation") {
            nlohmann::json state = object.body;
            if (!state.contains("service")) state["service"] = object.id;
            reconciliation.push_back(std::move(state));
          } else if (std::string_view(kind) == "incident") {
            auto incident = core::FromJson<core::Incident>(object.body);
            if (incident)
              incidents.push_back(*std::move(incident));
            else
              unreadable.push_back(object.id);
          } else {
            auto user = core::FromJson<core::User>(object.body);
            if (user) users.push_back(*std::move(user));
          }
        }
        if (page->size() < 500) break;
        after = page->back().id;
      }
    }
    return {};
  });
  if (!read) return std::unexpected(read.error());

  Auditor auditor(options, *history, reviews);
  for (const core::Incident& incident : incidents) auditor.CheckIncident(incident);
  for (const std::string& id : unreadable) {
    auditor.Add("unreadable_record", id, "", "",
                fmt::format("stored incident {} cannot be read, so it cannot be checked", id));
  }
  auditor.CheckUsers(users);
  std::map<std::string, core::Incident> by_id;
  for (const core::Incident& incident : incidents) by_id.emplace(incident.id, incident);
  for (const nlohmann::json& rollback : discovered) auditor.CheckDiscovered(rollback, by_id);
  for (const nlohmann::json& state : reconciliation) auditor.CheckReconcilable(state);
  for (const nlohmann::json& manifest : manifests) auditor.CheckReleaseLink(manifest);
  auditor.CheckAccessReview(attestations);

  auto count = store.EntryCount();
  if (!count) return std::unexpected(count.error());
  BoundedReader bounded(store, *count);
  auto verified = ledger::VerifyLog(bounded, {});
  if (!verified) {
    auditor.Add("ledger_verification_failed", "", "", "", verified.error().message);
  }

  std::vector<AuditFinding> findings = auditor.Take();
  std::ranges::stable_sort(findings, [](const AuditFinding& a, const AuditFinding& b) {
    if (a.incident != b.incident) return core::IdLess(a.incident, b.incident);
    if (a.rollback != b.rollback) return core::IdLess(a.rollback, b.rollback);
    return a.rule < b.rule;
  });
  return findings;
}

}  // namespace backout::evidence
