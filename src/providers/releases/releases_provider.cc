#include "providers/releases/releases_provider.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "providers/releases/release_history.h"

namespace backout::providers::releases {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr size_t kMarkerReadMax = 4 * 1024;

constexpr std::string_view kConfirmHint =
    "confirm with `backout incident confirm ID --happened|--did-not-happen --reason TEXT`";

std::string ActionString(const json& action, std::string_view field) {
  auto it = action.find(field);
  return it != action.end() && it->is_string() ? it->get<std::string>() : "";
}

bool IsExecutableFile(const std::string& path) {
  std::error_code error;
  return fs::is_regular_file(path, error) && ::access(path.c_str(), X_OK) == 0;
}

Precondition CheckProgram(std::string_view role, const std::vector<std::string>& argv) {
  bool ok = IsExecutableFile(argv[0]);
  return Precondition{
      fmt::format("{} program executable", role), ok,
      ok ? fmt::format("{} is an executable file", argv[0])
         : fmt::format("{} is missing or not executable; install it or fix the provider's {}",
                       argv[0], role)};
}

}  // namespace

core::Result<std::unique_ptr<Provider>> ReleasesProvider::Create(std::string_view service,
                                                                 const json& settings,
                                                                 const SecretValues& secrets,
                                                                 core::Clock& clock) {
  if (service.empty()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "releases provider: the service name is empty");
  }
  auto parsed = ParseReleasesSettings(service, settings);
  if (!parsed) return std::unexpected(parsed.error());
  auto probe = HealthProbe::Create(service, parsed->health, clock);
  if (!probe) return std::unexpected(probe.error());
  return std::unique_ptr<Provider>(
      new ReleasesProvider(std::string(service), std::move(*parsed), std::move(*probe), clock));
}

ReleasesProvider::ReleasesProvider(std::string service, ReleasesSettings settings,
                                   std::unique_ptr<HealthProbe> probe, core::Clock& clock)
    : service_(std::move(service)),
      settings_(std::move(settings)),
      tree_(settings_.root, settings_.marker),
      probe_(std::move(probe)),
      clock_(clock) {}

ProviderCapabilities ReleasesProvider::Capabilities() const {
  return ProviderCapabilities{
      .live_state = true, .history = true, .readiness = probe_->Configured(), .inventory = true};
}

core::Result<LiveState> ReleasesProvider::ReadLiveState() const {
  CurrentLink current = tree_.ReadCurrent();
  if (!current.live()) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition, "service {}: {}", service_,
                           tree_.DescribeProblem(current));
  }

  auto release = tree_.FindRelease(current.version);
  LiveState state;
  state.version = current.version;
  state.observed_at = clock_.Now();
  state.details = json{{"link", tree_.LinkPath().string()},
                       {"link_target", current.target},
                       {"link_changed_at", core::FormatTime(current.changed_at)},
                       {"link_relative", current.relative},
                       {"complete", release.has_value() && release->complete},
                       {"release_log", DescribeLogSync(tree_, current)}};
  if (current.relative) state.details["link_note"] = tree_.DescribeNote(current);
  return state;
}

core::Result<std::vector<HistoryEntry>> ReleasesProvider::History(core::Time since) const {
  auto entries = ReadReleaseHistory(tree_, since);
  if (!entries) {
    return std::unexpected(entries.error().WithContext(
        fmt::format("service {}: cannot read the release history", service_)));
  }
  return entries;
}

core::Result<std::vector<Precondition>> ReleasesProvider::Preconditions() const {
  std::vector<Precondition> checks;
  std::error_code error;

  bool releases_readable = fs::is_directory(tree_.ReleasesPath(), error);
  checks.push_back(Precondition{"release folder readable", releases_readable,
                                releases_readable
                                    ? fmt::format("{} is a folder", tree_.ReleasesPath().string())
                                    : fmt::format("{} is not a folder; check the provider's root",
                                                  tree_.ReleasesPath().string())});

  CurrentLink current = tree_.ReadCurrent();
  std::string link_detail = tree_.DescribeProblem(current);
  if (current.live()) {
    link_detail = current.relative
                      ? tree_.DescribeNote(current)
                      : fmt::format("{} -> {}", tree_.LinkPath().string(), current.target);
  }
  checks.push_back(
      Precondition{"current links to a release", current.live(), std::move(link_detail)});

  bool writable = ::access(tree_.root().c_str(), W_OK | X_OK) == 0;
  checks.push_back(Precondition{
      "root folder writable", writable,
      writable ? fmt::format("{} is writable", tree_.root().string())
               : fmt::format("{} is not writable by the server, which must create a link in it; "
                             "grant write access",
                             tree_.root().string())});

  if (!settings_.restart.empty()) checks.push_back(CheckProgram("restart", settings_.restart));
  if (!settings_.health.command.empty()) {
    checks.push_back(CheckProgram("health", settings_.health.command));
  }
  return checks;
}

core::Result<Release> ReleasesProvider::ChooseDefaultTarget(const CurrentLink& current,
                                                            std::string& rule) const {
  // An incomplete live release has no completion time, so every complete release counts as
  // older: the rule picks the newest complete one.
  if (!current.live() && current.state != LinkState::kIncomplete) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "service {}: the provider's rule picks the release before the live "
                           "one, but no release is live: {}",
                           service_, tree_.DescribeProblem(current));
  }
  auto releases = tree_.ListReleases();
  if (!releases) return std::unexpected(releases.error());

  const Release* live = nullptr;
  for (const Release& release : *releases) {
    if (release.version == current.version) live = &release;
  }
  const Release* chosen = nullptr;
  for (const Release& release : *releases) {
    if (!release.complete || release.version == current.version) continue;
    bool older = live == nullptr || !live->complete || release.completed_at < live->completed_at ||
                 (release.completed_at == live->completed_at && release.version < live->version);
    if (older) chosen = &release;  // sorted by completion, so the last match is the newest
  }
  if (chosen == nullptr) {
    size_t complete = std::count_if(releases->begin(), releases->end(),
                                    [](const Release& release) { return release.complete; });
    return core::MakeError(core::ErrorCode::kNotFound,
                           "service {}: no rollback target: no complete release was deployed "
                           "before the live release {} ({} complete release(s) in {}); current "
                           "is left unchanged",
                           service_, current.version, complete, tree_.ReleasesPath().string());
  }
  rule = fmt::format(
      "provider rule: the newest complete release completed before the live "
      "release {}",
      current.version);
  return *chosen;
}

json ReleasesProvider::BuildAction(const Release& target, const CurrentLink& current,
                                   bool noop) const {
  std::error_code error;
  bool has_log = fs::exists(tree_.RevisionLogPath(), error);
  return json{
      {"type", noop ? "noop" : "switch"},
      {"root", tree_.root().string()},
      {"link", tree_.LinkPath().string()},
      {"from_version", current.version.empty() ? json(nullptr) : json(current.version)},
      {"from_target", current.target.empty() ? json(nullptr) : json(current.target)},
      {"target_version", target.version},
      {"target_path", tree_.ReleasePath(target.version).string()},
      {"marker", settings_.marker},
      {"target_completed_at", core::FormatTime(target.completed_at)},
      {"release_log", has_log ? json(tree_.RevisionLogPath().string()) : json(nullptr)},
      {"restart", settings_.restart.empty() ? json(nullptr) : json(settings_.restart)},
      {"restart_timeout_ms", settings_.restart_timeout.count()},
  };
}

core::Result<Plan> ReleasesProvider::MakePlan(std::string_view target_version) const {
  CurrentLink current = tree_.ReadCurrent();

  // Step 1: the target release, named or by the provider's rule, which must be complete.
  std::string rule = "named target";
  core::Result<Release> target = target_version.empty() ? ChooseDefaultTarget(current, rule)
                                                        : tree_.FindRelease(target_version);
  if (!target) {
    return std::unexpected(target.error().message.starts_with("service ")
                               ? target.error()
                               : target.error().WithContext(fmt::format("service {}", service_)));
  }
  if (!target->untrusted.empty()) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "service {}: release {} cannot be a rollback target: {}; or choose "
                           "another release",
                           service_, target->version, target->untrusted);
  }
  if (!target->complete) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "service {}: release {} is incomplete: its marker file {} is missing, "
                           "so its deploy may not have finished; choose a complete release",
                           service_, target->version, (target->path / settings_.marker).string());
  }

  // Step 2: a no-op when it is already live.
  bool noop = current.live() && current.version == target->version;
  Plan plan;
  plan.provider_kind = "releases";
  plan.service = service_;
  plan.target_version = target->version;
  plan.noop = noop;
  plan.action = BuildAction(*target, current, noop);
  plan.digest = PlanDigest(plan.action);
  if (noop) {
    plan.summary = fmt::format("nothing to switch: {} already points at release {}",
                               tree_.LinkPath().string(), target->version);
  } else {
    plan.summary = fmt::format(
        "point {} at {} (now {}){}; {}", tree_.LinkPath().string(),
        tree_.ReleasePath(target->version).string(),
        current.target.empty() ? "missing" : current.target,
        settings_.restart.empty() ? "" : fmt::format(", then run {}", settings_.restart[0]), rule);
  }
  return plan;
}

core::Result<void> ReleasesProvider::ValidatePlan(const Plan& plan) const {
  if (auto origin = CheckPlanOrigin(plan, "releases", service_); !origin) {
    return std::unexpected(origin.error());
  }
  if (auto valid = CheckVersionName(plan.target_version); !valid) {
    return std::unexpected(valid.error().WithContext(fmt::format("service {}", service_)));
  }
  return {};
}

core::Result<ExecutionResult> ReleasesProvider::Execute(const Plan& plan,
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
  auto finish = [&](RollbackOutcome outcome, std::string message) {
    result.outcome = outcome;
    result.message = std::move(message);
    result.finished_at = clock_.Now();
    spdlog::info("provider.releases: service={} incident={} key={} outcome={} message=\"{}\"",
                 service_, context.incident_id, idempotency_key, core::RollbackOutcomeName(outcome),
                 result.message);
    return result;
  };

  if (plan.noop) {
    result.live_version = result.from_version;
    return finish(RollbackOutcome::kSkippedNoop,
                  fmt::format("release {} was already live when planned; nothing was switched",
                              plan.target_version));
  }

  // Step 1: the plan must still describe the folder: same link, same complete target.
  CurrentLink current = tree_.ReadCurrent();
  auto target = tree_.FindRelease(plan.target_version);
  if (target && !target->untrusted.empty()) {
    return finish(RollbackOutcome::kPreconditionFailed,
                  fmt::format("release {} is no longer a trusted release: {}", plan.target_version,
                              target->untrusted));
  }
  if (!target || !target->complete) {
    return finish(RollbackOutcome::kPreconditionFailed,
                  target ? fmt::format("release {} is no longer complete: its marker is gone",
                                       plan.target_version)
                         : target.error().message);
  }
  if (BuildAction(*target, current, false) != plan.action) {
    return finish(
        RollbackOutcome::kPreconditionFailed,
        fmt::format("the release folder changed since the plan was made ({} now links "
                    "to {}, the plan expected {}); plan again and decide on the new "
                    "plan",
                    tree_.LinkPath().string(), current.target.empty() ? "nothing" : current.target,
                    ActionString(plan.action, "from_target").empty()
                        ? "nothing"
                        : ActionString(plan.action, "from_target")));
  }
  result.transcript.Add(clock_.Now(), TranscriptKind::kResponse,
                        fmt::format("read {} -> {}", tree_.LinkPath().string(), current.target),
                        json{{"link_target", current.target},
                             {"link_changed_at", core::FormatTime(current.changed_at)}});

  // Step 2: commit the intent before touching `current`.
  StartedAction started;
  started.started_at = clock_.Now();
  started.tool = json{{"temp_link", tree_.TempLinkPath(idempotency_key).string()},
                      {"from_target", current.target},
                      {"from_changed_at", core::FormatTime(current.changed_at)}};
  if (context.on_started) {
    auto recorded = context.on_started(started);
    if (!recorded) {
      return finish(RollbackOutcome::kFailed,
                    fmt::format("could not record the start of the switch, so current was not "
                                "touched: {}",
                                recorded.error().message));
    }
  }
  result.started = started;

  // Step 3: the atomic switch.
  std::vector<SwitchStep> steps;
  auto switched = tree_.Switch(plan.target_version, idempotency_key, steps);
  for (SwitchStep& step : steps) {
    result.transcript.Add(clock_.Now(), TranscriptKind::kRequest, std::move(step.summary),
                          std::move(step.data));
  }
  if (!switched) {
    result.transcript.Add(clock_.Now(), TranscriptKind::kResponse, switched.error().message);
    ConcludeFromLink(result, fmt::format("the switch failed: {}", switched.error().message));
    if (result.outcome == RollbackOutcome::kRolledBack)
      return finish(result.outcome, result.message);
    return finish(RollbackOutcome::kFailed, result.message);
  }

  // Step 4: the log line and the restart, then the read-back.
  if (!FinishSwitch(plan, idempotency_key, context, true, result)) {
    return finish(result.outcome, result.message);
  }
  ConcludeFromLink(result, "switched current atomically");
  return finish(result.outcome, result.message);
}

bool ReleasesProvider::FinishSwitch(const Plan& plan, std::string_view idempotency_key,
                                    const ExecutionContext& context, bool append_log,
                                    ExecutionResult& result) const {
  std::string actor = context.executor.empty() ? "backout" : context.executor;
  std::string line = RollbackLogLine(actor, plan.target_version);
  core::Result<bool> appended = false;
  if (append_log) appended = tree_.AppendRevisionLog(line);
  if (!appended) {
    result.details["release_log_updated"] = false;
    result.transcript.Add(clock_.Now(), TranscriptKind::kResponse,
                          fmt::format("revisions.log not updated: {}", appended.error().message));
    spdlog::warn("provider.releases: service={} incident={} revisions.log not updated: {}",
                 service_, context.incident_id, appended.error().message);
  } else if (*appended) {
    result.details["release_log_updated"] = true;
    result.transcript.Add(clock_.Now(), TranscriptKind::kRequest,
                          fmt::format("appended to {}: {}", tree_.RevisionLogPath().string(), line),
                          json{{"path", tree_.RevisionLogPath().string()}, {"line", line}});
  }

  if (settings_.restart.empty()) return true;
  std::vector<std::string> env = {
      fmt::format("BACKOUT_TARGET_VERSION={}", plan.target_version),
      fmt::format("BACKOUT_RELEASE_PATH={}", tree_.ReleasePath(plan.target_version).string()),
      fmt::format("BACKOUT_INCIDENT_ID={}", context.incident_id),
      fmt::format("BACKOUT_EXECUTOR={}", context.executor),
      fmt::format("BACKOUT_IDEMPOTENCY_KEY={}", idempotency_key)};
  result.transcript.Add(
      clock_.Now(), TranscriptKind::kProcess,
      fmt::format("running restart command {}", settings_.restart[0]),
      json{{"argv", settings_.restart}, {"timeout_ms", settings_.restart_timeout.count()}});
  auto run = probe_->RunCommand(settings_.restart, env, settings_.restart_timeout);
  std::string failure;
  if (!run) {
    failure = run.error().message;
  } else {
    result.transcript.Add(clock_.Now(), TranscriptKind::kProcess,
                          fmt::format("restart command ended with {}", run->exit),
                          json{{"exit", run->exit}, {"output", run->output}});
    result.details["restart_exit"] = run->exit;
    if (!run->ok) {
      failure = fmt::format("{} ended with {}{}{}", settings_.restart[0], run->exit,
                            run->output.empty() ? "" : ": ", run->output);
    }
  }
  if (failure.empty()) return true;

  CurrentLink current = tree_.ReadCurrent();
  result.live_version = current.version;
  result.outcome = RollbackOutcome::kFailed;
  result.message = fmt::format(
      "current points at release {}, but the restart command failed ({}), so the service may "
      "still run the old release; fix the restart and run it by hand, because planning again "
      "finds the target live and switches nothing",
      plan.target_version, failure);
  return false;
}

void ReleasesProvider::ConcludeFromLink(ExecutionResult& result,
                                        std::string_view what_happened) const {
  CurrentLink current = tree_.ReadCurrent();
  result.transcript.Add(clock_.Now(), TranscriptKind::kResponse,
                        fmt::format("read back {} -> {}", tree_.LinkPath().string(),
                                    current.target.empty() ? "nothing" : current.target),
                        json{{"link_target", current.target}, {"live", current.live()}});
  result.live_version = current.version;
  if (!current.live()) {
    result.outcome = RollbackOutcome::kFailed;
    result.message = fmt::format("{}; but current is not a live release: {}", what_happened,
                                 tree_.DescribeProblem(current));
    return;
  }
  auto marker = tree_.ReadMarker(current.version, kMarkerReadMax);
  if (current.version == result.target_version && marker) {
    result.outcome = RollbackOutcome::kRolledBack;
    result.message = fmt::format("{}; current resolves to release {} and its marker is present",
                                 what_happened, current.version);
    return;
  }
  result.outcome = RollbackOutcome::kFailed;
  result.message = current.version == result.target_version
                       ? fmt::format("{}; current points at release {} but its marker is missing",
                                     what_happened, current.version)
                       : fmt::format("{}; current points at release {}, not the target {}",
                                     what_happened, current.version, result.target_version);
}

core::Result<ExecutionResult> ReleasesProvider::Resume(const ResumeRequest& request,
                                                       const ExecutionContext& context) const {
  const Plan& plan = request.plan;
  if (auto valid = ValidatePlan(plan); !valid) return std::unexpected(valid.error());

  ExecutionResult result;
  result.target_version = plan.target_version;
  result.from_version = ActionString(plan.action, "from_version");
  result.started_at = request.started ? request.started->started_at : clock_.Now();
  result.started = request.started;
  auto finish = [&](RollbackOutcome outcome, std::string message) {
    result.outcome = outcome;
    result.message = std::move(message);
    result.finished_at = clock_.Now();
    spdlog::info(
        "provider.releases: service={} incident={} key={} resumed outcome={} "
        "message=\"{}\"",
        service_, context.incident_id, request.idempotency_key, core::RollbackOutcomeName(outcome),
        result.message);
    return result;
  };

  if (plan.noop) {
    result.live_version = result.from_version;
    return finish(RollbackOutcome::kSkippedNoop,
                  fmt::format("release {} was already live when planned; nothing was switched",
                              plan.target_version));
  }
  if (!request.idempotency_key.empty() && tree_.RemoveTempLink(request.idempotency_key)) {
    result.transcript.Add(
        clock_.Now(), TranscriptKind::kRequest,
        fmt::format("removed leftover {}", tree_.TempLinkPath(request.idempotency_key).string()));
  }

  CurrentLink current = tree_.ReadCurrent();
  result.live_version = current.version;
  result.transcript.Add(clock_.Now(), TranscriptKind::kResponse,
                        fmt::format("read {} -> {}", tree_.LinkPath().string(),
                                    current.target.empty() ? "nothing" : current.target),
                        json{{"link_target", current.target},
                             {"link_changed_at", core::FormatTime(current.changed_at)}});
  if (!request.started) {
    return finish(RollbackOutcome::kFailed,
                  fmt::format("the switch never ran: the server stopped before its start was "
                              "recorded, and the switch runs only after that; current points at "
                              "{}; roll back again",
                              current.target.empty() ? "nothing" : current.target));
  }

  // At the target: the switch happened, and only the steps after it are left.
  if (current.live() && current.version == plan.target_version) {
    std::string what_happened = "the switch had happened before the server stopped";
    auto log = tree_.ReadRevisionLog();
    bool logged = log && *log && !(*log)->lines.empty() &&
                  (*log)->lines.back().version == plan.target_version;
    if (!FinishSwitch(plan, request.idempotency_key, context, !logged, result)) {
      return finish(result.outcome, result.message);
    }
    ConcludeFromLink(result, what_happened);
    return finish(result.outcome, result.message);
  }

  const json& tool = request.started->tool;
  std::string from_target = tool.value("from_target", "");
  std::string from_changed_at = tool.value("from_changed_at", "");
  if (current.live() && current.target == from_target) {
    if (core::FormatTime(current.changed_at) == from_changed_at) {
      return finish(RollbackOutcome::kFailed,
                    fmt::format("the switch did not happen: {} still links to {} and has not "
                                "changed since the job started; nothing changed, so roll back "
                                "again",
                                tree_.LinkPath().string(), current.target));
    }
    return finish(RollbackOutcome::kInterrupted,
                  fmt::format("{} links to {} as before the rollback, but the link was replaced "
                              "after the job started, so Backout cannot tell whether it switched "
                              "and someone switched back; {}",
                              tree_.LinkPath().string(), current.target, kConfirmHint));
  }
  if (current.live()) {
    return finish(
        RollbackOutcome::kPreconditionFailed,
        fmt::format("{} links to release {}, neither the target {} nor {} from the "
                    "plan: someone else switched it; assess and decide again",
                    tree_.LinkPath().string(), current.version, plan.target_version, from_target));
  }
  return finish(RollbackOutcome::kInterrupted,
                fmt::format("current is not a live release after the restart: {}; {}",
                            tree_.DescribeProblem(current), kConfirmHint));
}

core::Result<Readiness> ReleasesProvider::CheckReadiness() const {
  if (!probe_->Configured()) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "service {}: the releases provider has no health command or URL, so "
                           "readiness cannot be evaluated; add `health` or `health_url`",
                           service_);
  }
  CurrentLink current = tree_.ReadCurrent();
  if (!current.live()) return Readiness{false, tree_.DescribeProblem(current)};
  return probe_->Check(
      {fmt::format("BACKOUT_LIVE_VERSION={}", current.version),
       fmt::format("BACKOUT_RELEASE_PATH={}", tree_.ReleasePath(current.version).string())});
}

core::Result<ToolRecord> ReleasesProvider::ReadBack(const ExecutionResult& execution) const {
  CurrentLink current = tree_.ReadCurrent();
  if (!current.live()) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "service {}: cannot read back the rollback: {}", service_,
                           tree_.DescribeProblem(current));
  }

  std::error_code error;
  fs::path resolved = fs::canonical(tree_.LinkPath(), error);
  auto marker = tree_.ReadMarker(current.version, kMarkerReadMax);
  auto release = tree_.FindRelease(current.version);
  json details{{"link", tree_.LinkPath().string()},
               {"link_target", current.target},
               {"resolved_path", error ? json(nullptr) : json(resolved.string())},
               {"marker", (tree_.ReleasePath(current.version) / settings_.marker).string()},
               {"marker_contents", marker ? json(*marker) : json(nullptr)},
               {"matches_target", current.version == execution.target_version},
               {"release_log", DescribeLogSync(tree_, current)}};
  if (release && release->complete) {
    details["marker_time"] = core::FormatTime(release->completed_at);
  }
  return ToolRecord{current.changed_at, current.version, std::move(details)};
}

core::Result<Inventory> ReleasesProvider::ReadInventory() const {
  auto releases = tree_.ListReleases();
  if (!releases) {
    return std::unexpected(releases.error().WithContext(fmt::format("service {}", service_)));
  }
  CurrentLink current = tree_.ReadCurrent();
  Inventory inventory;
  inventory.observed_at = clock_.Now();
  if (current.live()) {
    inventory.live_version = current.version;
  } else {
    inventory.live_problem = tree_.DescribeProblem(current);
  }
  for (const Release& release : *releases) {
    InventoryItem item;
    item.version = release.version;
    item.complete = release.complete;
    if (release.complete) item.completed_at = release.completed_at;
    inventory.items.push_back(std::move(item));
  }
  return inventory;
}

}  // namespace backout::providers::releases
