#include "providers/git/git_provider.h"

#include <unistd.h>

#include <filesystem>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

namespace backout::providers::git {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::string_view kConfirmHint =
    "confirm with `backout incident confirm ID --happened|--did-not-happen --reason TEXT`";

std::string ActionString(const json& action, std::string_view field) {
  auto it = action.find(field);
  return it != action.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string Short(std::string_view id) { return std::string(id.substr(0, 10)); }

std::string Trim(std::string_view text) {
  size_t begin = text.find_first_not_of(" \t\r\n\"");
  if (begin == std::string_view::npos) return "";
  size_t end = text.find_last_not_of(" \t\r\n\"");
  return std::string(text.substr(begin, end - begin + 1));
}

// Whether a controller's revision names `commit`: Argo CD reports the full id, Flux reports
// "main@sha1:<id>" or "main/<id>", and some reports shorten it to at least 7 characters.
bool RevisionMatches(std::string_view revision, std::string_view commit) {
  if (revision.find(commit) != std::string_view::npos) return true;
  size_t start = revision.find_last_of(":/@");
  std::string_view tail = start == std::string_view::npos ? revision : revision.substr(start + 1);
  return tail.size() >= 7 && commit.starts_with(tail);
}

std::string DescribeUndo(const Undo& undo, std::string_view target) {
  if (undo.commit.empty()) {
    return fmt::format("the branch no longer declares {} ({}); it declares {}", target,
                       undo.summary, undo.version);
  }
  return fmt::format("commit {} by {} ('{}') changed the version from {} to {} after the revert",
                     Short(undo.commit), undo.author, undo.summary, target, undo.version);
}

}  // namespace

core::Result<std::unique_ptr<Provider>> GitProvider::Create(std::string_view service,
                                                            const json& settings,
                                                            const SecretValues& secrets,
                                                            core::Clock& clock) {
  if (service.empty()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "git provider: the service name is empty");
  }
  auto parsed = ParseGitSettings(service, settings, secrets);
  if (!parsed) return std::unexpected(parsed.error());
  auto probe = HealthProbe::Create(service, parsed->health, clock);
  if (!probe) return std::unexpected(probe.error());
  return std::unique_ptr<Provider>(
      new GitProvider(std::string(service), std::make_unique<GitSettings>(std::move(*parsed)),
                      std::move(*probe), clock));
}

GitProvider::GitProvider(std::string service, std::unique_ptr<GitSettings> settings,
                         std::unique_ptr<HealthProbe> probe, core::Clock& clock)
    : service_(std::move(service)),
      settings_(std::move(settings)),
      reader_(settings_->version_pattern, settings_->version_key),
      planner_(*settings_, reader_),
      probe_(std::move(probe)),
      clock_(clock) {}

ProviderCapabilities GitProvider::Capabilities() const {
  return ProviderCapabilities{
      .live_state = true,
      .history = true,
      .readiness = probe_->Configured() || !settings_->controller_url.empty()};
}

core::Result<std::string> GitProvider::OpenAndFetch(
    std::optional<GitRepository>& repository) const {
  auto opened = GitRepository::Open(*settings_);
  if (!opened)
    return std::unexpected(opened.error().WithContext(fmt::format("service {}", service_)));
  repository.emplace(std::move(*opened));
  auto head = repository->Fetch();
  if (!head) return std::unexpected(head.error().WithContext(fmt::format("service {}", service_)));
  return head;
}

core::Result<LiveState> GitProvider::ReadLiveState() const {
  std::lock_guard lock(mutex_);
  std::optional<GitRepository> repository;
  auto head = OpenAndFetch(repository);
  if (!head) return std::unexpected(head.error());
  auto version = planner_.VersionAt(*repository, *head);
  if (!version) {
    return std::unexpected(version.error().WithContext(fmt::format("service {}", service_)));
  }

  json automation = json::object();
  for (const std::string& manifest : settings_->suspend_automation) {
    auto text = repository->ReadFile(*head, manifest);
    automation[manifest] = text && *text ? json(IsSuspended(**text)) : json(nullptr);
  }
  LiveState state;
  state.version = *version;
  state.observed_at = clock_.Now();
  state.details = json{{"source", "branch declaration; the controller may not have applied it"},
                       {"repository", DisplayUrl(settings_->repository)},
                       {"branch", settings_->branch},
                       {"path", settings_->path},
                       {"commit", *head},
                       {"automation_suspended", automation}};
  return state;
}

core::Result<std::vector<HistoryEntry>> GitProvider::History(core::Time since) const {
  std::lock_guard lock(mutex_);
  std::optional<GitRepository> repository;
  auto head = OpenAndFetch(repository);
  if (!head) return std::unexpected(head.error());
  auto entries = planner_.History(*repository, *head, since);
  if (!entries) {
    return std::unexpected(entries.error().WithContext(
        fmt::format("service {}: cannot read the history of {}", service_, settings_->path)));
  }
  return entries;
}

core::Result<std::vector<Precondition>> GitProvider::Preconditions() const {
  std::lock_guard lock(mutex_);
  std::vector<Precondition> checks;
  std::optional<GitRepository> repository;
  auto head = OpenAndFetch(repository);
  checks.push_back(Precondition{"repository reachable", head.has_value(),
                                head ? fmt::format("branch {} of {} is at {}", settings_->branch,
                                                   DisplayUrl(settings_->repository), Short(*head))
                                     : head.error().message});
  if (!head) return checks;

  auto version = planner_.VersionAt(*repository, *head);
  checks.push_back(
      Precondition{"version readable", version.has_value(),
                   version ? fmt::format("{} declares version {}", settings_->path, *version)
                           : version.error().message});
  for (const std::string& manifest : settings_->suspend_automation) {
    auto text = repository->ReadFile(*head, manifest);
    bool found = text && *text;
    checks.push_back(Precondition{
        fmt::format("automation manifest {} found", manifest), found,
        found ? fmt::format("{} exists on branch {}", manifest, settings_->branch)
              : fmt::format("{} is missing on branch {}, so the automation cannot be suspended; "
                            "fix suspend_automation",
                            manifest, settings_->branch)});
  }
  if (!settings_->health.command.empty()) {
    const std::string& program = settings_->health.command[0];
    bool executable = ::access(program.c_str(), X_OK) == 0;
    checks.push_back(Precondition{"health program executable", executable,
                                  executable
                                      ? fmt::format("{} is executable", program)
                                      : fmt::format("{} is missing or not executable", program)});
  }
  return checks;
}

core::Result<Plan> GitProvider::MakePlan(std::string_view target_version) const {
  bool has_control = std::any_of(target_version.begin(), target_version.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7F;
  });
  if (has_control) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "service {}: the target version contains control characters", service_);
  }

  std::lock_guard lock(mutex_);
  std::optional<GitRepository> repository;
  auto head = OpenAndFetch(repository);
  if (!head) return std::unexpected(head.error());
  auto revert = planner_.Plan(*repository, *head, target_version);
  if (!revert) {
    return std::unexpected(revert.error().WithContext(fmt::format("service {}", service_)));
  }

  Plan plan;
  plan.provider_kind = "git";
  plan.service = service_;
  plan.target_version = revert->target_version;
  plan.noop = revert->noop;
  plan.action = planner_.Action(*revert);
  plan.digest = PlanDigest(plan.action);
  if (revert->noop) {
    plan.summary = fmt::format("nothing to revert: {} on {} already declares {}", settings_->path,
                               settings_->branch, revert->target_version);
    return plan;
  }
  std::vector<std::string> reverted;
  for (const CommitInfo& commit : revert->reverts) {
    reverted.push_back(fmt::format("{} ({})", Short(commit.id), commit.summary));
  }
  plan.summary = fmt::format(
      "revert {} on branch {} of {}: {} goes from {} to {}{}; {}; branch head {}",
      fmt::join(reverted, ", "), settings_->branch, DisplayUrl(settings_->repository),
      settings_->path, revert->from_version, revert->target_version,
      revert->suspended.empty()
          ? ""
          : fmt::format(", suspending {} in the same commit", fmt::join(revert->suspended, ", ")),
      revert->rule, Short(*head));
  return plan;
}

core::Result<void> GitProvider::ValidatePlan(const Plan& plan) const {
  return CheckPlanOrigin(plan, "git", service_);
}

std::string GitProvider::CommitMessage(const RevertPlan& plan, const ExecutionContext& context,
                                       std::string_view key) const {
  std::string approver =
      context.approver.empty() ? "none recorded (break-glass)" : context.approver;
  std::string executor = context.executor.empty() ? "unknown" : context.executor;
  std::string message = fmt::format(
      "Revert {} to {} for incident {}\n\n"
      "Backout rolls {} back from {} to {} in {}\n"
      "for incident {}, approved by {} and executed by {}.\n\n"
      "Reverted commits:\n",
      service_, plan.target_version, context.incident_id, service_, plan.from_version,
      plan.target_version, settings_->path, context.incident_id, approver, executor);
  for (const CommitInfo& commit : plan.reverts) {
    message += fmt::format("- {} {}\n", commit.id, commit.summary);
  }
  if (!plan.suspended.empty()) {
    message += "\nSuspended automation in the same commit, so it cannot undo this revert:\n";
    for (const std::string& manifest : plan.suspended) message += fmt::format("- {}\n", manifest);
  }
  message += fmt::format("\n{}{}\n{}{}\n{}{}\n{}{}\n{}{}\n{}{}\n{}{}\n", kIncidentTrailer,
                         context.incident_id, kPathTrailer, settings_->path, kFromTrailer,
                         plan.from_version, kToTrailer, plan.target_version, kApproverTrailer,
                         approver, kExecutorTrailer, executor, kKeyTrailer, key);
  return message;
}

core::Result<ExecutionResult> GitProvider::Execute(const Plan& plan,
                                                   std::string_view idempotency_key,
                                                   const ExecutionContext& context) const {
  if (auto valid = ValidatePlan(plan); !valid) return std::unexpected(valid.error());
  if (idempotency_key.empty()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "service {}: the idempotency key is empty; pass the job's key",
                           service_);
  }

  ExecutionResult result;
  result.target_version = plan.target_version;
  result.from_version = ActionString(plan.action, "from_version");
  result.started_at = clock_.Now();
  if (plan.noop) {
    result.outcome = RollbackOutcome::kSkippedNoop;
    result.live_version = result.from_version;
    result.message = fmt::format("{} already declared {} when planned; nothing was committed",
                                 settings_->path, plan.target_version);
  } else {
    PushRevert(plan, idempotency_key, context, std::nullopt, true, result);
  }
  result.finished_at = clock_.Now();
  spdlog::info("provider.git: service={} incident={} key={} outcome={} message=\"{}\"", service_,
               context.incident_id, idempotency_key, core::RollbackOutcomeName(result.outcome),
               result.message);
  return result;
}

void GitProvider::PushRevert(const Plan& plan, std::string_view key,
                             const ExecutionContext& context,
                             const std::optional<std::string>& recorded, bool record_start,
                             ExecutionResult& result) const {
  auto fail = [&](RollbackOutcome outcome, std::string message) {
    result.outcome = outcome;
    result.message = std::move(message);
  };
  const std::string marker = KeyMarker(key);
  const std::string suspect = ActionString(plan.action, "suspect_commit");
  std::string landed;

  for (int attempt = 1; attempt <= settings_->push_attempts && landed.empty(); ++attempt) {
    std::unique_lock lock(mutex_);
    std::optional<GitRepository> repository;
    auto head = OpenAndFetch(repository);
    if (!head) return fail(RollbackOutcome::kFailed, head.error().message);
    result.transcript.Add(clock_.Now(), TranscriptKind::kResponse,
                          fmt::format("fetched {}: head {}", settings_->branch, *head),
                          json{{"attempt", attempt}, {"head", *head}});

    // Step 1: a commit with this execution's key already on the branch ends the work.
    auto existing = repository->FindCommitContaining(*head, suspect, marker, kHistoryWalkMax);
    if (!existing) return fail(RollbackOutcome::kFailed, existing.error().message);
    if (*existing) {
      landed = (*existing)->id;
      result.transcript.Add(
          clock_.Now(), TranscriptKind::kResponse,
          fmt::format("revert {} with this key is already on the branch", Short(landed)),
          json{{"commit", landed}});
      break;
    }

    // Step 2: the commit to push: the recorded one while the branch has not moved, else a new
    // revert planned on the current head, which must be the approved action.
    std::string commit;
    if (recorded && repository->HasCommit(*recorded)) {
      auto info = repository->ReadCommit(*recorded);
      if (info && info->first_parent == *head) commit = *recorded;
    }
    if (commit.empty()) {
      auto fresh = planner_.Plan(*repository, *head, plan.target_version);
      if (!fresh) {
        return fail(RollbackOutcome::kPreconditionFailed,
                    fmt::format("planning again on branch head {} failed: {}; assess and decide "
                                "again",
                                Short(*head), fresh.error().message));
      }
      if (fresh->noop) {
        return fail(RollbackOutcome::kPreconditionFailed,
                    fmt::format("branch {} already declares {} at {}; someone else changed it "
                                "since the plan, so nothing was committed",
                                settings_->branch, plan.target_version, Short(*head)));
      }
      json action = planner_.Action(*fresh);
      if (action != plan.action) {
        return fail(RollbackOutcome::kPreconditionFailed,
                    fmt::format("the branch changed what the rollback would revert since the "
                                "plan (now from {} reverting {}); plan again and decide on the "
                                "new plan",
                                fresh->from_version, action["revert_commits"].dump()));
      }
      auto created = repository->CreateCommit(fresh->tree.tree_id, *head,
                                              CommitMessage(*fresh, context, key), clock_.Now());
      if (!created) return fail(RollbackOutcome::kFailed, created.error().message);
      commit = *created;
      result.transcript.Add(
          clock_.Now(), TranscriptKind::kRequest,
          fmt::format("created revert commit {} on {}", Short(commit), Short(*head)),
          json{
              {"commit", commit}, {"parent", *head}, {"changed_files", fresh->tree.changed_files}});

      // The commit's id is committed before the push, so a crash in between resumes by pushing
      // this commit instead of making another.
      StartedAction started;
      started.started_at = clock_.Now();
      started.tool = json{{"commit", commit},
                          {"parent", *head},
                          {"attempt", attempt},
                          {"branch", settings_->branch},
                          {"repository", DisplayUrl(settings_->repository)}};
      if (record_start && context.on_started) {
        auto committed = context.on_started(started);
        if (!committed) {
          return fail(RollbackOutcome::kFailed,
                      fmt::format("could not record revert commit {}, so it was not pushed: {}",
                                  Short(commit), committed.error().message));
        }
      }
      if (record_start) result.started = started;
    }

    // Step 3: the push, which the remote rejects when it moved on.
    auto pushed = repository->Push(commit, key);
    if (!pushed) {
      // The push may have landed before the error; only the branch can tell.
      auto again = repository->Fetch();
      auto found = again
                       ? repository->FindCommitContaining(*again, suspect, marker, kHistoryWalkMax)
                       : core::Result<std::optional<CommitInfo>>(std::optional<CommitInfo>());
      if (found && *found) {
        landed = (*found)->id;
        break;
      }
      return fail(again ? RollbackOutcome::kFailed : RollbackOutcome::kInterrupted,
                  again ? pushed.error().message
                        : fmt::format("{}; the branch could not be read afterwards, so whether "
                                      "commit {} landed is unknown; {}",
                                      pushed.error().message, Short(commit), kConfirmHint));
    }
    if (pushed->status == PushStatus::kPushed) {
      landed = commit;
      result.transcript.Add(clock_.Now(), TranscriptKind::kRequest,
                            fmt::format("pushed {} to {}", Short(commit), settings_->branch),
                            json{{"commit", commit}, {"force", false}});
      break;
    }
    result.transcript.Add(clock_.Now(), TranscriptKind::kResponse,
                          fmt::format("push of {} rejected: {}", Short(commit), pushed->message),
                          json{{"commit", commit}, {"attempt", attempt}});
    spdlog::warn("provider.git: service={} incident={} push of {} rejected on attempt {}: {}",
                 service_, context.incident_id, Short(commit), attempt, pushed->message);
  }

  if (landed.empty()) {
    return fail(RollbackOutcome::kFailed,
                fmt::format("the remote rejected the push {} times because branch {} kept "
                            "moving; nothing was pushed, so roll back again",
                            settings_->push_attempts, settings_->branch));
  }
  result.details["commit"] = landed;
  ConcludeAfterPush(landed, context, result);
}

void GitProvider::ConcludeAfterPush(std::string_view commit, const ExecutionContext& context,
                                    ExecutionResult& result) const {
  auto check = [&]() -> core::Result<std::optional<Undo>> {
    std::lock_guard lock(mutex_);
    std::optional<GitRepository> repository;
    auto head = OpenAndFetch(repository);
    if (!head) return std::unexpected(head.error());
    auto version = planner_.VersionAt(*repository, *head);
    if (version) result.live_version = *version;
    result.details["branch_head"] = *head;
    return planner_.FindUndo(*repository, *head, commit, result.target_version);
  };

  auto undo = check();
  if (!undo) {
    result.outcome = RollbackOutcome::kFailed;
    result.message = fmt::format("pushed revert {} but cannot read the branch back: {}",
                                 Short(commit), undo.error().message);
    return;
  }
  if (*undo) {
    result.outcome = RollbackOutcome::kRevertedByController;
    result.message = fmt::format("pushed revert {}, but {}", Short(commit),
                                 DescribeUndo(**undo, result.target_version));
    return;
  }

  // A controller or automation may undo the revert within its reconcile interval, so the
  // branch is watched for verify_for.
  auto deadline = std::chrono::steady_clock::now() + settings_->verify_for;
  while (std::chrono::steady_clock::now() < deadline && !context.stop.stop_requested()) {
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        settings_->verify_interval, deadline - std::chrono::steady_clock::now()));
    undo = check();
    if (undo && *undo) {
      result.transcript.Add(clock_.Now(), TranscriptKind::kResponse,
                            DescribeUndo(**undo, result.target_version),
                            json{{"commit", (*undo)->commit}, {"version", (*undo)->version}});
      result.outcome = RollbackOutcome::kRevertedByController;
      result.message = fmt::format(
          "pushed revert {}, but {}; suspend the automation in git (suspend_automation) and "
          "revert again",
          Short(commit), DescribeUndo(**undo, result.target_version));
      return;
    }
  }
  result.outcome = RollbackOutcome::kRolledBack;
  result.message = fmt::format(
      "pushed revert {} to {}; the branch declares {}{}", Short(commit), settings_->branch,
      result.target_version, settings_->verify_for.count() > 0 ? " and kept it while watched" : "");
}

core::Result<ExecutionResult> GitProvider::Resume(const ResumeRequest& request,
                                                  const ExecutionContext& context) const {
  const Plan& plan = request.plan;
  if (auto valid = ValidatePlan(plan); !valid) return std::unexpected(valid.error());

  ExecutionResult result;
  result.target_version = plan.target_version;
  result.from_version = ActionString(plan.action, "from_version");
  result.started_at = request.started ? request.started->started_at : clock_.Now();
  result.started = request.started;
  if (plan.noop) {
    result.outcome = RollbackOutcome::kSkippedNoop;
    result.message = fmt::format("{} already declared {} when planned; nothing was committed",
                                 settings_->path, plan.target_version);
  } else if (request.idempotency_key.empty()) {
    result.outcome = RollbackOutcome::kInterrupted;
    result.message = fmt::format(
        "the job has no idempotency key, so its revert cannot be found; {}", kConfirmHint);
  } else {
    std::optional<std::string> recorded;
    if (request.started) {
      std::string commit = request.started->tool.value("commit", "");
      if (!commit.empty()) recorded = commit;
    }
    if (recorded) {
      PushRevert(plan, request.idempotency_key, context, recorded, false, result);
    } else {
      ResumeUnrecorded(plan, request.idempotency_key, context, result);
    }
  }
  result.finished_at = clock_.Now();
  spdlog::info("provider.git: service={} incident={} key={} resumed outcome={} message=\"{}\"",
               service_, context.incident_id, request.idempotency_key,
               core::RollbackOutcomeName(result.outcome), result.message);
  return result;
}

void GitProvider::ResumeUnrecorded(const Plan& plan, std::string_view key,
                                   const ExecutionContext& context, ExecutionResult& result) const {
  // The push follows the record of the commit, so without a record nothing was pushed. The
  // branch is still searched for the key, in case the record was lost after the push.
  std::optional<CommitInfo> found;
  {
    std::lock_guard lock(mutex_);
    std::optional<GitRepository> repository;
    auto head = OpenAndFetch(repository);
    if (!head) {
      result.outcome = RollbackOutcome::kInterrupted;
      result.message = fmt::format("cannot read the branch to find this job's revert: {}; {}",
                                   head.error().message, kConfirmHint);
      return;
    }
    auto existing = repository->FindCommitContaining(
        *head, ActionString(plan.action, "suspect_commit"), KeyMarker(key), kHistoryWalkMax);
    if (existing && *existing) found = **existing;
  }
  if (found) {
    result.details["commit"] = found->id;
    ConcludeAfterPush(found->id, context, result);
    return;
  }
  result.outcome = RollbackOutcome::kFailed;
  result.message =
      "the revert was never pushed: the server stopped before its commit was recorded, and the "
      "push runs only after that record; nothing changed, so roll back again";
}

core::Result<Readiness> GitProvider::CheckReadiness() const {
  std::string head;
  {
    std::lock_guard lock(mutex_);
    std::optional<GitRepository> repository;
    auto fetched = OpenAndFetch(repository);
    if (!fetched) return std::unexpected(fetched.error());
    head = *fetched;

    // The latest Backout revert of this file must still hold.
    auto revert = repository->FindCommitContaining(
        head, "", fmt::format("\n{}{}\n", kPathTrailer, settings_->path), kHistoryWalkMax);
    if (revert && *revert) {
      std::string target = TrailerValue((*revert)->message, kToTrailer);
      auto undo = planner_.FindUndo(*repository, head, (*revert)->id, target);
      if (undo && *undo) {
        return Readiness{false,
                         fmt::format("reverted by controller: {}", DescribeUndo(**undo, target))};
      }
    }
  }

  if (!probe_->Configured() && settings_->controller_url.empty()) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "service {}: the git provider has no health command, health URL or "
                           "controller URL, so readiness cannot be evaluated",
                           service_);
  }

  std::vector<std::string> passed;
  if (!settings_->controller_url.empty()) {
    auto body = probe_->Fetch(settings_->controller_url);
    if (!body) return Readiness{false, body.error().message};
    std::string revision;
    if (settings_->controller_revision_pointer.empty()) {
      revision = Trim(*body);
    } else {
      try {
        json document = json::parse(*body);
        json::json_pointer pointer(settings_->controller_revision_pointer);
        if (document.contains(pointer) && document.at(pointer).is_string()) {
          revision = document.at(pointer).get<std::string>();
        }
      } catch (const json::exception& error) {
        return Readiness{false, fmt::format("controller URL {} returned no JSON: {}",
                                            settings_->controller_url, error.what())};
      }
    }
    if (!RevisionMatches(revision, head)) {
      return Readiness{false,
                       fmt::format("the controller reports revision '{}', but branch {} is at {}; "
                                   "it has not deployed the branch head yet",
                                   revision, settings_->branch, Short(head))};
    }
    passed.push_back(fmt::format("the controller deployed {}", Short(head)));
  }
  if (probe_->Configured()) {
    auto health = probe_->Check({fmt::format("BACKOUT_COMMIT={}", head)});
    if (!health) return std::unexpected(health.error());
    if (!health->ready) return health;
    passed.push_back(health->message);
  }
  return Readiness{true, fmt::format("{}", fmt::join(passed, "; "))};
}

core::Result<ToolRecord> GitProvider::ReadBack(const ExecutionResult& execution) const {
  std::lock_guard lock(mutex_);
  std::optional<GitRepository> repository;
  auto head = OpenAndFetch(repository);
  if (!head) return std::unexpected(head.error());
  auto version = planner_.VersionAt(*repository, *head);
  if (!version) return std::unexpected(version.error());

  std::string commit = execution.details.value("commit", "");
  if (commit.empty()) {
    return ToolRecord{clock_.Now(), *version,
                      json{{"branch_head", *head},
                           {"commit", nullptr},
                           {"matches_target", *version == execution.target_version}}};
  }
  auto info = repository->ReadCommit(commit);
  if (!info) {
    return core::MakeError(core::ErrorCode::kNotFound,
                           "service {}: revert commit {} is not in the fetched history of {}",
                           service_, commit, settings_->branch);
  }
  bool on_branch = repository->IsInHistory(commit, *head);
  json details{{"commit", commit},
               {"branch_head", *head},
               {"on_branch", on_branch},
               {"summary", info->summary},
               {"author", info->author},
               {"incident", TrailerValue(info->message, kIncidentTrailer)},
               {"approver", TrailerValue(info->message, kApproverTrailer)},
               {"executor", TrailerValue(info->message, kExecutorTrailer)},
               {"matches_target", *version == execution.target_version},
               {"reverted_by_controller", nullptr}};
  auto undo = planner_.FindUndo(*repository, *head, commit, execution.target_version);
  if (undo && *undo) {
    details["reverted_by_controller"] = json{{"commit", (*undo)->commit},
                                             {"author", (*undo)->author},
                                             {"summary", (*undo)->summary},
                                             {"version", (*undo)->version}};
  }
  return ToolRecord{info->time, *version, std::move(details)};
}

}  // namespace backout::providers::git
